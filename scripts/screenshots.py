#!/usr/bin/env python3
"""Screenshots of every dashboard tab at 1440×900 and 390×844 (a phone), into docs/screenshots/.

Starts the stack as `make run` does — the launcher with the shipped config.yaml — on free ports with its
own var directory (so it never collides with a running `make run`), lets it trade for a while, runs a
backtest so the Backtest tab has a result, then opens each tab in Debian's Chromium (Playwright) and
writes ``<tab>-<width>x<height>.png``. Stops everything it started.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--trade-s 90]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ops.redis_server import free_port, stop  # noqa: E402
from cli._common import redis_client  # noqa: E402

TABS = ["Paper", "Ghost", "Live", "DCA", "Backtest", "Reports", "Audit"]
SIZES = [(1440, 900), (390, 844)]


def chromium() -> str:
    for cand in (os.environ.get("BOT_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if cand and Path(cand).exists():
            return cand
    raise SystemExit("no Chromium found: apt-get install chromium, or set BOT_CHROMIUM")


def wait_for(cond, timeout: float, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def wait_for_app(page) -> None:  # noqa: ANN001
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                         timeout=30_000)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--trade-s", type=float, default=90.0, help="let the bots trade this long first")
    p.add_argument("--full-page", action="store_true",
                   help="for review: the whole page (a 6000 px tall window), not just the first screen")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    from state import backtest_store, keys
    from state.commands import new_command, post_command

    tmp = Path(tempfile.mkdtemp(prefix="screenshots-"))
    redis_port, exchange_port, dash_port = free_port(), free_port(), free_port()
    env = {**os.environ, "BOT_VAR": str(tmp / "var"), "BOT_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
           "BOT_REDIS__DATA_DIR": str(tmp / "var" / "redis"), "BOT_EXCHANGE__LOCAL_PORT": str(exchange_port),
           "BOT_DASHBOARD__PORT": str(dash_port), "PYTHONUNBUFFERED": "1"}
    env.pop("BOT_CONFIG", None)  # the shipped config.yaml
    launcher = subprocess.Popen([sys.executable, "-m", "ops.launcher"], cwd=ROOT, env=env,
                                stdout=open(tmp / "launcher.out", "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{dash_port}"
    try:
        # make run's Redis wants a password (ops.redis_acl): redis_client signs in as the dashboard user,
        # which it can only tell once Redis answers, so the client is made again until then
        clients = []

        def redis_up() -> bool:
            clients.append(redis_client(env["BOT_REDIS__URL"]))
            return bool(clients[-1].ping())

        wait_for(redis_up, 120, "Redis")
        r = clients[-1]
        wait_for(lambda: r.exists(keys.HEARTBEAT), 120, "the worker")
        print(f"stack up (var: {tmp / 'var'}); trading for {args.trade_s:.0f} s")
        time.sleep(args.trade_s)
        command = new_command("backtest", "bot", "paper-sma-btc", user="screenshots",
                              payload='{"bot": "paper-sma-btc"}', reason="screenshots")
        post_command(r, command)
        wait_for(lambda: (m := backtest_store.meta(r, command.nonce)) and m["status"] != "running", 300, "the backtest")
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
            for w, h in SIZES:
                page = browser.new_page(viewport={"width": w, "height": 6000 if args.full_page else h})
                page.goto(url)
                wait_for_app(page)
                page.locator(".st-key-health").get_by_text("Worker up").wait_for(timeout=60_000)
                for tab in TABS:
                    page.get_by_role("tab", name=tab).click()
                    wait_for_app(page)
                    page.wait_for_timeout(3_000)  # a refresh of the tab's panels, charts drawn
                    errors = page.locator("[data-testid='stException']")
                    if errors.count():
                        print(f"!! {tab} at {w}x{h} shows an exception:\n{errors.first.inner_text()[:2000]}")
                    out = args.out / f"{tab.lower()}-{w}x{h}.png"
                    page.screenshot(path=str(out))
                    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
                page.close()
            browser.close()
    except BaseException:
        log = tmp / "var" / "log" / "dashboard.log"
        if log.exists():
            print("dashboard log (last lines):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(60)
        except subprocess.TimeoutExpired:
            stop(launcher)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
