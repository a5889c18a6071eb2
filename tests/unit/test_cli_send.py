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


@pytest.mark.parametrize("limit,value,why", [
    ("max_positon_value", "10", "'max_positon_value' is not a risk limit"),
    ("max_position_value", "nan", "finite number"),
    ("max_position_value", "inf", "finite number"),
    ("max_position_value", "-5", "greater than 0"),
    ("blackout_hours_utc", "25,2", "hours are 0..23"),
    ("blackout_hours_utc", "22", "two hours like 22,2"),
    ("fee_pct", "0", "not a risk limit"),
])
def test_set_limit_refuses_unknown_names_and_bad_values_before_posting(
        r: fakeredis.FakeRedis, capsys: pytest.CaptureFixture[str], limit: str, value: str, why: str) -> None:
    assert bot_manager.main(["send", "set_limit", "--bot", "b", "--limit", limit, "--value", value]) == 2
    assert why in capsys.readouterr().err
    assert r.xlen(keys.COMMANDS) == 0  # nothing posted


def test_send_needs_only_the_redis_url_when_the_config_is_invalid(
        r: fakeredis.FakeRedis, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A kill switch must be sendable when config.yaml does not validate (here: a live bot on mainnet
    without live.enabled); the Redis URL is read from the file on its own."""
    bad = tmp_path / "config.yaml"
    bad.write_text("redis: {url: 'redis://127.0.0.1:6399/0'}\nexchange: {venue: mainnet}\n"
                   "bots: [{name: x, mode: live, symbol: BTCUSDT, strategy: sma_crossover}]\n")
    monkeypatch.setenv("BOT_CONFIG", str(bad))
    from settings import ConfigError, load_config

    with pytest.raises(ConfigError):
        load_config()
    urls: list[str] = []
    monkeypatch.setattr(cli.send, "redis_client", lambda url: urls.append(url) or r)
    assert bot_manager.main(["send", "emergency_stop"]) == 0
    assert urls == ["redis://127.0.0.1:6399/0"] and parse_command(last(r)).cmd == "emergency_stop"
