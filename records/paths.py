"""Where `make run` keeps its files: ``var/`` (``BOT_VAR`` moves it) and, in it, the records store."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def var_dir() -> Path:
    """Logs, the exchange's accounts, Redis' data (by default) and the records: BOT_VAR or var/."""
    return Path(os.environ.get("BOT_VAR") or ROOT / "var")


def records_dir() -> Path:
    """The long-term records store: BOT_RECORDS_DIR, else <var>/records."""
    return Path(os.environ.get("BOT_RECORDS_DIR") or var_dir() / "records")


def exchange_state_file() -> Path:
    """The local exchange's accounts (balances, orders, positions), kept across restarts."""
    return var_dir() / "exchange-state.json"
