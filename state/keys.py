"""Every Redis key name of the product, in one place (like rq's and arq's constants).

docs/redis-schema.md describes each key; change both together.
"""
from __future__ import annotations

PREFIX = "bot:"

# Worker liveness: STRING (JSON Heartbeat) with a TTL; gone = worker down.
HEARTBEAT = PREFIX + "worker:heartbeat"
# The single-worker lease (state/lease.py): STRING JSON {token, host, pid, since} with a TTL renewed by
# the heartbeat; FENCE: the token of the worker that last took it (no TTL), checked in every state
# write and order intent; LEASE_SEQ: the counter tokens come from.
LEASE = PREFIX + "worker:lease"
FENCE = PREFIX + "worker:fence"
LEASE_SEQ = PREFIX + "worker:lease_seq"
# STRING: the id of the worker's last committed batch, written in that batch's transaction (was a
# batch whose answer was lost written? state/writer.StateWriter.commit)
LAST_COMMIT = PREFIX + "worker:last_commit"
# Market and venue health as the worker saw it last (engine/health.py): STRING JSON, rewritten every second.
HEALTH = PREFIX + "worker:health"
# The live account's guard (engine/account_guard.py): STRING JSON {equity, time, monitor state}.
ACCOUNT_GUARD = PREFIX + "live:account"
# The last heartbeat, kept when the worker dies (no TTL): the dashboard says "down since" its time.
LAST_HEARTBEAT = PREFIX + "worker:last_heartbeat"
# The configured bots: HASH name -> JSON BotMeta (rewritten at every worker start).
BOTS = PREFIX + "bots"
# Commands from the dashboard: STREAM, consumer group COMMAND_GROUP.
COMMANDS = PREFIX + "commands"
COMMAND_GROUP = "worker"
# Audit trail of every command and its effect: STREAM.
AUDIT = PREFIX + "audit"
# Nonces of applied commands: HASH nonce -> stream entry id (idempotency).
APPLIED = PREFIX + "commands:applied"  # (before wave 2: one HASH that grew forever; read for old nonces)


def applied(nonce: str) -> str:
    """An applied command's nonce: STRING stream entry id, expiring after APPLIED_KEEP_S (a duplicate
    posted later than that is a new command; the command stream itself keeps ~10,000 entries)."""
    return f"{PREFIX}commands:applied:{nonce}"


APPLIED_KEEP_S = 7 * 24 * 3600
# Rejected input (malformed commands, bad candles): STREAM.
REJECTS = PREFIX + "rejects"
# Bots created or edited from the dashboard: HASH name -> JSON bot config (loaded at start).
DYNAMIC_BOTS = PREFIX + "bots:dynamic"
# Counters of rejected candles by reason: HASH.
CANDLE_REJECTS = PREFIX + "market:rejected"


def control(scope: str, target: str = "") -> str:
    """Level-triggered trading state: HASH state/set_by/set_at/reason.

    scope 'global' (no target), 'mode' (target = paper|ghost|live) or 'bot' (target = bot name).
    """
    return f"{PREFIX}control:global" if scope == "global" else f"{PREFIX}control:{scope}:{target}"


def snapshot(bot: str) -> str:
    """The bot's latest snapshot: STRING (JSON BotSnapshot)."""
    return f"{PREFIX}snap:{bot}"


def orders(bot: str) -> str:
    return f"{PREFIX}orders:{bot}"


def fills(bot: str) -> str:
    return f"{PREFIX}fills:{bot}"


def trades(bot: str) -> str:
    return f"{PREFIX}trades:{bot}"


def signals(bot: str) -> str:
    return f"{PREFIX}signals:{bot}"


def deals(bot: str) -> str:
    """Closed DCA deals: STREAM of JSON deals (tranches, P&L, safety orders used, drawdown)."""
    return f"{PREFIX}deals:{bot}"


def equity(bot: str) -> str:
    return f"{PREFIX}equity:{bot}"


def risk_decisions(bot: str) -> str:
    """Risk decisions with the rule and the numbers compared (all of paper/live signal bots, the
    denials of ghost and DCA bots): STREAM."""
    return f"{PREFIX}risk:{bot}"


def limits(bot: str) -> str:
    """Limits lowered from the dashboard at run time: HASH limit -> JSON value (re-applied at start)."""
    return f"{PREFIX}limits:{bot}"


def candles(symbol: str) -> str:
    """Recent closed candles of a symbol: LIST of JSON, oldest first, trimmed."""
    return f"{PREFIX}candles:{symbol}"


def command_result(nonce: str) -> str:
    """The answer to one command: STRING (JSON CommandResult) with a TTL."""
    return f"{PREFIX}cmdresult:{nonce}"


def bot_keys(bot: str) -> list[str]:
    return [snapshot(bot), orders(bot), fills(bot), trades(bot), signals(bot), equity(bot), risk_decisions(bot),
            deals(bot)]


# ---- live orders (issue 3): intents recorded before sending, with every state transition ----


def intents(bot: str) -> str:
    """Live order intents of a bot: HASH client order id -> JSON IntentRecord (latest state)."""
    return f"{PREFIX}intents:{bot}"


def open_intents(bot: str) -> str:
    """Client order ids of a bot whose outcome is not final yet: SET (recovery reads it at start)."""
    return f"{PREFIX}intents:open:{bot}"


def final_intents(bot: str) -> str:
    """ZSET client order id -> time it became final; what ``RedisIntentStore.prune`` trims by."""
    return f"{PREFIX}intents:final:{bot}"


def intent_events(bot: str) -> str:
    """Every intent state transition of a bot, in order: STREAM (field `data`: JSON IntentEvent)."""
    return f"{PREFIX}intents:events:{bot}"


