"""The config's sections other than the bots (``settings.AppConfig`` holds them): Redis, the venue,
the market feed, user strategies, paper fills, ghost, worker, dashboard and live switches."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from core.types import INTERVAL_MS
from core.validation import StrictNumbers


class _Model(StrictNumbers):
    model_config = ConfigDict(extra="forbid")


class RedisConfig(_Model):
    url: str = "redis://127.0.0.1:6399/0"
    embedded: bool = Field(True, description="make run starts a local redis-server for this url")
    data_dir: str = "var/redis"
    appendfsync: Literal["always", "everysec", "no"] = "always"


class ExchangeConfig(_Model):
    """The venue live bots trade on (and the market every mode sees when market.source is 'exchange')."""

    venue: Literal["local", "testnet", "demo", "mainnet"] = "local"
    local_port: int = Field(8765, ge=1024, le=65535, description="make run starts the local exchange here")
    local_url: str | None = Field(None, description="override the venue's base URL (tests, a remote local exchange)")
    futures_balance: float = Field(10_000.0, ge=0, description="local exchange: USD-M wallet")
    spot_balances: dict[str, float] = Field(default_factory=lambda: {"USDT": 10_000.0},
                                            description="local exchange: starting spot balances")
    reconcile_every_s: float = Field(30.0, ge=1, le=3600)
    protective_orders: bool = Field(True, description="a venue bot's stop-loss and take-profit also rest on the "
                                                      "exchange (spot OCO / stop-limit, USD-M stop and take-profit)")
    protective_stop_limit_pct: float = Field(0.5, gt=0, lt=10, description="spot: the stop-limit's limit price this "
                                                                           "% beyond its trigger (room to fill)")
    stale_after_s: float = Field(15.0, gt=0, description="market-data stale alarm after this long without data")

    @property
    def base_url(self) -> str | None:
        if self.local_url:
            return self.local_url
        return f"http://127.0.0.1:{self.local_port}" if self.venue == "local" else None


class MarketConfig(_Model):
    source: Literal["synthetic", "replay", "exchange"] = "synthetic"
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT", "ETHUSDT"], min_length=1)
    interval: str = "1m"
    seed: int = 7
    speed: float = Field(60.0, gt=0, le=100_000, description="simulated seconds per wall second")
    warmup_candles: int = Field(300, ge=0, le=10_000)
    replay_files: list[str] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        if v not in INTERVAL_MS:
            raise ValueError(f"must be one of {', '.join(INTERVAL_MS)}")
        return v

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not s.isalnum() or s.upper() != s]
        if bad:
            raise ValueError(f"symbols must be upper-case alphanumeric like BTCUSDT, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError("symbols must be unique")
        return v

    @model_validator(mode="after")
    def _replay_needs_files(self) -> "MarketConfig":
        if self.source == "replay" and not self.replay_files:
            raise ValueError("source 'replay' needs at least one file in market.replay_files")
        return self


class StrategiesConfig(_Model):
    """User strategies (``strategy.plugins``, docs/strategies.md)."""

    path: str = Field("user_strategies", description="folder of user strategy files; relative to the config "
                                                     "file's folder")


# ---- paper: (simulation truth, issue 18) ------------------------------------------------------------
class PaperFills(_Model):
    """How paper bots are filled: the backtest's fill model (``executors.fills.FillModel``, docs/backtest.md),
    so a paper bot and a backtest of it fill alike on the same candles."""

    policy: Literal["optimistic", "realistic", "pessimistic"] = "realistic"
    fill_at: str = Field("close", description="paper fills market orders at the deciding candle's close")
    intrabar: Literal["stop_first", "take_first", "ohlc"] = "stop_first"
    maker_fee_pct: float | None = Field(None, ge=0, le=5, description="resting limit orders (default: fee_pct)")
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to market fills' times")
    max_volume_pct: float | None = Field(10.0, gt=0, le=100, description="realistic/pessimistic: largest share "
                                         "of a candle's volume an order takes (null: no cap)")
    tick_size: float = Field(0.0, ge=0, description="pessimistic: 'through by one tick' (0: 1 bp of the price)")

    @field_validator("fill_at")
    @classmethod
    def _close_only(cls, v: str) -> str:
        if v != "close":
            raise ValueError("paper fills at 'close' only: a paper bot decides on a candle's close and cannot see "
                             "the next open then ('next_open' is a backtest setting)")
        return v


class PaperConfig(_Model):
    venue: Literal["sim", "testnet"] = Field("sim", description="testnet: paper bots trade on the exchange "
                                                                "section's testnet (or local) endpoints")
    starting_balance: float = Field(10_000.0, gt=0)
    quote_asset: str = "USDT"
    fee_pct: float = Field(0.1, ge=0, le=5, description="taker fee in percent of notional")
    slippage_bps: float = Field(2.0, ge=0, le=500)
    fills: PaperFills = Field(default_factory=PaperFills)
    funding_rate_pct: float = Field(0.01, ge=-3, le=3, description="USD-M paper bots: the funding rate per "
                                    "8 h (Binance's interest-rate baseline, what the local exchange charges "
                                    "without a premium); longs pay it to shorts when positive")

    def usable_pct(self) -> float:
        """The largest percent of equity one entry can spend: notional plus slippage and fee fit the cash."""
        return 100.0 / ((1 + self.slippage_bps / 10_000.0) * (1 + self.fee_pct / 100.0))
# ---- end paper: ----------------------------------------------------------------------------------------


class GhostConfig(_Model):
    horizon_candles: int = Field(60, ge=1, description="a ghost signal's outcome is closed after this many candles")


class WorkerConfig(_Model):
    heartbeat_ttl_s: int = Field(5, ge=2, le=300)
    heartbeat_every_s: float = Field(1.0, gt=0, le=60)
    history_keep: int = Field(5000, ge=100, description="approximate length of each history stream")
    shards: int = Field(1, ge=1, le=64, description="bots are spread over this many shards, each traded by the "
                                                   "worker holding its lease (docs/architecture.md, shards)")


class DashboardConfig(_Model):
    port: int = Field(8502, ge=1024, le=65535)
    address: str = Field("127.0.0.1", description="where make run binds the dashboard; anything but loopback "
                                                  "needs a users file (BOT_USERS_FILE)")
    refresh_s: float = Field(1.0, ge=0.5, le=2.0)


class LiveConfig(_Model):
    enabled: bool = Field(False, description="the config's half of the two-key switch for real money")
    # Across every live bot, on the account's mark-to-market equity (quote + holdings at the last price;
    # futures: margin balance): a breach flattens and halts every live bot.
    account_daily_loss_pct: float | None = Field(5.0, gt=0, le=100)
    account_daily_loss_value: float | None = Field(None, gt=0)
    account_max_drawdown_pct: float | None = Field(20.0, gt=0, le=100)


