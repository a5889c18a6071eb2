"""The `signal` command: its payload's validation names the field, a refused alert is rejected with
its reason, and a worker that does not handle signals rejects them instead of applying anything."""
from __future__ import annotations

import json

import pytest

from state.commands import (ALL_COMMANDS, CommandRejected, SignalPayload, new_command, parse_command, refused_signal,
                            signal_payload)

T0 = 1_735_689_600_000


def payload(**kw: object) -> str:
    base: dict[str, object] = {"side": "BUY", "symbol": "BTCUSDT", "price": 100.0, "stop_loss": 95.0,
                               "take_profit": 110.0, "confidence": 0.8, "alert_time": T0, "alert_id": "a-1",
                               "source": "tradingview"}
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def signal_fields(p: str) -> dict[str, str]:
    return new_command("pause", "bot", "wh").fields() | {"cmd": "signal", "payload": p}


def test_a_valid_signal_parses_for_a_worker_that_handles_it() -> None:
    cmd = parse_command(signal_fields(payload()), handles=ALL_COMMANDS)
    p = signal_payload(cmd.payload)
    assert (p.side, p.symbol, p.price, p.stop_loss, p.take_profit, p.alert_id) == ("BUY", "BTCUSDT", 100, 95, 110,
                                                                                   "a-1")


def test_a_worker_without_the_signal_handler_rejects_it() -> None:
    with pytest.raises(CommandRejected, match="cmd: this worker does not act on 'signal' commands"):
        parse_command(signal_fields(payload()))


@pytest.mark.parametrize("kw, field", [
    ({"side": "HOLD"}, "payload.side"),
    ({"symbol": "btc/usdt"}, "payload.symbol"),
    ({"price": -1}, "payload.price"),
    ({"confidence": 1.5}, "payload.confidence"),
    ({"alert_time": None}, "payload.alert_time"),
    ({"stop_loss": 105.0}, "stop_loss: 105 must be below the price 100 for a BUY"),
    ({"take_profit": 90.0}, "take_profit: 90 must be above the price 100 for a BUY"),
    ({"side": "SELL"}, "stop_loss: 95 must be above the price 100 for a SELL"),
    ({"price": None, "stop_loss": 120.0}, "stop_loss: 120 and take_profit 110 are the wrong way round"),
    ({"leverage": 5}, "payload.leverage: Extra inputs are not permitted"),
])
def test_each_bad_payload_names_its_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(CommandRejected) as ei:
        parse_command(signal_fields(payload(**kw)), handles=ALL_COMMANDS)
    assert field in str(ei.value)


def test_signal_needs_a_bot() -> None:
    f = signal_fields(payload()) | {"scope": "global", "target": ""}
    with pytest.raises(CommandRejected, match="signal needs scope 'bot'"):
        parse_command(f, handles=ALL_COMMANDS)


def test_a_refused_alert_is_rejected_with_the_api_reason() -> None:
    cmd = refused_signal("wh", "webhook:json", "time: the alert is 300 s old", '{"side": "BUY"}', "rej-" + "a" * 20)
    fields = cmd.fields()
    assert fields["cmd"] == "signal" and fields["user"] == "webhook:json"
    with pytest.raises(CommandRejected, match="alert refused by the API: time: the alert is 300 s old"):
        parse_command(fields, handles=ALL_COMMANDS)


def test_new_command_takes_a_derived_nonce() -> None:
    a = new_command("signal", "bot", "wh", payload=payload(), nonce="sig-abcdef0123")
    assert a.nonce == "sig-abcdef0123"
    assert SignalPayload.model_validate_json(a.payload).confidence == 0.8
    assert new_command("pause", "bot", "x").nonce != new_command("pause", "bot", "x").nonce
