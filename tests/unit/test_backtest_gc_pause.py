"""The backtest's collector pause (backtest.engine.gc_paused): off during a run, back after it, also
when runs overlap in threads or the caller had turned the collector off itself."""
from __future__ import annotations

import gc
import threading

import pytest

from backtest.engine import gc_paused


@pytest.fixture(autouse=True)
def _collector_back() -> None:  # type: ignore[misc]
    yield
    gc.enable()


def test_the_collector_is_off_during_a_run_and_back_after_it_even_when_the_run_raises() -> None:
    gc.enable()
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("a run that fails")
    assert gc.isenabled()


def test_overlapping_runs_in_threads_bring_it_back_only_when_the_last_ends() -> None:
    gc.enable()
    first_in, second_done, first_may_end = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with gc_paused():
            first_in.set()
            first_may_end.wait(10)
            seen.append(gc.isenabled())

    def second() -> None:
        first_in.wait(10)
        with gc_paused():
            pass
        seen.append(gc.isenabled())  # the first run is still going: still off
        second_done.set()

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start(), b.start()
    second_done.wait(10)
    first_may_end.set()
    a.join(10), b.join(10)
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_caller_that_had_it_off_keeps_it_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()
