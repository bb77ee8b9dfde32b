"""The entry point of the standalone executable that scripts/build-binary makes: the
`orchestrator` command, as the console script of the wheel runs it."""

import sys

from orchestrator.cli import main

sys.exit(main())
