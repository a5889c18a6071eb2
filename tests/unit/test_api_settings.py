"""The API's settings and the webhook's alert normalisation, without a server: token and secret
formats (each error names the variable and entry, never the secret), both alert shapes."""
from __future__ import annotations

import hashlib

import pytest

from api.auth import TokenStore
from api.settings import ApiSettings, SettingsError, WebhookSettings, parse_tokens, parse_webhook_secrets
from api.webhook import Refusal, WebhookGate, normalize

TOKEN = "t" * 30


def test_tokens_are_kept_as_digests_with_their_scope(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    f = tmp_path / "tokens"
    digest = hashlib.sha256(b"from-the-file-0123456789abc").hexdigest()
    f.write_text(f"# CI\nci:read:sha256={digest}\n")
    monkeypatch.setenv("BOT_API_TOKENS", f"ops:operator:{TOKEN}, grafana:read:{'g' * 24}")
    monkeypatch.setenv("BOT_API_TOKENS_FILE", str(f))
    entries = parse_tokens(ApiSettings())
    assert [(e.name, e.scope) for e in entries] == [("ops", "operator"), ("grafana", "read"), ("ci", "read")]
    assert all(TOKEN.encode() not in e.digest for e in entries)
    store = TokenStore(entries)
    assert store.identify(TOKEN).user == "api:ops"  # type: ignore[union-attr]
    assert store.identify("from-the-file-0123456789abc").name == "ci"  # type: ignore[union-attr]
    assert store.identify("t" * 29) is None


@pytest.mark.parametrize("value, message", [
    (f"ops:admin:{TOKEN}", "BOT_API_TOKENS: entry 1 (ops): scope must be 'read' or 'operator'"),
    ("ops:read:short-token", "BOT_API_TOKENS: entry 1 (ops): the token must have at least 24 characters"),
    (f"o.p:read:{TOKEN}", "BOT_API_TOKENS: entry 1: name must be"),
    (f"a:read:{TOKEN},a:operator:{'x' * 24}", "BOT_API_TOKENS: entry 2: token name 'a' is used twice"),
    ("a:read:sha256=abc", "BOT_API_TOKENS: entry 1 (a): sha256= needs the 64 hex digits"),
])
def test_bad_tokens_are_named_without_the_secret(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("BOT_API_TOKENS", value)
    with pytest.raises(SettingsError) as ei:
        parse_tokens(ApiSettings())
    assert str(ei.value).startswith(message)
    assert TOKEN not in str(ei.value) and "short-token" not in str(ei.value)


def test_webhook_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_WEBHOOK_SECRETS", "wh-btc:a-long-enough-secret")
    gate = WebhookGate(WebhookSettings(), parse_webhook_secrets(WebhookSettings()))
    assert gate.authentic("wh-btc", "a-long-enough-secret")
    assert not gate.authentic("wh-btc", "a-long-enough-secreT") and not gate.authentic("other", "a-long-enough-secret")
    monkeypatch.setenv("BOT_WEBHOOK_SECRETS", "wh-btc:short")
    with pytest.raises(SettingsError, match="entry 1 \\(wh-btc\\): the secret must have at least 16"):
        parse_webhook_secrets(WebhookSettings())


def test_tradingview_shape() -> None:
    p = normalize({"ticker": "BINANCE:BTCUSDT.P", "action": "Sell", "price": "50000.5", "sl": "51000",
                   "tp": "48000", "time": "2026-01-01T12:00:00Z", "id": "Short 1", "exchange": "BINANCE",
                   "interval": "5"}, "ETHUSDT")
    assert (p.side, p.symbol, p.price, p.stop_loss, p.take_profit) == ("SELL", "BTCUSDT", 50000.5, 51000, 48000)
    assert p.alert_time == 1_767_268_800_000 and p.alert_id == "Short 1" and p.source == "tradingview"
    assert p.confidence == 1.0


def test_plain_shape() -> None:
    p = normalize({"side": "BUY", "price": 100, "stop_loss": 95, "time": 1_767_268_800, "confidence": 0.7},
                  "ETHUSDT")
    assert (p.side, p.symbol, p.alert_time, p.confidence, p.source) == ("BUY", "ETHUSDT", 1_767_268_800_000, 0.7,
                                                                        "json")


@pytest.mark.parametrize("data, message", [
    ({"side": "HOLD", "time": 1}, "side: must be buy or sell"),
    ({"action": "buy", "ticker": "BTCUSDT"}, "time: required"),
    ({"side": "BUY", "time": "yesterday"}, "time: 'yesterday' is neither"),
    ({"side": "BUY", "time": "2026-01-01T12:00:00"}, "time: an ISO time needs its zone"),
    ({"side": "BUY", "time": 1, "price": "abc"}, "price: 'abc' is not a number"),
    ({"side": "BUY", "time": 1, "qty": 3}, "qty: unknown field for a plain JSON alert"),
    ({"side": "BUY", "time": 1, "price": 100, "stop_loss": 101}, "stop_loss: 101 must be below the price 100"),
    ({"side": "BUY", "time": 1, "confidence": 2}, "confidence: Input should be less than or equal to 1"),
])
def test_each_malformed_alert_names_its_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(Refusal) as ei:
        normalize(data, "BTCUSDT")
    assert str(ei.value).startswith(message)
