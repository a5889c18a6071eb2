"""CLI: ``python -m simulator --host 127.0.0.1 --port 8765 [--seed N] [--source walk|synthetic]
[--api-key K --api-secret S] [--balances USDT=10000,BTC=0] [--futures-balance 10000] [--speed X]
[--weight-limit N] [--orders-per-10s N] [--start-ms MS] [--premium BTCUSDT=0.001] [--state-file PATH]``.

Serves the local Binance-compatible exchange until interrupted. The default key/secret
(``local-key`` / ``local-secret``) are public constants for offline use, not secrets.
With ``--state-file`` the accounts survive a restart (``state_file/``); ``--balances`` and
``--futures-balance`` then only seed a file that does not exist yet.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from decimal import Decimal, InvalidOperation

from aiohttp import web

from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET
from simulator.state_file import StateFileError, StateSaver, load
from simulator.ratelimit import Limits
from simulator.server import create_app
from simulator.prices import CandleMarketSource, PriceSource, RandomWalkSource
from simulator.state import DEFAULT_BALANCES, SimConfig, SimExchange, wall_ms


def parse_balances(text: str) -> dict[str, Decimal]:
    """'USDT=10000,BTC=0.5' -> {'USDT': Decimal('10000'), 'BTC': Decimal('0.5')}."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        asset, sep, amount = part.partition("=")
        if not sep or not asset.strip():
            raise argparse.ArgumentTypeError(f"bad balance {part!r}; expected ASSET=AMOUNT")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise argparse.ArgumentTypeError(f"bad amount in {part!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"negative balance in {part!r}")
        out[asset.strip().upper()] = value
    return out


def parse_premiums(text: str) -> dict[str, Decimal]:
    """'BTCUSDT=0.001,ETHUSDT=-0.0005' -> {'BTCUSDT': Decimal('0.001'), ...} (fractions, -0.5 < x < 0.5)."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        sym, sep, value = part.partition("=")
        try:
            premium = Decimal(value.strip())
        except InvalidOperation:
            premium = Decimal("NaN")
        if not sep or not sym.strip() or not premium.is_finite() or not Decimal("-0.5") < premium < Decimal("0.5"):
            raise argparse.ArgumentTypeError(f"bad premium {part!r}; expected SYMBOL=FRACTION with -0.5 < FRACTION < 0.5")
        out[sym.strip().upper()] = premium
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=1, help="price seed (prices are deterministic per seed)")
    p.add_argument("--source", choices=("walk", "synthetic"), default="walk",
                   help="walk: built-in 1 s random walk; synthetic: market.synthetic.SyntheticMarket 1m candles")
    p.add_argument("--api-key", default=DEFAULT_API_KEY)
    p.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    p.add_argument("--balances", type=parse_balances, default=None,
                   help="starting spot balances, e.g. USDT=10000,BTC=0 (default USDT=10000)")
    p.add_argument("--futures-balance", type=Decimal, default=Decimal("10000"),
                   help="USDT in the USD-M futures wallet (separate from spot)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="market time per wall time (1 = real time, 60 = a minute per second, 0 = paused)")
    p.add_argument("--weight-limit", type=int, default=Limits().weight_per_minute,
                   help="REQUEST_WEIGHT per minute before 429")
    p.add_argument("--orders-per-10s", type=int, default=Limits().orders_per_10s)
    p.add_argument("--symbols", default=None, help="synthetic: symbols to list, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--start-ms", type=int, default=None,
                   help="market time of the first live bar (default: now); synthetic: to continue a stored market")
    p.add_argument("--premium", type=parse_premiums, default=None, metavar="SYMBOL=FRACTION",
                   help="futures mark premium over the index, e.g. BTCUSDT=0.001 (0.1 %%); drives funding (default 0)")
    p.add_argument("--resume", default=None,
                   help="synthetic: continue from these closes, e.g. BTCUSDT=65000.5,ETHUSDT=3200 (with --start-ms)")
    p.add_argument("--warmup", type=int, default=1500, help="synthetic: history candles before the start")
    p.add_argument("--state-file", default=None, metavar="PATH",
                   help="keep the accounts (balances, orders, trades, positions, algo orders) in PATH across "
                        "restarts; loaded on start if it exists, saved while running and on exit")
    p.add_argument("--log-level", default="WARNING")
    return p


def _source(args: argparse.Namespace) -> PriceSource | None:
    if args.source == "synthetic":
        from market.synthetic import DEFAULT_SYMBOLS, SyntheticMarket  # imported only when asked for

        symbols = args.symbols.split(",") if args.symbols else list(DEFAULT_SYMBOLS)
        market = SyntheticMarket({s: DEFAULT_SYMBOLS.get(s, 100.0) for s in symbols}, seed=args.seed)
        warmup = args.warmup
        if args.resume:
            # The worker's stored market continues: same prices, later times, no invented history.
            for item in args.resume.split(","):
                sym, close = item.split("=")
                market.resume(sym, float(close))
            warmup = 0
        return CandleMarketSource(market, start_ms=args.start_ms or wall_ms(), warmup=warmup)
    if args.start_ms is not None:
        return RandomWalkSource(seed=args.seed, start_ms=args.start_ms)
    return None  # SimExchange's default: RandomWalkSource(seed) starting now


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = replace(Limits(), weight_per_minute=args.weight_limit, orders_per_10s=args.orders_per_10s)
    config = SimConfig(
        seed=args.seed,
        api_key=args.api_key,
        api_secret=args.api_secret,
        balances=args.balances if args.balances is not None else dict(DEFAULT_BALANCES),
        speed=args.speed,
        limits=limits,
        futures_wallet=args.futures_balance,
        premiums=args.premium or {},
    )
    try:
        ex = SimExchange(config, _source(args))
    except ValueError as exc:  # e.g. a --premium symbol the exchange does not list
        print(f"simulator: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    saver = None
    if args.state_file:
        try:
            restored = load(ex, args.state_file)
            saver = StateSaver(ex, args.state_file)
            saver.save_now()  # fail now, not on the first order, if the path cannot be written
        except StateFileError as exc:
            print(f"simulator: {exc}", file=sys.stderr, flush=True)
            sys.exit(2)
        except OSError as exc:
            print(f"simulator: state file {args.state_file}: cannot write it ({exc})", file=sys.stderr, flush=True)
            sys.exit(2)
        print(f"simulator: accounts {'restored from' if restored else 'will be kept in'} {args.state_file}",
              flush=True)
    app = create_app(ex, saver=saver)
    print(f"simulator listening on http://{args.host}:{args.port} (speed {args.speed}, seed {args.seed})", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
