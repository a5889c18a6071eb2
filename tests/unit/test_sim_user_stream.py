"""The local exchange's spot WS-API (simulator/user_stream.py): a malformed or out-of-range
``timestamp``/``recvWindow`` (or any other bad request) gets Binance's error answer, as the REST
path gives it, and the connection stays usable; it used to die on the ValueError."""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from decimal import Decimal as D
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient, TestServer

from simulator import auth
from simulator.server import create_app
from simulator.state import SimConfig, SimExchange

SUBSCRIBE = "userDataStream.subscribe.signature"


def signed(**params: Any) -> dict[str, Any]:
    params = {"apiKey": auth.DEFAULT_API_KEY, **params}
    payload = urlencode(sorted(params.items()))
    return {**params, "signature": auth.sign(auth.DEFAULT_API_SECRET, payload)}


def now_ms() -> int:
    return int(time.time() * 1000)


def run(scenario: Any) -> None:
    # On a thread of its own: an AppTest earlier in this process may leave an event loop running
    # on the main thread, and asyncio.run refuses to start inside one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_bad_timestamp_or_recv_window_answers_an_error_and_the_socket_stays_open() -> None:
    ex = SimExchange(SimConfig(seed=3, speed=0, balances={"USDT": D("1000")}))
    answers: dict[str, dict[str, Any]] = {}

    async def scenario() -> None:
        async with TestClient(TestServer(create_app(ex, run_market=False))) as client:
            ws = await client.ws_connect("/ws-api/v3")

            async def ask(rid: str, method: str, params: Any = None) -> dict[str, Any]:
                await ws.send_json({"id": rid, "method": method, **({} if params is None else {"params": params})})
                answer = await asyncio.wait_for(ws.receive_json(), 5)
                assert answer["id"] == rid, answer
                answers[rid] = answer
                return answer

            cases = {
                "ts-text": signed(timestamp="soon"),  # int("soon") raised ValueError: the socket died
                "ts-float-text": signed(timestamp="1.5"),
                "ts-bool": signed(timestamp=True),
                "ts-list": {"apiKey": auth.DEFAULT_API_KEY, "timestamp": [1], "signature": "00"},
                "ts-null": {"apiKey": auth.DEFAULT_API_KEY, "timestamp": None, "signature": "00"},
                "ts-missing": signed(),
                "rw-text": signed(timestamp=now_ms(), recvWindow="wide"),
                "rw-inf": signed(timestamp=now_ms(), recvWindow="inf"),
                "rw-big": signed(timestamp=now_ms(), recvWindow=70000),  # not checked before
                "rw-zero": signed(timestamp=now_ms(), recvWindow=0),
                "stale": signed(timestamp=now_ms() - 60_000),
                "key": {"apiKey": 5, "timestamp": now_ms(), "signature": "00"},
                "sig": {**signed(timestamp=now_ms()), "signature": "00"},
            }
            for rid, params in cases.items():
                await ask(rid, SUBSCRIBE, params)
            await ask("unsub-text", "userDataStream.unsubscribe", {"subscriptionId": "x"})
            await ask("params-list", SUBSCRIBE, [1, 2])
            # the same socket still answers, and a good subscription still works
            assert (await ask("ping", "ping"))["status"] == 200
            ok = await ask("ok", SUBSCRIBE, signed(timestamp=now_ms(), recvWindow="10000.5"))
            assert ok["status"] == 200 and ok["result"] == {"subscriptionId": 0}
            assert not ws.closed
            await ws.close()

    run(scenario)
    code = {rid: (a["status"], a["error"]["code"]) for rid, a in answers.items() if "error" in a}
    assert code == {
        "ts-text": (400, -1100), "ts-float-text": (400, -1100), "ts-bool": (400, -1100), "ts-list": (400, -1100),
        "ts-null": (400, -1102), "ts-missing": (400, -1102),
        "rw-text": (400, -1100), "rw-inf": (400, -1100), "rw-big": (400, -1131), "rw-zero": (400, -1131),
        "stale": (400, -1021), "key": (401, -2014), "sig": (400, -1022),
        "unsub-text": (400, -1100), "params-list": (400, -1102),
    }
    assert "timestamp" in answers["ts-text"]["error"]["msg"] and "recvWindow" in answers["rw-text"]["error"]["msg"]
