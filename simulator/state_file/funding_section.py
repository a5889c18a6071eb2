"""The state file's ``funding`` section: what funding needs to continue after a restart.

``{"next_ms": int, "samples": {symbol: [[minute, "premium"], ...]}, "history": [rate records],
"income": {"next_tran_id": int, "records": [income records]}}``. The funding time still due and
this interval's premium samples make the next settlement the same as without the restart; the
rate history and the income ledger (every futures wallet change) are account history, kept like
trades. The section is optional: a file written before funding existed loads with no history and
an empty ledger, and the next funding time is the first one after the market's start.
The configured premiums are market settings, like the speed, and are not stored.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from simulator.funding import FundingRateRecord
from simulator.income import INCOME_TYPES, IncomeRecord
from simulator.state_file.codec import _Bad, _Codec, _decode, _dec, _int, _known_symbol, _list, _obj

if TYPE_CHECKING:
    from simulator.state import SimExchange

_RATE, _INCOME = _Codec(FundingRateRecord), _Codec(IncomeRecord)


def capture_funding(ex: SimExchange) -> dict[str, Any]:
    fund, ledger = ex.funding, ex.futures.income
    return {
        "next_ms": fund.next_ms,
        "samples": {s: list(lst) for s, lst in fund.samples.items() if lst},
        "history": [_RATE.values(r) for lst in fund.history.values() for r in lst],
        "next_tran_id": ledger.next_tran_id,
        "records": [_INCOME.values(r) for r in ledger.records],
    }


def render_funding(cap: dict[str, Any]) -> dict[str, Any]:
    return {
        "next_ms": cap["next_ms"],
        "samples": {s: [[minute, str(p)] for minute, p in lst] for s, lst in cap["samples"].items()},
        "history": [_RATE.encode(r) for r in cap["history"]],
        "income": {"next_tran_id": cap["next_tran_id"], "records": [_INCOME.encode(r) for r in cap["records"]]},
    }


def decode_funding(ex: SimExchange, raw: object) -> Callable[[], None]:
    """Check the section (absent: nothing to restore) and return what applies it."""
    if raw is None:  # written before funding existed: no history, and a ledger would not add up

        def clear() -> None:
            ex.futures.income.records = []

        return clear
    top = _obj(raw, "funding")
    specs = ex.futures.specs
    next_ms = _int(top.get("next_ms"), "funding.next_ms")
    samples: dict[str, list[tuple[int, Any]]] = {}
    for sym, rows in _obj(top.get("samples", {}), "funding.samples").items():
        _known_symbol(sym, specs, f"funding.samples.{sym}")
        lst = []
        for i, row in enumerate(_list(rows, f"funding.samples.{sym}")):
            pair = _list(row, f"funding.samples.{sym}[{i}]")
            if len(pair) != 2:
                raise _Bad(f"funding.samples.{sym}[{i}]: expected [minute, premium]")
            lst.append((_int(pair[0], f"funding.samples.{sym}[{i}]"), _dec(pair[1], f"funding.samples.{sym}[{i}]")))
        samples[sym] = lst
    history: dict[str, list[FundingRateRecord]] = {}
    for i, r_raw in enumerate(_list(top.get("history", []), "funding.history")):
        rec = _decode(FundingRateRecord, r_raw, f"funding.history[{i}]")
        _known_symbol(rec.symbol, specs, f"funding.history[{i}]")
        history.setdefault(rec.symbol, []).append(rec)
    income = _obj(top.get("income", {"next_tran_id": ex.futures.income.next_tran_id, "records": []}), "funding.income")
    next_tran = _int(income.get("next_tran_id"), "funding.income.next_tran_id")
    records: list[IncomeRecord] = []
    for i, r_raw in enumerate(_list(income.get("records"), "funding.income.records")):
        rec_i = _decode(IncomeRecord, r_raw, f"funding.income.records[{i}]")
        if rec_i.income_type not in INCOME_TYPES:
            raise _Bad(f"funding.income.records[{i}]: unknown income type {rec_i.income_type!r}")
        if rec_i.tran_id > next_tran:
            raise _Bad(f"funding.income.next_tran_id: {next_tran} but record {rec_i.tran_id} exists (ids would repeat)")
        records.append(rec_i)

    def apply() -> None:
        fund, ledger = ex.funding, ex.futures.income
        fund.next_ms, fund.samples, fund.history = next_ms, samples, history
        ledger.records, ledger.next_tran_id = records, next_tran

    return apply
