"""The notifier's rules without processes: de-duplication and its summaries, the rate limit, the
target settings, and the masking of secrets in log lines."""
from __future__ import annotations

import io
import logging

import pytest

from notify.masking import MaskingFilter
from notify.policy import Deduper, RateLimit, dedupe_key
from notify.settings import NotifySettings, SettingsError, parse_targets, secrets_of, telegram_chats
from notify.targets import Delivery, Target, render
from state import events as ev


def test_a_flapping_rule_sends_one_message_and_one_summary_per_window() -> None:
    d = Deduper(window_s=300)
    admitted = [d.admit(ev.order_refused("b1", "max_position_pct", f"value {i}"), now=float(i) / 10)
                for i in range(1000)]
    assert admitted.count(True) == 1 and admitted[0]
    assert d.flush(now=299.0) == []  # the window is still open
    (summary,) = d.flush(now=300.0)
    assert "repeated 999 more times in 5 min" in summary.title
    assert summary.data["repeats"] == 999 and summary.detail == "value 999"  # the latest one's numbers
    assert d.flush(now=301.0) == []
    assert d.admit(ev.order_refused("b1", "max_position_pct", "again"), now=302.0)  # a new window


def test_distinct_things_are_not_merged() -> None:
    d = Deduper(window_s=300)
    assert d.admit(ev.order_refused("b1", "max_position_pct", "x"), 0)
    assert d.admit(ev.order_refused("b2", "max_position_pct", "x"), 0)  # another bot
    assert d.admit(ev.order_refused("b1", "daily_loss", "x"), 0)  # another rule
    assert d.admit(ev.trade_opened("b1", "BTCUSDT", "BUY", 0.1, 100.0), 0)
    assert d.admit(ev.trade_opened("b1", "BTCUSDT", "BUY", 0.2, 101.0), 0)  # trades are keyed by their title
    assert dedupe_key(ev.stale_data("ETHUSDT", 30)) != dedupe_key(ev.stale_data("BTCUSDT", 30))


def test_window_zero_switches_deduplication_off() -> None:
    d = Deduper(window_s=0)
    assert all(d.admit(ev.stale_data("BTCUSDT", 30), 0) for _ in range(5))


def test_rate_limit_allows_n_per_rolling_minute() -> None:
    rl = RateLimit(per_min=3)
    for t in (0.0, 1.0, 2.0):
        assert rl.wait_s(t) == 0
        rl.record(t)
    assert rl.wait_s(10.0) == pytest.approx(50.0)
    assert rl.wait_s(60.0) == 0  # the first send left the window


def test_a_digest_joins_what_queued_up() -> None:
    batch = [Delivery("1-0", ev.trade_opened("b1", "BTCUSDT", "BUY", 0.1, 100.0)),
             Delivery("2-0", ev.risk_breach("b1", "daily_loss", "PAUSED", "loss"))]
    title, body, severity = render(batch)
    assert title.startswith("[CRITICAL] 2 events") and severity == "critical"
    assert body.splitlines() == ["• [INFO] b1: opened BUY 0.1 BTCUSDT @ 100",
                                 "• [CRITICAL] b1: risk limit daily_loss breached -> PAUSED"]
    title, body, severity = render(batch[1:])
    assert title == "[CRITICAL] b1: risk limit daily_loss breached -> PAUSED" and body.startswith("loss\nrisk_breach")


def test_targets_with_thresholds(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    urls = tmp_path / "urls"
    urls.write_text("# ops channel\nwarning=tgram://123456:SECRETtok/42\n")
    monkeypatch.setenv("BOT_NOTIFY_URLS", "json://127.0.0.1:9/hook critical=ntfy://ntfy.example/topicXYZ")
    monkeypatch.setenv("BOT_NOTIFY_URLS_FILE", str(urls))
    s = NotifySettings()
    targets = parse_targets(s)
    assert [(t.label, t.min_severity) for t in targets] == [("#1 json", "info"), ("#2 ntfy", "critical"),
                                                           ("#3 tgram", "warning")]
    assert targets[2].url == "tgram://123456:SECRETtok/42"
    assert len({t.id for t in targets}) == 3 and all("SECRET" not in t.id + t.label for t in targets)
    secrets = secrets_of(s, targets)
    assert "123456:SECRETtok" in secrets and "topicXYZ" in secrets


def test_a_bad_target_is_named_without_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_NOTIFY_URLS", "json://ok/x not-a-url-SECRET")
    with pytest.raises(SettingsError) as ei:
        parse_targets(NotifySettings())
    assert str(ei.value) == "BOT_NOTIFY_URLS: entry 2 is not a URL (scheme://...)"


def test_telegram_needs_its_chats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TELEGRAM_TOKEN", "1:abc")
    with pytest.raises(SettingsError, match="BOT_TELEGRAM_CHAT_IDS: needed"):
        telegram_chats(NotifySettings())
    monkeypatch.setenv("BOT_TELEGRAM_CHAT_IDS", "12, -100345")
    assert telegram_chats(NotifySettings()) == {12, -100345}
    monkeypatch.setenv("BOT_TELEGRAM_CHAT_IDS", "12,me")
    with pytest.raises(SettingsError, match="'me' is not a chat id"):
        telegram_chats(NotifySettings())


def test_masking_covers_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter(["tgram://123456:SECRETtok/42", "123456:SECRETtok"]))
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api.telegram.org/bot%s/sendMessage failed", "123456:SECRETtok")
        try:
            raise ConnectionError("cannot reach tgram://123456:SECRETtok/42")
        except ConnectionError:
            logger.exception("send failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "SECRETtok" not in out
    assert "bot***/sendMessage" in out and "cannot reach ***" in out and "Traceback" in out


def test_a_critical_event_is_not_held_by_the_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target over its rate limit holds trade news for the digest, but a risk breach goes at once, on
    its own; the news follows when the minute allows."""
    import asyncio

    monkeypatch.setenv("BOT_NOTIFY_URLS", "json://127.0.0.1:9/hook")
    s = NotifySettings(notify_rate_per_min=2)
    (spec,) = parse_targets(s)
    clock = [1000.0]
    t = Target(spec, s, clock=lambda: clock[0])
    sent: list[str] = []
    monkeypatch.setattr(t, "_send", lambda title, body, severity: sent.append(title) or True)
    for i in range(2):
        t.rate.record(clock[0])  # the minute's budget is spent
    for i in range(5):
        t.put(Delivery("1-0", ev.trade_opened("b1", "BTCUSDT", "BUY", 0.1, 100.0 + i)))
    t.put(Delivery("2-0", ev.risk_breach("b1", "daily_loss", "HALTED", "loss 5.1% >= 5%")))
    done: list[tuple[str, bool]] = []

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(t.run(stop, lambda d, ok: done.append((d.event.kind, ok))))
        for _ in range(40):
            await asyncio.sleep(0.01)
        assert sent == ["[CRITICAL] b1: risk limit daily_loss breached -> HALTED"]  # the news still waits
        clock[0] += 61.0
        for _ in range(150):
            await asyncio.sleep(0.01)
            if len(sent) == 2:
                break
        stop.set()
        await task

    asyncio.run(go())
    assert sent[1].startswith("[INFO] 5 events")
    assert [k for k, ok in done if ok] == ["risk_breach"] + ["trade_opened"] * 5
