"""Fault injection: what ``POST /admin/faults`` arms, consumed by the request pipeline.

Fields (all optional in the JSON body; counters count API requests, admin calls excluded):
    latency_ms           int   delay added to every API response until changed (0 = off)
    error_5xx_next       int   the next N requests fail with 503 -1008 "Service Unavailable."
                               *before* they are executed (nothing happens)
    status_unknown_next  int   the next N *order-changing* requests (POST/DELETE order,
                               DELETE openOrders) are executed, then answered with 503 -1007
                               "... execution status unknown." (the unknown-outcome path)
    lose_response_next   int   the next N requests are executed, then the connection is closed
                               without a response (client sees a connection error)
    lose_order_response_next
                         int   the same for the next N *order-changing* requests only (an order
                               accepted but its answer lost, whatever else the client is asking)
    rate_limit_burst     int   request weight added at once to the caller's current minute
                               (so the next requests hit 429, and 418 if they keep going)
    drop_ws              bool  close every open WebSocket connection now
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Faults:
    latency_ms: int = 0
    error_5xx_next: int = 0
    status_unknown_next: int = 0
    lose_response_next: int = 0
    lose_order_response_next: int = 0

    FIELDS = ("latency_ms", "error_5xx_next", "status_unknown_next", "lose_response_next", "lose_order_response_next")

    def update(self, body: dict[str, Any]) -> None:
        for name in self.FIELDS:
            if name in body:
                value = int(body[name])
                if value < 0:
                    raise ValueError(f"{name} must be >= 0")
                setattr(self, name, value)

    def reset(self) -> None:
        for name in self.FIELDS:
            setattr(self, name, 0)

    def take_5xx(self) -> bool:
        if self.error_5xx_next > 0:
            self.error_5xx_next -= 1
            return True
        return False

    def take_status_unknown(self) -> bool:
        if self.status_unknown_next > 0:
            self.status_unknown_next -= 1
            return True
        return False

    def take_lose_response(self, order_change: bool = False) -> bool:
        if order_change and self.lose_order_response_next > 0:
            self.lose_order_response_next -= 1
            return True
        if self.lose_response_next > 0:
            self.lose_response_next -= 1
            return True
        return False

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k in self.FIELDS}
