"""Position sizing: how much quote an entry may use (the full policy set grows with the risk issue)."""
from __future__ import annotations

from typing import Literal


def entry_quote(kind: Literal["percent_equity", "fixed_quote"], value: float, equity: float) -> float:
    """percent_equity: value% of current equity; fixed_quote: value in quote, whatever the equity."""
    if kind == "percent_equity":
        return max(0.0, equity) * value / 100.0
    return value
