"""Chat control on Telegram: the notifier process's python-telegram-bot polls a local stand-in of
the Bot API (Telegram is unreachable here); commands go through the real command stream and the
real worker, audited as telegram:<chat id>; strangers get nothing."""
from __future__ import annotations

import pytest

from reach_support import start_notifier
from standins import TelegramStandIn
from state import keys
from state.models import AuditRecord
from support import RedisServer, fast_config, snapshots, start_worker, wait_for, write_config

TOKEN = "123456789:AAFakeTokenForTheStandIn0123456789"
CHAT, STRANGER = 424242, 999


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("telegram")
    server = RedisServer(tmp / "redis")
    tg = TelegramStandIn(TOKEN)
    worker = notifier = None
    try:
        cfg = write_config(tmp / "config.yaml", fast_config(server.url))
        r = server.client()
        worker = start_worker(cfg, tmp / "worker.log", r)
        wait_for(lambda: len(snapshots(r)) == 3, 30, "the bots")
        notifier = start_notifier(cfg, tmp / "notify.log", {
            "BOT_TELEGRAM_TOKEN": TOKEN, "BOT_TELEGRAM_CHAT_IDS": str(CHAT), "BOT_TELEGRAM_BASE_URL": tg.base_url})
        wait_for(lambda: "getUpdates" in tg.requests, 20, "the bot polling the stand-in")
        yield tg, r, notifier
    finally:
        if notifier is not None:
            notifier.stop()
        if worker is not None:
            worker.stop()
        tg.close()
        server.close()


def ask(tg: TelegramStandIn, text: str, chat_id: int = CHAT) -> str:
    n = len(tg.replies(chat_id))
    tg.say(chat_id, text)
    return wait_for(lambda: len(tg.replies(chat_id)) > n and tg.replies(chat_id)[n], 20, f"the answer to {text}")


def last_audit(r) -> AuditRecord:  # noqa: ANN001
    _, f = r.xrevrange(keys.AUDIT, count=1)[0]
    return AuditRecord.model_validate_json(f[b"data"])


def test_status_balance_trades(chat) -> None:  # noqa: ANN001
    tg, r, _ = chat
    status = ask(tg, "/status")
    assert status.startswith("Worker: up, 3 bots") and "Global state: ACTIVE" in status
    assert "paper-mom-btc [paper] ACTIVE: equity" in status
    balance = ask(tg, "/balance")
    assert "paper-sma-eth [paper]:" in balance and balance.splitlines()[-1].startswith("Total equity: ghost")
    wait_for(lambda: any(s.trade_count for s in snapshots(r).values()), 60, "a trade")
    assert " P&L " in ask(tg, "/trades")


def test_commands_are_posted_as_the_chat_and_answered_with_the_result(chat) -> None:  # noqa: ANN001
    tg, r, _ = chat
    answer = ask(tg, "/pause paper-mom-btc")
    assert answer == "pause paper-mom-btc: applied — bot paper-mom-btc paused: no new entries, exits still run"
    a = last_audit(r)
    assert (a.who, a.command, a.target, a.result) == (f"telegram:{CHAT}", "pause", "paper-mom-btc", "applied")
    assert ask(tg, "/pause nobot").startswith("No bot named 'nobot'")
    assert ask(tg, "/resume paper-mom-btc").startswith("resume paper-mom-btc: applied")
    assert ask(tg, "/stop").startswith("emergency_stop global: applied — EMERGENCY STOP")
    assert r.hget(keys.control("global"), "state") == b"PAUSED"
    assert "Send /resumeall confirm" in ask(tg, "/resumeall")  # nothing sent yet
    assert r.hget(keys.control("global"), "state") == b"PAUSED"
    assert ask(tg, "/resumeall confirm").startswith("resume_all global: applied")
    assert r.hget(keys.control("global"), "state") == b"ACTIVE"
    assert last_audit(r).who == f"telegram:{CHAT}"


def test_a_chat_not_configured_gets_nothing_and_changes_nothing(chat) -> None:  # noqa: ANN001
    tg, r, notifier = chat
    before = r.xlen(keys.COMMANDS)
    tg.say(STRANGER, "/stop")
    wait_for(lambda: "ignored a message from chat 999" in notifier.log(), 10, "the notifier logging the stranger")
    assert ask(tg, "/status").startswith("Worker: up")  # a later message is answered: the stranger's was seen
    assert tg.replies(STRANGER) == [] and r.xlen(keys.COMMANDS) == before
    assert r.hget(keys.control("global"), "state") == b"ACTIVE"
    assert TOKEN not in notifier.log() and TOKEN.split(":")[1] not in notifier.log()
