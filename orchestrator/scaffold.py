"""`orchestrator init`: a default config/ that validates, and the work/ folders."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from orchestrator.config import CONFIG_FILES
from orchestrator.errors import WorkspaceError
from orchestrator.workdir import Workdir

if TYPE_CHECKING:
    from pathlib import Path


def write_defaults(root: Path, *, force: bool = False) -> list[Path]:
    """Write config/*.yaml (refusing to overwrite unless `force`) and create work/."""
    config_dir = root / "config"
    existing = [name for name in CONFIG_FILES if (config_dir / name).exists()]
    if existing and not force:
        raise WorkspaceError(
            f"{config_dir} already has {', '.join(existing)}; "
            "use `orchestrator init --force` to overwrite"
        )
    config_dir.mkdir(parents=True, exist_ok=True)
    defaults = resources.files("orchestrator") / "defaults"
    written = []
    for name in CONFIG_FILES:
        target = config_dir / name
        target.write_text((defaults / name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(target)
    Workdir(root).ensure()
    return written
