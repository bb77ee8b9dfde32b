"""The entry point of the standalone executable that scripts/build-binary makes: the
`orchestrator` command, as the console script of the wheel runs it."""

import os
import sys

from orchestrator.cli import main

# PyInstaller's bootloader points LD_LIBRARY_PATH at the libraries inside the bundle
# (libz, libssl, libreadline, ...) and keeps the user's value in LD_LIBRARY_PATH_ORIG.
# Every child of ours (a tool, git, doctor's `--version` calls) is a program of the system
# and must load the system's libraries: the user's value goes back. The dynamic loader of
# this process read the variable when it started, so the bundle's own imports still work.
if getattr(sys, "frozen", False) and "LD_LIBRARY_PATH" in os.environ:
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        del os.environ["LD_LIBRARY_PATH"]
    else:
        os.environ["LD_LIBRARY_PATH"] = original

sys.exit(main())
