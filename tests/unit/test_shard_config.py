"""Shard assignment and the `run --shards` options: a stable rule, explicit shards, clear refusals."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from cli.run import _shards
from settings import AppConfig
from core.sharding import shard_of


def test_a_bots_shard_is_a_stable_hash_of_its_name_unless_given() -> None:
    names = [f"bot-{i}" for i in range(200)]
    spread = [shard_of(n, 4) for n in names]
    assert spread == [shard_of(n, 4) for n in names]  # same answer every time, in every process (CRC-32)
    assert (shard_of("paper-mom-btc", 4), shard_of("ghost-mom-btc", 4)) == (1, 2)  # pinned: never moves
    assert all(spread.count(s) > 30 for s in range(4))  # spread over every shard
    assert {shard_of(n, 1) for n in names} == {0}  # one shard: every bot in it
    assert shard_of("bot-1", 4, explicit=3) == 3


def test_a_bot_shard_must_exist() -> None:
    bot = {"name": "b", "mode": "paper", "symbol": "BTCUSDT", "strategy": "momentum", "shard": 2}
    with pytest.raises(ValidationError, match=r"bots.0.shard: 2 must be below worker.shards \(2\)"):
        AppConfig(worker={"shards": 2}, bots=[bot])
    assert AppConfig(worker={"shards": 3}, bots=[bot]).bots[0].shard == 2
    assert AppConfig().worker.shards == 1  # the default: one worker, one shard


def test_run_shards_option() -> None:
    assert _shards(None, False, 3) is None  # all of them
    assert _shards("2,0", False, 3) == [0, 2]
    assert _shards(None, True, 3) == []
    with pytest.raises(ValueError, match=r"shards must be in 0..2 \(worker.shards is 3\); got '3'"):
        _shards("3", False, 3)
    with pytest.raises(ValueError, match="not a comma-separated list"):
        _shards("a,b", False, 3)
    with pytest.raises(ValueError, match="either --shards or --standby"):
        _shards("1", True, 3)


def test_live_bots_share_one_shard() -> None:
    """The live mode's cross-bot ceilings and the account guard need one worker's view of every live bot."""
    def live(name: str, shard: int | None) -> dict[str, object]:
        return {"name": name, "mode": "live", "symbol": "BTCUSDT", "strategy": "momentum", "shard": shard}

    with pytest.raises(ValidationError, match=r"live bots must share one shard .* they are in a: 0, b: 1"):
        AppConfig(worker={"shards": 2}, bots=[live("a", 0), live("b", 1)])
    assert len(AppConfig(worker={"shards": 2}, bots=[live("a", 1), live("b", 1)]).bots) == 2
    assert len(AppConfig(bots=[live("a", None), live("b", None)]).bots) == 2  # one shard: always
