"""Trading strategies: pure functions from closed-candle history to a Signal.

base        the Strategy protocol, shared exit (stop-loss / take-profit) params and helpers
indicators  numpy SMA, EMA, Wilder RSI, Wilder ATR, ROC (+ cheap last-value helpers)
crossover   SMA / EMA crossover
momentum    rate-of-change momentum, long and short
rsi_reversion  RSI mean reversion
registry    name -> (params model, factory); build_strategy(name, params)
dca         3Commas-style DCA ladder math (Decimal, standard library only)

Nothing here does I/O or imports anything outside core/ and strategy/.
"""
from strategy.base import Strategy, history_needed
from strategy.registry import STRATEGIES, build_strategy, params_model, strategy_names

__all__ = ["STRATEGIES", "Strategy", "build_strategy", "history_needed", "params_model", "strategy_names"]