def preflight(bot: str) -> str:
    """The live bot's last pre-flight report: STRING (JSON: ok, venue, checks, summary)."""
    return f"{PREFIX}preflight:{bot}"


def venue_view(bot: str) -> str:
    """What the venue holds for a live bot and the last reconciliation: STRING (JSON)."""
    return f"{PREFIX}venue:{bot}"


def recon_baseline(bot: str) -> str:
    """Spot assets the user held beside the bot when it was first reconciled: HASH asset -> amount."""
    return f"{PREFIX}recon:baseline:{bot}"


# ---- backtests run from the dashboard (issue 6): state/backtest_store.py keeps the last 20 ----

# Stored backtest results by time: ZSET result id -> created_at (epoch ms).
BACKTEST_INDEX = PREFIX + "backtests"
# One line per stored result: HASH result id -> JSON (bot, status, times, headline metrics, error).
BACKTEST_META = PREFIX + "backtests:meta"


def backtest_result(result_id: str) -> str:
    """A finished backtest: STRING (JSON: request, report with trades, plot data, data info)."""
    return f"{PREFIX}backtest:{result_id}"


# ---- operator reach (issue 13): events for alerts and the audit view, the notifier ----
# (state/events.py writes and reads the events, state/notifier_store.py the notifier's key)

# What happened, for people: STREAM `MAXLEN ~ events.EVENTS_KEEP`, field `data`: JSON Event.
EVENTS = PREFIX + "events"
# The notifier's consumer group on EVENTS (created at '$': events before its first start are not sent).
NOTIFIER_GROUP = "notifier"
# The notifier's own key: HASH `status` -> JSON NotifierStatus, `sent:{event id}` -> the targets that
# already have that event (only while it is unacknowledged: a restart sends it to the others only).
NOTIFIER = PREFIX + "notifier"


# ---- records, reports and the operator's view (issue 17; docs/records.md) ----

# The archiver's status (records.archiver, a process of its own): STRING JSON ArchiverStatus, TTL.
ARCHIVER_STATUS = PREFIX + "records:archiver"
# (the worker's health view is keys.HEALTH, read as state.telemetry.HealthView by the health panel)
# Each live bot's paper shadow (same signals, paper fills): HASH live bot -> shadow bot name, written
# by the worker at start. The shadow writes the usual record streams under its own name.
SHADOWS = PREFIX + "shadows"
# Display facts of each traded symbol (base and quote asset, tick and step size from the venue's
# filters): HASH symbol -> JSON state.telemetry.SymbolFacts, written by the worker at start.
SYMBOLS = PREFIX + "symbols"

# ---- write what changed (issue 19): engine/snapshot_policy.py, state/writer.py ----

# The last closed candle each bot processed, written in the same transaction as the candles of every
# trading step: HASH bot -> open_time (epoch ms). A bot's snapshot is written only when something the
# dashboard or a restart needs changed, its marks at most every dashboard.refresh_s; at start the
# stored candles after the snapshot's and up to this cursor are run through the bot again.
SNAPSHOT_CURSORS = PREFIX + "snapshot:cursors"

# ---- going live (issue 14): go-live stages per live bot, sign-in and TOTP state per dashboard user ----
# (state/golive_store.py and state/auth_store.py; the worker writes both, the dashboard reads them)


def golive(bot: str) -> str:
    """A live bot's go-live stage and its history: STRING (JSON GoLiveRecord)."""
    return f"{PREFIX}golive:{bot}"


def auth_state(user: str) -> str:
    """A dashboard user's failures, lock and last accepted TOTP step: HASH (never a secret)."""
    return f"{PREFIX}auth:{user}"

# ---- shards (issue 19): bots spread over several workers (state/shards.py, state/lease.py) ----
# Shard 0 keeps the single-worker names above (LEASE, FENCE, COMMANDS), so one worker with one shard
# reads and writes exactly what it did before shards existed.

# Which shard trades which bot: HASH bot name -> shard number (every worker writes it at start).
SHARD_MAP = PREFIX + "shards"
# How many shards the workers run: STRING int (senders fan kill switches out to every one).
SHARD_COUNT = PREFIX + "shards:count"


def shard_lease(shard: int) -> str:
    """A shard's lease: STRING JSON {token, host, pid, since, shard} with a TTL renewed by its holder."""
    return LEASE if shard == 0 else f"{PREFIX}shard:{shard}:lease"


def shard_fence(shard: int) -> str:
    """The token of the worker that last took a shard (no TTL): checked by every write for its bots."""
    return FENCE if shard == 0 else f"{PREFIX}shard:{shard}:fence"


def shard_released(shard: int) -> str:
    """Set (to the last token) when a shard's worker stopped cleanly and released it; deleted when a worker
    takes it. A released shard is not taken over: it waits for its worker."""
    return f"{PREFIX}worker:released" if shard == 0 else f"{PREFIX}shard:{shard}:released"


def shard_commands(shard: int) -> str:
    """A shard's command stream (consumer group COMMAND_GROUP); only its lease holder reads it."""
    return COMMANDS if shard == 0 else f"{PREFIX}commands:shard:{shard}"


def shard_applied(nonce: str, shard: int) -> str:
    """A fanned-out command's nonce applied by one shard: STRING entry id, TTL APPLIED_KEEP_S."""
    return applied(nonce) if shard == 0 else f"{applied(nonce)}:shard:{shard}"


def command_parts(nonce: str) -> str:
    """The shards' answers to a fanned-out command: HASH shard -> JSON CommandResult (TTL as the result);
    ``command_result(nonce)`` holds them merged."""
    return f"{PREFIX}cmdresult:{nonce}:shards"
