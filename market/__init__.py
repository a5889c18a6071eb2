"""Market data: candle validation, synthetic and historical sources, resampling, feeds.

validate   CandleValidator / validate_series: the gate every candle passes
synthetic  SyntheticMarket: seeded, realistic multi-symbol 1m candles
replay     load_candles (CSV/zip, auto-detected formats), iter_merged, shared_market_dir
aggregate  aggregate: 1m -> 5m/15m/1h/4h/1d
feed       Feed protocol, SyntheticFeed (paced), ReplayFeed (backtests)
"""
from market.aggregate import aggregate
from market.feed import Feed, ReplayFeed, SyntheticFeed
from market.replay import LoadResult, iter_merged, load_candles, shared_market_dir
from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket
from market.validate import CandleValidator, Gap, Rejection, ValidationReport, validate_series

__all__ = [
    "CandleValidator",
    "DEFAULT_SYMBOLS",
    "Feed",
    "Gap",
    "LoadResult",
    "Rejection",
    "ReplayFeed",
    "SyntheticFeed",
    "SyntheticMarket",
    "ValidationReport",
    "aggregate",
    "iter_merged",
    "load_candles",
    "shared_market_dir",
    "validate_series",
]
