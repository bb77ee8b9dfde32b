#!/bin/sh
# nightly backup of ~/projects to the external disk (runs from cron at 02:30)
DEST=/media/backup/projects
NAME=projects-$(date +%Y%m%d).tar.gz
cd ~/projects
tar czf $DEST/$NAME .
echo done $NAME
ls -t $DEST/projects-*.tar.gz | tail -n +8 | xargs rm
