"""The executor interface: a risk-approved order in, fills out."""
from __future__ import annotations

from typing import Protocol

from core.types import Fill, Mode, Order


class Executor(Protocol):
    mode: Mode

    def execute(self, order: Order, ref_price: float, time_ms: int) -> list[Fill]:
        """Execute a market order whose reference price (last trade or trigger) is ref_price."""
        ...
