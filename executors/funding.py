"""Funding on simulated USD-M positions: paper futures bots and futures backtests.

Binance settles USD-M funding at 00:00, 08:00 and 16:00 UTC: every open position pays
``quantity x mark x rate`` (longs pay shorts when the rate is positive, shorts pay longs when it is
negative). The local exchange does the same on its market clock from its mark and index prices
(``simulator/funding.py``); without a premium its rate is the interest-rate baseline, 0.01 % per 8 h.

A simulated bot has no index price (and the shared futures files carry no funding history), so it
pays a fixed rate per 8 h, ``paper.funding_rate_pct`` (default 0.01, the baseline), on the candle
that closes at the funding time: after that candle's intrabar exits (a stop or take-profit that
fired inside it closed the position before the funding time) and before the orders decided on its
close (they are sent after it), at its close as the mark, as the local exchange settles it before
the next bar. A candle that spans several funding times (intervals above 8 h) pays each of them at
its close. Paper and backtest bots share this rule, so they pay the same funding on the same candles.
"""
from __future__ import annotations

from dataclasses import dataclass, field

FUNDING_EVERY_MS = 8 * 3_600_000


def funding_times(after_ms: int, upto_ms: int) -> int:
    """How many funding times ``t`` lie in ``after_ms < t <= upto_ms``."""
    if upto_ms <= after_ms:
        return 0
    return upto_ms // FUNDING_EVERY_MS - after_ms // FUNDING_EVERY_MS


@dataclass(slots=True)
class FundingModel:
    """The fixed funding rate of simulated USD-M bots and where a bot is in the funding schedule."""

    rate_pct: float = 0.01  # per 8 h; > 0: longs pay
    funded_until: dict[str, int] = field(default_factory=dict)  # symbol -> the bot's 'now' when last looked at
    since: int = -1  # a restored bot: where every symbol's schedule goes on from (-1: a fresh bot)

    def due(self, symbol: str, now_ms: int, quantity: float, mark: float) -> float:
        """The funding a position of ``quantity`` (signed) settles on a candle of ``symbol`` closing at
        ``now_ms`` at ``mark``: > 0 received, < 0 paid; 0.0 when no funding time passed since the symbol's
        last candle or the position is flat. The first candle of a symbol starts its schedule (nothing
        before it is due; a restored bot starts at its snapshot's last candle: ``resume``)."""
        last = self.funded_until.get(symbol, self.since)
        self.funded_until[symbol] = max(last, now_ms)
        if last < 0 or quantity == 0.0:
            return 0.0
        n = funding_times(last, now_ms)
        return -quantity * mark * self.rate_pct / 100.0 * n if n else 0.0

    def resume(self, since_ms: int) -> None:
        """A restored bot: funding times after ``since_ms`` (its books' last candle close) are still due."""
        self.since = since_ms
