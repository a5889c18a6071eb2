"""The local exchange's accounts on disk (``--state-file``): what a restart must not change.

Users rehearse live trading against this exchange, so a restart has to behave like a real venue's:
balances, open and past orders with their fills, trade ids, order/trade id counters, the USD-M
wallet, positions with leverage and margin type, and algo (conditional) orders all survive.
Prices are *not* stored here: the market continues through ``--resume`` / ``--start-ms``, and the
restored resting orders simply match against the bars that follow.

File format (JSON, UTF-8): ``{"format": FORMAT, "version": VERSION, "saved_at": ms, "spot": ...,
"futures": ..., "algo": ..., "funding": ..., "order_lists": ...}`` (``funding`` and ``order_lists`` are
optional, see ``funding_section.py`` and ``order_lists_section.py``).
Every Decimal is a string (``str(Decimal)``, exact). Trades are stored once per engine and orders
name their fills by trade id, so a restored order and the trade history share the same records,
as they do in memory. Listen keys are dropped (clients
create a new one, as after a Binance listen-key expiry).

Loading is strict: a corrupt, truncated or incompatible file raises ``StateFileError`` naming the
file and the problem. Starting empty instead would silently wipe an account a bot relies on.

Saving: ``StateSaver`` marks the state dirty on every order/fill event, every non-GET request,
every funding settlement and every bar that moves an open trailing stop, and writes at most every
``SAVE_INTERVAL_S`` (temp file + fsync + ``os.replace``, so a reader or a crash sees either the old
or the new file, never half of one). The state is captured on the event loop between requests, so a snapshot never catches an
order halfway through matching; encoding and writing it happen on a worker thread, one at a time.

Modules: ``codec`` (dataclasses <-> JSON, strict decoding), ``document`` (capture, render, restore),
``funding_section`` (funding times, rates and the income ledger), ``order_lists_section`` (spot
OCOs), ``saver`` (atomic files, load,
``StateSaver``).
"""
from simulator.state_file.codec import StateFileError
from simulator.state_file.document import FORMAT, VERSION, capture, dumps, render, restore, snapshot
from simulator.state_file.saver import SAVE_INTERVAL_S, StateSaver, load, save, write_atomic

__all__ = ["FORMAT", "VERSION", "SAVE_INTERVAL_S", "StateFileError", "StateSaver", "capture", "dumps", "load",
           "render", "restore", "save", "snapshot", "write_atomic"]
