"""``Batch``'s own ``set`` and ``xadd`` (state/batch.py) record exactly the arguments redis-py's methods
would send, for the calls the writer makes and for any other option (which they hand to redis-py)."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.commands import CoreCommands
from redis.exceptions import DataError

from state.batch import Batch

text = st.one_of(st.text(max_size=20), st.binary(max_size=20))
values = st.one_of(text, st.integers(), st.floats(allow_nan=False))


def both(method: str, *args: Any, **kwargs: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(what Batch records, what redis-py's own method records) for the same call."""
    mine, theirs = Batch(), Batch()
    getattr(mine, method)(*args, **kwargs)
    getattr(CoreCommands, method)(theirs, *args, **kwargs)
    return mine.ops, theirs.ops


@settings(max_examples=300, deadline=None)
@given(text, values)
def test_set_records_what_redis_py_sends(name: Any, value: Any) -> None:
    mine, theirs = both("set", name, value)
    assert mine == theirs and len(mine) == 1


@pytest.mark.parametrize("kwargs", [{"nx": True}, {"ex": 5}, {"px": 10, "xx": True}, {"keepttl": True}, {"get": True}])
def test_set_with_options_is_redis_pys(kwargs: dict[str, Any]) -> None:
    mine, theirs = both("set", "k", "v", **kwargs)
    assert mine == theirs


@settings(max_examples=300, deadline=None)
@given(text, st.dictionaries(text, values, min_size=1, max_size=4), st.one_of(st.none(), st.integers(0, 10**6)),
       st.booleans(), st.sampled_from(["*", "1-1", b"5-0"]))
def test_xadd_records_what_redis_py_sends(name: Any, fields: dict[Any, Any], maxlen: int | None, approximate: bool,
                                          id: Any) -> None:
    mine, theirs = both("xadd", name, fields, id=id, maxlen=maxlen, approximate=approximate)
    assert mine == theirs and len(mine) == 1


def test_the_writers_record_call() -> None:
    mine, theirs = both("xadd", "orders:b1", {"data": '{"x": 1}'}, maxlen=50_000, approximate=True)
    assert mine == theirs == [("XADD", "orders:b1", b"MAXLEN", b"~", "50000", "*", "data", '{"x": 1}')]


@pytest.mark.parametrize("kwargs", [{"nomkstream": True}, {"minid": "0-1"}, {"maxlen": 5, "limit": 2},
                                    {"ref_policy": "DELREF"}])
def test_xadd_with_other_options_is_redis_pys(kwargs: dict[str, Any]) -> None:
    mine, theirs = both("xadd", "s", {"a": 1}, **kwargs)
    assert mine == theirs


@pytest.mark.parametrize("fields,maxlen", [({}, None), ({"a": 1}, -1), ({"a": 1}, 2.5), ([("a", 1)], None)])
def test_xadd_refuses_what_redis_py_refuses(fields: Any, maxlen: Any) -> None:
    with pytest.raises(DataError):
        Batch().xadd("s", fields, maxlen=maxlen)
