"""How the dashboard writes numbers and times, in one place: prices at the symbol's tick, quantities at
its base asset's precision (0.00062937 BTC, never 0.0006), amounts with their currency, fees in the
asset charged, and one clock — market time everywhere (dates with the year), the wall time beside it
when the two differ (a sped-up synthetic market).

A symbol's tick and precision come from the worker (``state.telemetry.SymbolFacts``, the venue's
filters); until it writes them, Binance's published filters for the shipped symbols, else 8 decimals.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from state.telemetry import SymbolFacts

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "EUR", "TRY", "BTC", "ETH", "BNB")
# Binance spot filters of the symbols config.yaml ships with (exchangeInfo: PRICE_FILTER.tickSize,
# LOT_SIZE.stepSize): what the local exchange publishes too.
KNOWN = {
    "BTCUSDT": SymbolFacts(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size="0.01", step_size="0.00001"),
    "ETHUSDT": SymbolFacts(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", tick_size="0.01", step_size="0.0001"),
}
BASE_PRECISION = 8  # Binance's baseAssetPrecision for BTC, ETH, ... : a quantity has at most 8 decimals
WALL_SKEW_MS = 120_000  # market and wall clocks further apart than this are both shown

_facts: dict[str, SymbolFacts] = dict(KNOWN)


def remember(facts: dict[str, SymbolFacts]) -> None:
    """The worker's symbol facts (read once a refresh by the caller)."""
    _facts.update(facts)


def facts(symbol: str) -> SymbolFacts:
    f = _facts.get(symbol)
    if f is not None:
        return f
    quote = next((q for q in QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "")
    base = symbol[: -len(quote)] if quote else symbol
    return SymbolFacts(symbol=symbol, base_asset=base, quote_asset=quote or "?", tick_size="0.00000001",
                       step_size="0.00000001")


def _decimals(step: str) -> int:
    d = Decimal(step).normalize()
    return max(0, -d.as_tuple().exponent)  # type: ignore[operator]


def price_decimals(symbol: str) -> int:
    return _decimals(facts(symbol).tick_size)


def base(symbol: str) -> str:
    return facts(symbol).base_asset


def quote(symbol: str) -> str:
    return facts(symbol).quote_asset


def price(x: float | None, symbol: str, with_asset: bool = False) -> str:
    """A price at the symbol's tick: 64,012.35 (USDT)."""
    if x is None:
        return "—"
    text = f"{x:,.{price_decimals(symbol)}f}"
    return f"{text} {quote(symbol)}" if with_asset else text


def qty(x: float | None, symbol: str = "", asset: str | None = None) -> str:
    """A quantity at the base asset's precision, trailing zeros dropped: 0.00062937 BTC."""
    if x is None:
        return "—"
    text = f"{x:,.{BASE_PRECISION}f}".rstrip("0").rstrip(".")
    name = asset if asset is not None else (base(symbol) if symbol else "")
    return f"{text} {name}".rstrip()


def money(x: float | None, asset: str = "USDT", signed: bool = False) -> str:
    """An amount with its currency: 1,234.56 USDT (+12.30 USDT when ``signed``)."""
    if x is None:
        return "—"
    return f"{x:+,.2f} {asset}" if signed else f"{x:,.2f} {asset}"


def fee(x: float, asset: str) -> str:
    """A fee in the asset it was charged in, at that asset's precision (8 decimals, trimmed)."""
    if asset in QUOTES[:7]:  # stable quotes: cents are not enough for small fees
        return f"{x:,.6f}".rstrip("0").rstrip(".") + f" {asset}"
    return qty(x, asset=asset)


def when(ms: int | None, seconds: bool = False) -> str:
    """A market time with its year: 2025-01-03 12:00 (UTC)."""
    if not ms:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def clock(market_ms: int | None, wall_ms: int | None) -> str:
    """The one clock: market time, and the wall time beside it when they differ."""
    if not market_ms:
        return f"wall {when(wall_ms, True)} UTC" if wall_ms else "—"
    text = f"{when(market_ms)} UTC (market)"
    if wall_ms and abs(wall_ms - market_ms) > WALL_SKEW_MS:
        text += f" · wall {when(wall_ms, True)} UTC"
    return text


def columns(symbol: str, prices: list[str] = (), qtys: list[str] = (), amounts: list[str] = (),  # type: ignore[assignment]
            pct: list[str] = ()) -> dict[str, object]:  # type: ignore[assignment]
    """st.dataframe column_config: price columns at the symbol's tick (with the quote asset named),
    quantities at 8 decimals (the base asset named), amounts with cents — the numbers stay numbers,
    so the table still sorts."""
    import streamlit as st

    f = facts(symbol)
    cfg: dict[str, object] = {}
    for c in prices:
        cfg[c] = st.column_config.NumberColumn(f"{c} ({f.quote_asset})", format=f"%.{price_decimals(symbol)}f")
    for c in qtys:
        cfg[c] = st.column_config.NumberColumn(f"{c} ({f.base_asset})", format=f"%.{BASE_PRECISION}f")
    for c in amounts:
        cfg[c] = st.column_config.NumberColumn(f"{c} ({f.quote_asset})", format="%.2f")
    for c in pct:
        cfg[c] = st.column_config.NumberColumn(c, format="%.2f")
    return cfg


_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def key_part(text: str) -> str:
    """A widget-key-safe form of a name."""
    return _SAFE.sub("_", text)


def texts(df, prices: tuple[str, ...] = (), qtys: tuple[str, ...] = (), amounts: tuple[str, ...] = (),  # type: ignore[no-untyped-def]
          symbol_col: str = "symbol"):
    """A copy of a DataFrame with a ``symbol`` column, its numbers written as the page writes them:
    prices at each row's tick, quantities at the base asset's precision with the asset, amounts with
    the quote asset."""
    if df.empty:
        return df
    out = df.copy()
    syms = list(df[symbol_col])
    for col in prices:
        out[col] = [price(v, sym) if v is not None and v == v else "—" for v, sym in zip(df[col], syms)]
    for col in qtys:
        out[col] = [qty(v, sym) if v is not None and v == v else "—" for v, sym in zip(df[col], syms)]
    for col in amounts:
        out[col] = [money(v, quote(sym), signed=True) if v is not None and v == v else "—" for v, sym in zip(df[col], syms)]
    return out
