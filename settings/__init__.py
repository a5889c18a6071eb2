"""Configuration: pydantic-settings models for config.yaml plus environment overrides.

Precedence: environment (``BOT_`` prefix, ``__`` for nesting, e.g. ``BOT_MARKET__SPEED=120``)
over ``config.yaml``. Secrets (exchange keys, dashboard password) are read only from the
environment by :class:`Secrets`; a secret-looking key in the YAML file is an error.
A bad config raises :class:`ConfigError`, whose message names every bad key and its rule.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from core.sharding import shard_of
from core.types import Mode
from core.validation import error_lines, format_errors
from risk.limits import EXECUTION_FACTS, CeilingViolation, RiskLimits, resolve
from risk.sizing import SizingPolicy
from risk.stages import GoLiveConfig
from strategy.dca_settings import DcaConfig
from strategy.exit_settings import ExitsConfig
from strategy.signal_settings import SignalPolicyConfig

from settings.sections import (  # noqa: F401 - re-exported: `from settings import ExchangeConfig` etc.
    DashboardConfig,
    ExchangeConfig,
    GhostConfig,
    LiveConfig,
    MarketConfig,
    PaperConfig,
    PaperFills,
    RedisConfig,
    StrategiesConfig,
    WorkerConfig,
    _Model,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
SECRET_WORDS = ("api_key", "api_secret", "secret", "password", "totp", "token")


class ConfigError(Exception):
    """A configuration that cannot run; ``str()`` lists ``key: rule`` lines."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        head = f"invalid configuration{f' in {source}' if source else ''}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))


