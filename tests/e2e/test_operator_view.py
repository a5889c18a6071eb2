"""The operator's view with the shipped config.yaml (`make run` on free ports, its own var dir), in a real
browser: a zoomed chart keeps its zoom while candles arrive; the backtest just started is the one shown;
an invalid DCA field disables Save and Save sends exactly what the form shows; the export buttons
download files whose rows are Redis' records; no tab shows an exception at desktop or phone width, and
on a phone the Emergency stop stays on screen."""
from __future__ import annotations

import csv
import io
import json
import re

import pyarrow.parquet as pq
from playwright.sync_api import Frame, Page, expect

from conftest import expand, wait_for_app_run, worker_line
from state import backtest_store, keys
from support import snapshots, wait_for
from test_shipped_config import TABS, launched, no_exception  # noqa: F401 - the module's stack


def open_tab(page: Page, url: str, tab: str, width: int = 1440, height: int = 1800) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    wait_for_app_run(page)
    worker_line(page, "Worker up").wait_for(timeout=60_000)
    page.get_by_role("tab", name=tab).click()
    wait_for_app_run(page)


def chart_frame(page: Page, box: str) -> Frame:
    handle = page.locator(f".st-key-{box} iframe").first.element_handle(timeout=30_000)
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_selector(".js-plotly-plot .nsewdrag", timeout=30_000)
    return frame


def view(frame: Frame) -> dict:
    return frame.evaluate("""() => { const d = document.getElementById('chart');
        const x = d.data[0].x; return {range: d._fullLayout.xaxis.range.map(String),
        auto: d._fullLayout.xaxis.autorange, last: String(x[x.length - 1]), updates: +d.dataset.updates}; }""")


def test_a_zoomed_chart_keeps_its_zoom_while_new_candles_arrive(page: Page, launched) -> None:
    url, r, _ = launched
    open_tab(page, url, "Paper")
    frame = chart_frame(page, "paper_price_box")
    page.wait_for_timeout(2_500)
    before = view(frame)
    assert before["auto"] is True
    page.locator(".st-key-paper_price_box iframe").first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    drag = frame.locator(".nsewdrag").first.bounding_box()  # in the page's coordinates
    assert drag is not None
    y = drag["y"] + drag["height"] / 2
    page.mouse.move(drag["x"] + drag["width"] * 0.35, y)
    page.mouse.down()
    page.mouse.move(drag["x"] + drag["width"] * 0.6, y, steps=8)
    page.mouse.up()
    page.wait_for_timeout(500)
    zoomed = view(frame)
    assert zoomed["auto"] is False and zoomed["range"] != before["range"], (before, zoomed)
    page.wait_for_timeout(10_000)  # the chart is refreshed every 2 s; candles arrive every second
    after = view(frame)
    assert after["updates"] >= zoomed["updates"] + 3, "the chart was not refreshed in the 10 s"
    assert after["last"] > zoomed["last"], "no new candle reached the chart"
    assert after["range"] == zoomed["range"] and after["auto"] is False, (zoomed, after)
    no_exception(page)


def _run_backtest(page: Page, bot: str) -> None:
    form = page.get_by_test_id("stForm")
    form.get_by_role("combobox", name="Bot").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(bot)}")).click()
    form.get_by_role("button", name="Run backtest").click()


def _shown(page: Page):  # noqa: ANN202
    return page.get_by_role("combobox", name="Result")


def test_the_backtest_just_started_is_the_one_shown(page: Page, launched) -> None:
    url, r, _ = launched
    open_tab(page, url, "Backtest")
    _run_backtest(page, "paper-sma-btc")
    expect(_shown(page)).to_have_value(re.compile(r"^paper-sma-btc · done"), timeout=240_000)
    first = backtest_store.list_results(r)[0]
    doc = backtest_store.load(r, first["id"])
    if doc["report"].get("halt"):  # a rule stopped it: the summary says so first
        expect(page.get_by_text(doc["report"]["halt"][:40]).first).to_be_visible()
    _run_backtest(page, "paper-rsi-eth")
    # from the click on, the first run's result is not what the tab shows: it waits for the new one
    expect(page.get_by_text(re.compile(r"bars of BTCUSDT"))).to_have_count(0, timeout=10_000)
    expect(_shown(page)).to_have_value(re.compile(r"^paper-rsi-eth · done"), timeout=240_000)
    expect(page.get_by_text(re.compile(r"bars of ETHUSDT")).first).to_be_visible()
    assert backtest_store.list_results(r)[0]["bot"] == "paper-rsi-eth"
    no_exception(page)


