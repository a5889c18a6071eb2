"""parse_command: valid commands pass; each malformed one names the offending field."""
from __future__ import annotations

import fakeredis
import pytest

from state import keys
from state.commands import Command, CommandRejected, new_command, parse_command, post_command

NONCE = "n0nce-0001"


def fields(**kw: str) -> dict[str, str]:
    base = {"cmd": "pause", "scope": "bot", "target": "paper-sma-btc", "nonce": NONCE, "user": "alice",
            "ts": "1704067200000", "reason": "checking"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def rejected(f: dict[str, str]) -> str:
    with pytest.raises(CommandRejected) as ei:
        parse_command(f)
    return str(ei.value)


@pytest.mark.parametrize("f", [
    fields(),
    fields(cmd="flatten"),
    fields(cmd="resume"),
    fields(scope="mode", target="paper"),
    fields(scope="mode", target="ghost", cmd="flatten"),
    fields(scope="global", target=""),
    fields(cmd="emergency_stop", scope="global", target=""),
    fields(cmd="resume_all", scope="global", target=""),
])
def test_valid_commands_parse(f: dict[str, str]) -> None:
    cmd = parse_command(f)
    assert isinstance(cmd, Command)
    assert cmd.cmd == f["cmd"] and cmd.scope == f["scope"] and cmd.nonce == NONCE
    assert cmd.ts == 1_704_067_200_000 and cmd.user == "alice"


def test_defaults_for_optional_fields() -> None:
    cmd = parse_command({"cmd": "pause", "target": "b1", "nonce": NONCE, "ts": "0"})
    assert (cmd.scope, cmd.user, cmd.reason) == ("bot", "dashboard", "")
    assert cmd.label == "pause b1"


def test_fields_round_trip() -> None:
    cmd = new_command("flatten", "mode", "paper", user="bob", reason="why")
    assert parse_command(cmd.fields()) == cmd
    assert len(cmd.nonce) == 32


def test_missing_nonce() -> None:
    msg = rejected(fields(nonce=None))  # type: ignore[arg-type]
    assert msg == "nonce: Field required"


@pytest.mark.parametrize("nonce", ["short", "has space-12", "x" * 65, "semi;colon12"])
def test_bad_nonce(nonce: str) -> None:
    assert rejected(fields(nonce=nonce)).startswith("nonce: ")


def test_unknown_cmd() -> None:
    msg = rejected(fields(cmd="liquidate"))
    assert msg.startswith("cmd: Input should be 'pause', 'flatten', 'resume', 'reduce_only', 'halt', 'set_limit', "
                          "'upsert_dca_bot', 'adopt', 'ignore_drift', 'backtest', 'emergency_stop', 'resume_all', "
                          "'signal', 'golive' or 'auth'")


def test_scope_bot_without_target() -> None:
    msg = rejected(fields(target=""))
    assert "scope 'bot' needs the bot name in 'target'" in msg


def test_bad_mode_target() -> None:
    msg = rejected(fields(scope="mode", target="demo"))
    assert "scope 'mode' needs target one of ('ghost', 'paper', 'live')" in msg


def test_global_with_target() -> None:
    assert "scope 'global' takes no target" in rejected(fields(scope="global", target="b1"))


def test_emergency_stop_must_be_global() -> None:
    assert "emergency_stop is always global (scope must be 'global')" in rejected(fields(cmd="emergency_stop"))


def test_unknown_scope() -> None:
    assert rejected(fields(scope="all")).startswith("scope: Input should be 'bot', 'mode' or 'global'")


def test_extra_fields() -> None:
    msg = rejected(fields(force="1"))
    assert msg == "force: Extra inputs are not permitted"


def test_bad_ts() -> None:
    assert rejected(fields(ts="yesterday")).startswith("ts: ")
    assert rejected(fields(ts="-1")).startswith("ts: Input should be greater than or equal to 0")


def test_several_problems_are_all_named() -> None:
    msg = rejected({"cmd": "nope", "ts": "1", "extra": "x"})
    for field in ("cmd:", "nonce:", "extra:"):
        assert field in msg


def test_post_command_adds_a_flat_field_map_to_the_stream() -> None:
    r = fakeredis.FakeRedis()
    cmd = new_command("pause", "global")
    entry_id = post_command(r, cmd)
    ((eid, raw),) = r.xrange(keys.COMMANDS)
    assert eid.decode() == entry_id
    got = {k.decode(): v.decode() for k, v in raw.items()}
    assert parse_command(got) == cmd