class BotConfig(_Model):
    name: str = Field(min_length=1, max_length=40)
    mode: Literal["ghost", "paper", "live"]
    kind: Literal["signal", "dca"] = "signal"
    symbol: str
    strategy: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    dca: DcaConfig | None = None
    market: Literal["spot", "futures"] = "spot"
    sizing: SizingPolicy = Field(default_factory=SizingPolicy)
    risk: RiskLimits = Field(default_factory=RiskLimits, description="per-bot overrides of the mode's limits "
                             "(risk/limits.py); a key left out keeps the mode's default, an explicit null "
                             "switches a paper/ghost limit off; live bots may only tighten the hard ceilings")
    max_hold_candles: int | None = Field(None, ge=1, description="exit after this many candles (time horizon)")
    allocation: float | None = Field(None, gt=0, description="live bots: the quote this bot may use on the "
                                     "venue; its equity is this plus its P&L (default: what the account holds "
                                     "at the bot's first start, capped by the mode's exposure limit)")
    max_tranches: int = Field(3, ge=1, description="signal bots: entries one position may hold; a same-direction "
                                                   "signal adds one while fewer are held (1: ignore it)")
    signals: SignalPolicyConfig = Field(default_factory=SignalPolicyConfig, description="signal bots: "
                                        "confirmation and temperature (strategy/signal_settings.py)")
    exits: ExitsConfig | None = Field(None, description="signal bots: ATR, trailing, breakeven and scale-out "
                                      "exits (strategy/exit_settings.py)")
    enabled: bool = True
    shard: int | None = Field(None, ge=0, description="the shard this bot is traded in (default: a stable hash "
                                                      "of its name modulo worker.shards)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not all(c.isalnum() or c in "-_" for c in v):
            raise ValueError("bot names may hold only letters, digits, '-' and '_'")
        return v

    @model_validator(mode="after")
    def _risk_ceilings(self) -> "BotConfig":
        facts = sorted(set(self.risk.model_fields_set) & set(EXECUTION_FACTS))
        if facts:
            raise ValueError(f"risk.{facts[0]}: not a risk limit (fees and slippage are set in paper:, shorts by "
                             "market: futures)")
        try:
            resolve(Mode(self.mode), self.risk.overrides(), allow_raise=bool(os.environ.get("BOT_RISK_OVERRIDE")))
        except CeilingViolation as exc:
            raise ValueError(f"risk: {exc}") from None
        return self

    def limits(self, allow_raise: bool = False) -> RiskLimits:
        """This bot's resolved limits (mode defaults + overrides), before execution facts."""
        return resolve(Mode(self.mode), self.risk.overrides(), allow_raise=allow_raise)

    @model_validator(mode="after")
    def _strategy_params(self) -> "BotConfig":
        from strategy.registry import STRATEGIES, params_model, params_note

        if self.kind == "dca":
            if self.dca is None:
                raise ValueError("kind 'dca' needs a 'dca' section (base_order, safety_order, deviation_pct, ...)")
            if self.dca.start_condition == "asap" and self.strategy is None:
                return self
        elif self.dca is not None:
            raise ValueError("a 'dca' section needs kind: dca")
        if self.exits is not None and (self.kind == "dca" or self.mode == "ghost" or self.max_tranches != 1):
            raise ValueError("exits: for paper and live signal bots with max_tranches: 1 (the exits are planned on "
                             "one entry; ghost bots follow each signal's own stop and take-profit)")
        if self.strategy is None:
            raise ValueError("strategy is required (for DCA bots: when start_condition is 'signal')")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
        try:
            params_model(self.strategy).model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(format_errors(exc, "params") + params_note(self.strategy)) from None
        return self

    def dca_problem(self, equity: float, fee_pct: float, slippage_bps: float) -> str | None:
        """Why this DCA bot could never place its base order or its first safety order under its own
        per-trade loss limit (each is judged at the deal's stop, or at its whole notional without one),
        with the numbers; None when it can."""
        if self.dca is None:
            return None
        lim = self.limits(allow_raise=True)  # the values it runs with; the ceilings are checked elsewhere
        caps = [x for x in (lim.max_loss_per_trade_value,
                            None if lim.max_loss_per_trade_pct is None else lim.max_loss_per_trade_pct / 100 * equity)
                if x is not None]
        if not caps:
            return None
        from core.types import Side
        from risk.engine import worst_case_loss
        from strategy.dca import ladder, stop_loss_price

        cap = min(caps)
        params = self.dca.params()
        levels = ladder(params, 1).levels[:2]  # the base order and SO1, at a unit price (the loss is in quote)
        stop = stop_loss_price(levels[0].avg_price, 1, params)
        side = Side.BUY if self.dca.side == "long" else Side.SELL
        for lv in levels:
            worst = worst_case_loss(float(lv.base_qty), float(lv.price), None if stop is None else float(stop), side,
                                    fee_pct, slippage_bps)
            if worst > cap * (1 + 1e-9):
                at = "its whole notional: no stop_loss_pct" if stop is None else f"the deal's stop {self.dca.stop_loss_pct:g}%"
                return (f"{lv.name} of {float(lv.quote_size):g} would risk {worst:.2f} (at {at}) > max loss per trade "
                        f"{cap:.2f} (risk.max_loss_per_trade_value/pct of {equity:,.0f}): it could never be placed; "
                        "set dca.stop_loss_pct, lower the order sizes, or raise risk.max_loss_per_trade_pct")
        return None

    @property
    def mode_enum(self) -> Mode:
        return Mode(self.mode)

    @property
    def symbols(self) -> list[str]:
        return list(self.dca.pairs) if self.dca is not None and self.dca.pairs else [self.symbol]


class AppConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOT_", env_nested_delimiter="__", extra="forbid")

    redis: RedisConfig = Field(default_factory=RedisConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    paper: PaperConfig = Field(default_factory=PaperConfig)
    ghost: GhostConfig = Field(default_factory=GhostConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    live: LiveConfig = Field(default_factory=LiveConfig)
    golive: GoLiveConfig = Field(default_factory=GoLiveConfig)
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    strategies: StrategiesConfig = Field(default_factory=StrategiesConfig)
    bots: list[BotConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_checks(self) -> "AppConfig":
        names = [b.name for b in self.bots]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"bot names must be unique; repeated: {dupes}")
        # The live gate: every bot that places orders on a venue obeys it unless the venue is the local
        # exchange or a testnet. Paper bots on the venue would trade real money on mainnet.
        ex = self.exchange
        if self.paper.venue == "testnet" and ex.venue == "mainnet":
            raise ValueError("paper.venue: testnet with exchange.venue: mainnet would send paper bots' orders to "
                             "Binance itself with real money; set exchange.venue: testnet (or local), or paper.venue: sim")
        if ex.local_url and ex.venue == "local" and _binance_host(ex.local_url):
            raise ValueError(f"exchange.local_url: {ex.local_url} is a Binance host while exchange.venue is 'local' "
                             "(no real-money switch); use exchange.venue: testnet or mainnet (two-key switch) instead")
        for i, bot in enumerate(self.bots):
            if bot.shard is not None and bot.shard >= self.worker.shards:
                raise ValueError(f"bots.{i}.shard: {bot.shard} must be below worker.shards ({self.worker.shards})")
        live_shards = {b.name: shard_of(b.name, self.worker.shards, b.shard) for b in self.bots if b.mode == "live"}
        if len(set(live_shards.values())) > 1:
            # The live mode's cross-bot ceilings (mode exposure, open positions, correlation) and the account
            # guard need every live bot in one worker's view: several workers would each allow the whole ceiling.
            raise ValueError(f"bots: live bots must share one shard (give them the same 'shard:'); they are in "
                             f"{', '.join(f'{n}: {s}' for n, s in sorted(live_shards.items()))}")
        for i, bot in enumerate(self.bots):
            if bot.mode == "live" and self.exchange.venue == "mainnet" and not self.live.enabled:
                raise ValueError(f"bots.{i}: a live bot on mainnet needs live.enabled: true (and BOT_LIVE_TRADING=1)")
            usable = self.paper.usable_pct()
            if (bot.kind == "signal" and bot.mode != "ghost" and bot.sizing.kind == "percent_equity"
                    and bot.sizing.value > usable):
                raise ValueError(f"bots.{i}.sizing.value: percent_equity {bot.sizing.value:g} plus the fee "
                                 f"{self.paper.fee_pct:g}% and slippage {self.paper.slippage_bps:g} bps is more than "
                                 f"the cash, so every entry would be denied; at most {int(usable * 100) / 100:g}")
            problem = bot.dca_problem(self.paper.starting_balance, self.paper.fee_pct, self.paper.slippage_bps)
            if problem:
                raise ValueError(f"bots.{i}.dca: {problem}")
            for sym in bot.symbols:
                if sym not in self.market.symbols:
                    where = "symbol" if sym == bot.symbol else "dca.pairs"
                    raise ValueError(f"bots.{i}.{where}: {sym!r} is not in market.symbols {self.market.symbols}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env beats the file; the file arrives as init kwargs from load_config().
        return (env_settings, init_settings)


class Secrets(BaseSettings):
    """Secrets: only from the environment, never from config.yaml, never written anywhere."""

    model_config = SettingsConfigDict(env_prefix="BOT_", extra="ignore")

    binance_api_key: SecretStr | None = None
    binance_api_secret: SecretStr | None = None
    dashboard_password: SecretStr | None = None
    live_trading: bool = Field(False, description="BOT_LIVE_TRADING=1: the environment's half of the live switch")


BINANCE_DOMAINS = ("binance.com", "binance.vision", "binancefuture.com", "binance.us", "binance.me",
                   "binance.info", "binance.cloud", "bnbstatic.com")


def _binance_host(url: str) -> bool:
    from urllib.parse import urlparse

    host = (urlparse(url if "://" in url else f"http://{url}").hostname or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in BINANCE_DOMAINS)


def _find_secret_keys(node: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if any(word in str(key).lower() for word in SECRET_WORDS):
                found.append(here)
            found.extend(_find_secret_keys(value, here))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_find_secret_keys(value, f"{path}.{i}"))
    return found


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG)


MAX_CONFIG_BYTES = 1_000_000
MAX_DEPTH = 50


MAX_NODES = 100_000


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader with a nesting limit (deep nesting exhausts the stack) and a size limit on the document
    as its aliases expand it (an alias bomb turns a few hundred bytes into billions of values)."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):  # type: ignore[no-untyped-def]
        node = super().compose_document()
        sizes: dict[int, int] = {}
        active: set[int] = set()

        def size(n: yaml.Node) -> int:  # values once expanded; each shared node counted once per use
            if id(n) in sizes:
                return sizes[id(n)]
            if id(n) in active:
                raise yaml.YAMLError(f"line {n.start_mark.line + 1}: a value that contains itself (recursive alias)")
            active.add(id(n))
            total = 1
            if isinstance(n, yaml.SequenceNode):
                total += sum(size(c) for c in n.value)
            elif isinstance(n, yaml.MappingNode):
                total += sum(size(k) + size(v) for k, v in n.value)
            sizes[id(n)] = total
            active.discard(id(n))
            if total > MAX_NODES:
                raise yaml.YAMLError(f"line {n.start_mark.line + 1}: the document expands to more than "
                                     f"{MAX_NODES:,} values (YAML aliases used as a bomb?)")
            return total

        if node is not None:
            size(node)
        return node


def _read_yaml(source: Path) -> Any:
    if source.is_dir():
        raise ConfigError([f"{source} is a directory, not a config file"], str(source))
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read it: {exc.strerror or exc}"], str(source)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError([f"the file is {len(data):,} bytes; a config is at most {MAX_CONFIG_BYTES:,}"], str(source))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start}): save the file as UTF-8"], str(source)) from None
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(source)) from None
    except RecursionError:
        raise ConfigError([f"nested too deeply (more than {MAX_DEPTH} levels)"], str(source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Read the YAML file, apply env overrides, validate. Raises ConfigError naming key and rule."""
    source = config_path(path)
    if not source.exists() and (path is not None or os.environ.get("BOT_CONFIG")):
        raise ConfigError([f"config file not found: {source}"], str(source))
    raw = _read_yaml(source) if source.exists() else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of sections"], str(source))
    secret_keys = _find_secret_keys(raw)
    if secret_keys:
        raise ConfigError(
            [f"{k}: secrets are read only from the environment (e.g. BOT_BINANCE_API_KEY), never from the file"
             for k in secret_keys],
            str(source),
        )
    folder = _user_strategies(raw, source)
    try:
        app = AppConfig(**raw)
    except ValidationError as exc:
        raise ConfigError(error_lines(exc), str(source)) from None
    except SettingsError as exc:  # a BOT_* override that is not valid JSON for its (complex) key
        raise ConfigError(_env_problems(exc), str(source)) from None
    app.strategies = StrategiesConfig(path=str(folder))  # absolute: spawned processes load the same folder
    return app


def _user_strategies(raw: dict[str, Any], source: Path) -> Path:
    """Register the user strategies (before the bots are validated: they may name one); returns the folder."""
    from strategy.registry import register_user_strategies

    sect = raw.get("strategies")
    given = os.environ.get("BOT_STRATEGIES__PATH") or (sect.get("path") if isinstance(sect, dict) else None)
    folder = Path(given if isinstance(given, str) and given else StrategiesConfig().path)
    folder = folder if folder.is_absolute() else source.parent.resolve() / folder
    register_user_strategies(folder)
    return folder


def _env_problems(exc: SettingsError) -> list[str]:
    """Which BOT_* variable could not be read, and why (lists and mappings are JSON there)."""
    out = []
    for name, value in sorted(os.environ.items()):
        if not name.startswith("BOT_"):
            continue
        try:
            json.loads(value)
        except ValueError as err:
            if value.lstrip()[:1] in ("[", "{", '"'):
                out.append(f"{name} (environment): not valid JSON ({err.msg} at character {err.pos}); lists and "
                           'mappings are written as JSON, e.g. BOT_MARKET__SYMBOLS=\'["BTCUSDT","ETHUSDT"]\'')
    return out or [f"environment: {exc}; lists and mappings are written as JSON, e.g. "
                   'BOT_MARKET__SYMBOLS=\'["BTCUSDT","ETHUSDT"]\'']
