"""`bot_manager.py send` posts every operator command the docs name, set_limit with its fields."""
from __future__ import annotations

import fakeredis
import pytest

import bot_manager
import cli.send
from state import keys
from state.commands import parse_command


@pytest.fixture
def r(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    server = fakeredis.FakeRedis(decode_responses=True)
    monkeypatch.setattr(cli.send, "redis_client", lambda url: server)
    return server


def last(r: fakeredis.FakeRedis) -> dict[str, str]:
    (_, fields), = r.xrevrange(keys.COMMANDS, count=1)
    return fields


def test_set_limit_from_the_shell(r: fakeredis.FakeRedis) -> None:
    assert bot_manager.main(["send", "set_limit", "--bot", "paper-sma-btc", "--limit", "max_position_pct",
                             "--value", "10"]) == 0
    cmd = parse_command(last(r))  # the worker's own validation accepts it
    assert (cmd.cmd, cmd.scope, cmd.target, cmd.limit, cmd.value) == ("set_limit", "bot", "paper-sma-btc",
                                                                      "max_position_pct", "10")


@pytest.mark.parametrize("argv,scope", [(["halt", "--mode", "paper"], "mode"), (["emergency_stop"], "global"),
                                        (["adopt", "--bot", "live-sma-btc"], "bot")])
def test_other_commands_from_the_shell(r: fakeredis.FakeRedis, argv: list[str], scope: str) -> None:
    assert bot_manager.main(["send", *argv]) == 0
    assert parse_command(last(r)).scope == scope
