"""The entry point of the standalone executable that scripts/build-binary makes: the
`orchestrator` command, as the console script of the wheel runs it."""

import os
import sys
from collections.abc import MutableMapping

from orchestrator.cli import main


def _system_libraries(env: MutableMapping[str, str], bundle: str) -> None:
    """On Linux, PyInstaller's bootloader puts the bundle's folder (its libz, libssl,
    libreadline, ...) first in LD_LIBRARY_PATH and keeps the user's value in
    LD_LIBRARY_PATH_ORIG. Every child of ours (a tool, git, doctor's `--version` calls) is
    a program of the system and must load the system's libraries, so the user's value goes
    back. This process's dynamic loader read the variable at start: the bundle's own
    imports still find their libraries."""
    original = env.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        env["LD_LIBRARY_PATH"] = original
    elif env.get("LD_LIBRARY_PATH", "").split(os.pathsep)[0] == bundle:
        del env["LD_LIBRARY_PATH"]  # the user had none


bundle = getattr(sys, "_MEIPASS", None)
if bundle is not None:
    _system_libraries(os.environ, bundle)

sys.exit(main())
