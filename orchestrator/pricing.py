"""Tokens → USD from the prices in config/models.yaml. Unknown model → None, never 0."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from orchestrator.adapters.base import Usage
    from orchestrator.config import Config, Prices

CostSource = Literal["reported", "computed"]


@dataclass(frozen=True)
class Cost:
    usd: float | None
    source: CostSource | None
    price_version: str | None = None


def prices_for(config: Config, model: str | None) -> Prices | None:
    if model is None:
        return None
    entry = config.models.get(model)
    return entry.price_per_mtok if entry is not None else None


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


def cost_of(config: Config, model: str | None, usage: Usage | None, reported: float | None) -> Cost:
    """The tool's own figure when it reports one, else usage times the model's prices."""
    if reported is not None:
        return Cost(reported, "reported")
    prices = prices_for(config, model)
    if usage is None or prices is None:
        return Cost(None, None)
    return Cost(compute(usage, prices), "computed", "models.yaml")
