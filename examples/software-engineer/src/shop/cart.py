"""The shopping cart: line items and the totals shown at checkout. Amounts are in cents."""

from __future__ import annotations

from dataclasses import dataclass, field

VAT_RATE_PERCENT = 19


@dataclass(frozen=True)
class LineItem:
    sku: str
    unit_price_cents: int
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass
class Cart:
    items: list[LineItem] = field(default_factory=list)

    def add(self, sku: str, unit_price_cents: int, quantity: int = 1) -> None:
        if quantity < 1:
            raise ValueError(f"quantity must be at least 1, not {quantity}")
        self.items.append(LineItem(sku, unit_price_cents, quantity))

    def subtotal_cents(self) -> int:
        return sum(item.total_cents for item in self.items)

    def vat_cents(self) -> int:
        """VAT included in the subtotal (prices are gross), rounded half up."""
        subtotal = self.subtotal_cents()
        return (subtotal * VAT_RATE_PERCENT * 2 + (100 + VAT_RATE_PERCENT)) // (
            2 * (100 + VAT_RATE_PERCENT)
        )

    def total_cents(self) -> int:
        return self.subtotal_cents()
