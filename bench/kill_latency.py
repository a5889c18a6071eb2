#!/usr/bin/env python3
"""Benchmark: emergency stop -> every bot flat, in Redis and on the page, with the shipped config.

Runs `make run`'s launcher (``python -m ops.launcher``: embedded redis-server, the local exchange, the
worker and the dashboard) on the shipped config.yaml, only its ports and data directory moved (as the
e2e test of the shipped config does), and opens the dashboard in Debian's Chromium through Playwright.
Each round: every bot resumed (``resume_all``), a pause so positions can open, then the emergency stop
is clicked on the page (the button, then "Yes" in its confirmation), and from that click the clock runs until

* Redis: every bot's snapshot shows PAUSED or HALTED (never FLATTEN: a close not confirmed yet) with no
  open position (polled every 5 ms), and
* the page: every bot's state line in every tab that lists it (Paper, Ghost, Live, DCA; only the open tab
  is drawn, so each has its own browser page, the click is on the Paper one) shows PAUSED or HALTED
  (polled every 20 ms); the time each tab reached it is printed too, and when the dashboard posted the
  command (its stream entry's time), so the page's own cost is apart from the worker's.

Numbers, not asserts. Needs Chromium (apt-get install chromium, or BOT_CHROMIUM=/path).
Usage: .venv/bin/python bench/kill_latency.py [--rounds 5] [--settle 8]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ops.redis_acl import url_for  # noqa: E402
from ops.redis_server import free_port, stop  # noqa: E402
from state import keys  # noqa: E402
from state.commands import new_command, post_command  # noqa: E402
from state.connection import connect  # noqa: E402
from state.reader import StateReader  # noqa: E402

STOPPED = ("PAUSED", "HALTED")
# every bot's state line, per tab: [tab, bot, text] (ui.controls.state_lines: key "<tab>_state_<bot>")
STATE_LINES_JS = """() => [...document.querySelectorAll("[class*='_state_']")].map(e => {
    const m = e.className.match(/st-key-([a-z]+)_state_(\\S+)/);
    return m ? [m[1], m[2], e.innerText] : null;
}).filter(x => x)"""


def chromium() -> str:
    for cand in (os.environ.get("BOT_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if cand and Path(cand).exists():
            return cand
    sys.exit("no Chromium found (apt-get install chromium, or set BOT_CHROMIUM)")


def flat_in_redis(reader: StateReader, names: list[str]) -> bool:
    snaps = reader.snapshots(names)
    return len(snaps) == len(names) and all(
        s.effective_state.value in STOPPED and s.position is None and not s.positions for s in snaps.values())


def page_lines(page) -> list[list[str]]:  # noqa: ANN001
    return page.evaluate(STATE_LINES_JS)


def wait(cond, timeout: float, every: float, what: str):  # noqa: ANN001, ANN201
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


TABS = ("Paper", "Ghost", "Live", "DCA")


def all_lines(pages) -> list[list[str]]:  # noqa: ANN001
    return [line for p in pages for line in page_lines(p)]


def one_round(r, reader: StateReader, pages, names: list[str], settle: float,  # noqa: ANN001
              shown: set[str]) -> tuple[float, float, dict]:
    post_command(r, new_command("resume_all", "global", "", user="bench", reason="kill latency bench"))
    wait(lambda: any(s.effective_state.value == "ACTIVE" for s in reader.snapshots(names).values()), 30, 0.05,
         "bots active again")
    time.sleep(settle)  # positions open meanwhile (the market runs at one candle a second)
    open_before = sum(1 for s in reader.snapshots(names).values() if s.position is not None or s.positions)
    done_redis: list[float] = []

    def redis_poll(t0: float) -> None:
        while not flat_in_redis(reader, names):
            time.sleep(0.005)
        done_redis.append(time.monotonic() - t0)

    # As a person does it: the button, then the confirmation; the clock runs from the confirming click.
    page = pages[0]
    page.locator(".st-key-emergency_stop").get_by_role("button", name="Emergency stop").click()
    dialog = page.get_by_test_id("stDialog")
    dialog.locator(".st-key-confirm_send button").wait_for(timeout=30_000)
    t0, t0_wall = time.monotonic(), time.time()
    dialog.locator(".st-key-confirm_send button").click()
    th = threading.Thread(target=redis_poll, args=(t0,), daemon=True)
    th.start()
    tabs: dict[str, float] = {}
    while True:
        lines = all_lines(pages)
        seen = {bot for _, bot, _ in lines}
        now = time.monotonic() - t0
        for tab in {t for t, _, _ in lines}:
            if tab not in tabs and all(any(s in text for s in STOPPED) for t, _, text in lines if t == tab):
                tabs[tab] = now
        if seen >= shown and all(any(s in text for s in STOPPED) for _, _, text in lines):
            page_s = now
            break
        if now > 60:
            raise SystemExit(f"page not flat after 60 s: {lines}")
        time.sleep(0.02)
    th.join(60)
    # when the dashboard posted it: the command stream entry's id is its server time in ms
    posted = [int(eid.split("-")[0]) / 1000 - t0_wall for eid, f in r.xrevrange(keys.COMMANDS, count=20)
              if f.get("cmd") == "emergency_stop"]  # connect() decodes replies to str
    return done_redis[0], page_s, {"tabs": tabs, "open_before": open_before, "posted": posted[0] if posted else -1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=8.0, help="seconds of trading before each stop")
    ap.add_argument("--tabs", default="Paper", help="tabs to watch, each in its own page (the click is on the "
                    "first): 'Paper' as one person sees it, or 'all' (Paper, Ghost, Live, DCA: four sessions "
                    "refreshing at once load the dashboard four times)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="kill-latency-"))
    redis_port, exchange_port, dash_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BOT_VAR": str(tmp / "var"), "BOT_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
           "BOT_REDIS__DATA_DIR": str(tmp / "var" / "redis"), "BOT_EXCHANGE__LOCAL_PORT": str(exchange_port),
           "BOT_DASHBOARD__PORT": str(dash_port), "PYTHONUNBUFFERED": "1",
           "BOT_SECRETS_DIR": str(tmp / "secrets")}  # make run's Redis users' passwords, in the bench's folder
    env.pop("BOT_CONFIG", None)  # the shipped config.yaml
    proc = subprocess.Popen([sys.executable, "-m", "ops.launcher"], cwd=ROOT, env=env,
                            stdout=open(tmp / "launcher.out", "ab"), stderr=subprocess.STDOUT)
    try:
        wait(lambda: (tmp / "secrets" / "redis-users.json").exists(), 120, 0.5, "make run's Redis passwords")
        pw = json.loads((tmp / "secrets" / "redis-users.json").read_text())["worker"]
        r = connect(url_for(env["BOT_REDIS__URL"], "worker", pw))  # the bench reads and posts as the worker

        def up() -> bool:
            try:
                return r.get(keys.HEARTBEAT) is not None
            except Exception:  # noqa: BLE001 - Redis not up yet
                return False

        wait(up, 180, 0.5, "the launched worker's heartbeat")
        reader = StateReader(r)
        names = sorted(reader.bots())
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(),
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            pages = []
            tabs = TABS if args.tabs == "all" else tuple(t.strip() for t in args.tabs.split(","))
            for tab in tabs:
                page = browser.new_page(viewport={"width": 1500, "height": 2400})
                page.goto(f"http://127.0.0.1:{dash_port}")
                page.get_by_text("Worker up").wait_for(timeout=120_000)
                page.get_by_role("tab", name=tab).click()
                pages.append(page)
            wanted = {m.name for m in reader.bots().values()
                      if ("DCA" if m.kind == "dca" else m.mode.capitalize()) in tabs}
            wait(lambda: {b for _, b, _ in all_lines(pages)} >= wanted, 60, 0.2, "every bot's state line")
            print(f"kill latency, shipped config.yaml ({len(names)} bots: {', '.join(names)}), dashboard refresh "
                  f"as shipped; watching {', '.join(tabs)} ({len(wanted)} bots); Chromium {browser.version}")
            print(f"{'round':>5} {'open before':>11} {'posted s':>8} {'redis s':>8} {'page s':>7}  per tab (s)")
            reds, page_times = [], []
            for i in range(args.rounds):
                red, pg, info = one_round(r, reader, pages, names, args.settle, wanted)
                reds.append(red)
                page_times.append(pg)
                per_tab = "  ".join(f"{t} {s:.2f}" for t, s in sorted(info["tabs"].items(), key=lambda x: x[1]))
                print(f"{i + 1:>5} {info['open_before']:>11} {info['posted']:>8.3f} {red:>8.3f} {pg:>7.2f}  {per_tab}")
            print(f"median: redis {statistics.median(reds):.3f} s, page {statistics.median(page_times):.2f} s; "
                  f"max: redis {max(reds):.3f} s, page {max(page_times):.2f} s")
            browser.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
