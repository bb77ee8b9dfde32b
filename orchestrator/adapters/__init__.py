"""One adapter per tool kind; `get_adapter(kind)` imports only the one asked for."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.adapters.base import Adapter

_MODULES = {
    "generic": "orchestrator.adapters.generic",
    "claude-code": "orchestrator.adapters.claude",
    "codex": "orchestrator.adapters.codex",
    "gemini": "orchestrator.adapters.gemini",
}


def get_adapter(kind: str) -> Adapter:
    module = importlib.import_module(_MODULES[kind])
    adapter: Adapter = module.ADAPTER
    return adapter
