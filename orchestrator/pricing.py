"""Tokens → USD.

Prices come from `genai-prices` (a maintained, offline price library) unless
config/models.yaml gives `price_per_mtok` for the model, which wins. A model neither
knows has an unknown cost: None, shown as "unknown", never 0.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.adapters.base import Usage

if TYPE_CHECKING:
    from decimal import Decimal

    from orchestrator.config import Config, Prices

log = logging.getLogger(__name__)

# partial: a run stopped mid-way (timeout, stall, budget): the usage it had reached, priced
CostSource = Literal["reported", "computed", "partial"]
CONFIG_VERSION = "models.yaml"


@dataclass(frozen=True)
class Cost:
    usd: float | None
    source: CostSource | None
    price_version: str | None = None


def compute(usage: Usage, prices: Prices) -> float:
    cache_read = prices.cache_read if prices.cache_read is not None else prices.input
    cache_write = prices.cache_write if prices.cache_write is not None else prices.input
    total = (
        usage.input_tokens * prices.input
        + usage.output_tokens * prices.output
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )
    return round(total / 1_000_000, 8)


@functools.cache
def _library() -> Any:
    import genai_prices

    return genai_prices


def library_version() -> str:
    from importlib.metadata import version

    return f"genai-prices {version('genai-prices')}"


def warm_up() -> None:
    """Import the price library ahead of the first task (the daemon does it in a thread)."""
    _library()


class Pricer:
    """Prices for one config; library look-ups are cached per model."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._known: dict[str, bool] = {}

    def _provider(self, model: str) -> str | None:
        entry = self.config.models.get(model)
        return entry.provider if entry is not None else None

    def _from_library(self, model: str, usage: Usage) -> float | None:
        lib = _library()
        counted = lib.Usage(
            # genai-prices counts cache reads and writes inside input_tokens
            input_tokens=usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens,
        )
        for provider in dict.fromkeys((self._provider(model), None)):
            try:
                result = lib.calc_price(counted, model, provider_id=provider)
            except LookupError:
                continue
            total: Decimal = result.total_price
            return round(float(total), 8)
        return None

    def knows(self, model: str | None) -> bool:
        if model is None:
            return False
        if model not in self._known:
            self._known[model] = self.price(model, Usage(input_tokens=1)).usd is not None
        return self._known[model]

    def price(self, model: str | None, usage: Usage) -> Cost:
        """What `usage` on `model` costs by the price tables (None when unknown)."""
        if model is None:
            return Cost(None, None)
        entry = self.config.models.get(model)
        if entry is not None and entry.price_per_mtok is not None:
            return Cost(compute(usage, entry.price_per_mtok), "computed", CONFIG_VERSION)
        usd = self._from_library(model, usage)
        if usd is None:
            return Cost(None, None)
        return Cost(usd, "computed", library_version())

    def cost_of(self, model: str | None, usage: Usage | None, reported: float | None) -> Cost:
        """The tool's own figure when it reports one, else usage times the model's prices."""
        if reported is not None:
            return Cost(round(reported, 8), "reported")
        if usage is None:
            return Cost(None, None)
        return self.price(model, usage)