def _field(page: Page, key: str):  # noqa: ANN202
    return page.locator(".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key) + " input")


def _error_under(page: Page, key: str):  # noqa: ANN202
    """The error shown in the same column as the field (under it)."""
    return page.get_by_test_id("stColumn").filter(has=_field(page, key)).get_by_test_id("stAlertContentError")


def _type(page: Page, key: str, text: str) -> None:
    box = _field(page, key)
    box.fill(text)
    box.press("Enter")
    wait_for_app_run(page)


def test_an_invalid_dca_field_disables_save_and_save_sends_what_the_form_shows(page: Page, launched) -> None:
    url, r, _ = launched
    open_tab(page, url, "DCA", height=2400)
    editor = page.get_by_test_id("stExpander").filter(has_text="Create or edit a DCA bot")
    expand(editor, _field(page, "dca_name"))
    save = editor.locator(".st-key-dca_save").get_by_role("button", name="Save DCA bot")
    _type(page, "dca_name", "dca e2e")  # a space: not a valid name
    expect(editor.get_by_text("name: letters, digits").first).to_be_visible()
    expect(save).to_be_disabled()
    _type(page, "dca_name", "dca-e2e-exact")
    expect(save).to_be_enabled()
    _type(page, "dca_bo_(new bot)", "12.5x")  # what is on screen is not a number: it is not saved as one
    expect(_error_under(page, "dca_bo_(new bot)")).to_contain_text("base_order: not a number")
    expect(save).to_be_disabled()
    _type(page, "dca_bo_(new bot)", "12.5")
    _type(page, "dca_n_(new bot)", "1")  # fewer safety orders than resting ones: the error is under its field
    expect(_error_under(page, "dca_a_(new bot)")).to_contain_text("active_safety_orders")
    expect(save).to_be_disabled()
    _type(page, "dca_n_(new bot)", "3")
    _type(page, "dca_bo_(new bot)", "1e+09")  # a number, but far more than the account holds
    expect(editor.get_by_text(re.compile(r"The ladder needs up to [\d,.]+ USDT .* balance")).first).to_be_visible()
    expect(save).to_be_disabled()  # until the operator says they know
    for key_, text in (("dca_bo_(new bot)", "12.5"), ("dca_so_(new bot)", "25.25"), ("dca_dev_(new bot)", "0.7"),
                       ("dca_ss_(new bot)", "1.1"), ("dca_vs_(new bot)", "1.3"), ("dca_n_(new bot)", "3"),
                       ("dca_a_(new bot)", "2"), ("dca_tp_(new bot)", "1.25"), ("dca_sl_(new bot)", "4.5"),
                       ("dca_cd_(new bot)", "90")):
        _type(page, key_, text)
    expect(save).to_be_enabled()
    before = r.xlen(keys.COMMANDS)
    save.click()
    dialog = page.get_by_test_id("stDialog")
    expect(dialog).to_contain_text("dca-e2e-exact will be created")
    assert r.xlen(keys.COMMANDS) == before  # nothing sent before the confirmation
    dialog.locator(".st-key-confirm_send button").click()
    wait_for(lambda: r.hexists(keys.DYNAMIC_BOTS, "dca-e2e-exact"), 10, "the saved bot")
    stored = json.loads(r.hget(keys.DYNAMIC_BOTS, "dca-e2e-exact"))["dca"]
    assert {k: stored.get(k) for k in ("base_order", "safety_order", "deviation_pct", "step_scale", "volume_scale",
                                       "max_safety_orders", "active_safety_orders", "take_profit_pct",
                                       "stop_loss_pct", "cooldown_s")} == {
        "base_order": 12.5, "safety_order": 25.25, "deviation_pct": 0.7, "step_scale": 1.1, "volume_scale": 1.3,
        "max_safety_orders": 3, "active_safety_orders": 2, "take_profit_pct": 1.25, "stop_loss_pct": 4.5,
        "cooldown_s": 90.0}
    no_exception(page)


def _download(page: Page, tab: str, kind: str, fmt: str = "csv") -> bytes:
    panel = page.locator(f".st-key-{tab}_exports")
    expand(page.get_by_test_id("stExpander").filter(has=panel), panel.get_by_role("button", name=kind, exact=True))
    if fmt != "csv":
        panel.get_by_text(fmt, exact=True).click()
        wait_for_app_run(page)
    # KNOWN: a download the page's 1 s refresh reruns under is canceled by the browser (Streamlit
    # replaces the file): a person clicks again, and so does the test, at most three times
    for attempt in range(3):
        with page.expect_download(timeout=60_000) as dl:
            panel.get_by_role("button", name=kind, exact=True).click()
        try:
            return open(dl.value.path(), "rb").read()
        except Exception as exc:  # noqa: BLE001 - playwright's Error: "Download.path: canceled"
            if "canceled" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _redis_entries(r, key: str) -> dict[str, dict]:  # noqa: ANN001
    return {(i.decode() if isinstance(i, bytes) else i): json.loads(f.get("data") or f[b"data"])
            for i, f in r.xrange(key)}


def _check_rows_are_redis_entries(rows: list[dict], r, kind: str, bots: list[str]) -> int:  # noqa: ANN001
    by_bot: dict[str, list[dict]] = {}
    for row in rows:
        by_bot.setdefault(row["bot"], []).append(row)
    assert set(by_bot) <= set(bots), f"rows of other bots: {set(by_bot) - set(bots)}"
    checked = 0
    for bot in bots:
        entries = _redis_entries(r, getattr(keys, kind)(bot))
        mine = {row["stream_id"]: row for row in by_bot.get(bot, [])}
        assert len(mine) == len(by_bot.get(bot, [])), f"{kind} of {bot}: a row twice"
        assert set(mine) <= set(entries), f"{kind} of {bot}: rows Redis never held"
        newest = max(mine, key=lambda i: tuple(map(int, i.split("-"))), default=None)
        if newest is None:
            continue
        upto = {i for i in entries if tuple(map(int, i.split("-"))) <= tuple(map(int, newest.split("-")))}
        assert upto == set(mine), f"{kind} of {bot}: {len(upto - set(mine))} Redis entries missing from the file"
        for i, row in mine.items():
            for field, value in entries[i].items():
                if field in row and not isinstance(value, (dict, list)):
                    got = row[field]
                    if isinstance(value, float):
                        assert abs(float(got) - value) <= 1e-9 * max(1.0, abs(value)), (kind, bot, i, field)
                    elif isinstance(value, bool):
                        assert str(got).lower() == str(value).lower(), (kind, bot, i, field)
                    elif value is None:
                        assert got in ("", None) or got != got, (kind, bot, i, field)
                    else:
                        assert str(got) == str(value), (kind, bot, i, field, got, value)
            checked += 1
    return checked


def test_export_buttons_download_files_whose_rows_are_redis_records(page: Page, launched) -> None:
    url, r, _ = launched
    signal_paper = ["paper-rsi-eth", "paper-sma-btc"]  # the Paper tab's bots (the DCA one is on the DCA tab)
    wait_for(lambda: sum(snapshots(r)[n].trade_count for n in signal_paper) >= 1, 240,
             "a closed trade of a Paper tab bot", every=2)
    open_tab(page, url, "Paper", height=2400)
    counts = {}
    for kind in ("trades", "fills", "equity", "orders"):
        rows = list(csv.DictReader(io.StringIO(_download(page, "paper", kind).decode("utf-8"))))
        counts[kind] = _check_rows_are_redis_entries(rows, r, kind, signal_paper)
    table = pq.read_table(io.BytesIO(_download(page, "paper", "fills", "parquet")))
    rows = table.to_pylist()
    assert rows and _check_rows_are_redis_entries(rows, r, "fills", signal_paper) == len(rows)
    # every kind has rows (a closed trade means two orders and two fills; the equity history keeps a
    # point a dashboard refresh, engine/snapshot_policy.py)
    assert all(counts.values()) and counts["fills"] >= 2 and counts["orders"] >= 2, counts
    no_exception(page)


def test_no_tab_shows_an_exception_and_a_phone_keeps_the_emergency_stop_on_screen(page: Page, launched) -> None:
    url, _, _ = launched
    for width, height in ((1440, 900), (390, 844)):
        open_tab(page, url, "Paper", width, height)
        for _ in range(2):
            for tab in TABS:
                page.get_by_role("tab", name=tab).click()
                wait_for_app_run(page)
                page.wait_for_timeout(2_500)  # a refresh of the tab's panels
                no_exception(page)
        if width < 700:
            page.get_by_role("tab", name="Paper").click()
            wait_for_app_run(page)
            page.mouse.move(200, 400)
            for _ in range(30):  # to the bottom of a long page
                page.mouse.wheel(0, 1500)
            page.wait_for_timeout(500)
            stop = page.get_by_role("button", name="Emergency stop")
            box = stop.bounding_box()
            assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height and box["x"] >= 0 \
                and box["x"] + box["width"] <= width, f"Emergency stop off screen at the bottom of the page: {box}"
            on_top = page.evaluate("([x, y]) => !!document.elementFromPoint(x, y)?.closest('.st-key-emergency_stop')",
                                   [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
            assert on_top, "something covers the Emergency stop"
            stop.click()  # reachable: it opens its confirmation (cancelled here)
            dialog = page.get_by_test_id("stDialog")
            expect(dialog).to_contain_text("Every bot in every mode")
            dialog.locator(".st-key-confirm_cancel button").click()
            expect(dialog).to_have_count(0)
