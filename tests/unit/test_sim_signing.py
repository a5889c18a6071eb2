"""Signing and timing rules of the local exchange (simulator/auth.py) against Binance's official vectors."""
from __future__ import annotations

import pytest

from simulator import auth
from simulator.errors import ApiError

SPOT_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SPOT_PAYLOAD = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
SPOT_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"

FUT_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
FUT_PAYLOAD = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
FUT_SIG = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"

# spot docs "Example 3: Mixed query string and request body": no separator between the two parts
MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
MIXED_SIG = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"


def test_spot_vector() -> None:
    assert auth.sign(SPOT_SECRET, SPOT_PAYLOAD) == SPOT_SIG


def test_futures_vector() -> None:
    assert auth.sign(FUT_SECRET, FUT_PAYLOAD) == FUT_SIG


def test_signature_in_query_string() -> None:
    payload, sig = auth.signed_payload(f"{SPOT_PAYLOAD}&signature={SPOT_SIG}", "")
    assert payload == SPOT_PAYLOAD and sig == SPOT_SIG
    assert auth.verify_signature(SPOT_SECRET, payload, sig)


def test_signature_in_body() -> None:
    payload, sig = auth.signed_payload("", f"{SPOT_PAYLOAD}&signature={SPOT_SIG}")
    assert payload == SPOT_PAYLOAD
    assert auth.verify_signature(SPOT_SECRET, payload, sig)


def test_mixed_query_and_body_concatenate_without_separator() -> None:
    payload, sig = auth.signed_payload(MIXED_QUERY, f"{MIXED_BODY}&signature={MIXED_SIG}")
    assert payload == MIXED_QUERY + MIXED_BODY
    assert auth.verify_signature(SPOT_SECRET, payload, sig)


def test_signature_is_case_insensitive_and_rejects_tampering() -> None:
    assert auth.verify_signature(SPOT_SECRET, SPOT_PAYLOAD, SPOT_SIG.upper())
    assert not auth.verify_signature(SPOT_SECRET, SPOT_PAYLOAD.replace("quantity=1", "quantity=2"), SPOT_SIG)
    assert not auth.verify_signature("other", SPOT_PAYLOAD, SPOT_SIG)
    assert not auth.verify_signature(SPOT_SECRET, SPOT_PAYLOAD, None)


@pytest.mark.parametrize(
    ("ts", "server", "window", "ok"),
    [
        (1_000_000, 1_000_000, 5000, True),
        (1_000_000, 1_005_000, 5000, True),  # exactly recvWindow old: accepted
        (1_000_000, 1_005_001, 5000, False),  # 1 ms too old
        (1_000_999, 1_000_000, 5000, True),  # 999 ms ahead: accepted
        (1_001_000, 1_000_000, 5000, False),  # 1000 ms ahead: rejected
        (1_000_000, 1_059_000, 60000, True),
    ],
)
def test_timestamp_window(ts: int, server: int, window: int, ok: bool) -> None:
    if ok:
        auth.check_timestamp(ts, window, server)
    else:
        with pytest.raises(ApiError) as e:
            auth.check_timestamp(ts, window, server)
        assert e.value.code == -1021 and e.value.status == 400


def _signed(params: str, secret: str = auth.DEFAULT_API_SECRET) -> tuple[dict[str, str], str]:
    raw = f"{params}&signature={auth.sign(secret, params)}"
    return dict(p.split("=", 1) for p in raw.split("&")), raw


def test_authenticate_full_rule() -> None:
    keys = auth.KeyStore()
    now = 1_700_000_000_000
    params, raw = _signed(f"symbol=BTCUSDT&recvWindow=10000&timestamp={now - 100}")
    auth.authenticate(keys, auth.DEFAULT_API_KEY, params, raw, "", now)  # no exception

    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, None, params, raw, "", now)
    assert (e.value.code, e.value.status) == (-2014, 401)
    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, "unknown-key", params, raw, "", now)
    assert (e.value.code, e.value.status) == (-2015, 401)

    bad, raw_bad = _signed(f"symbol=BTCUSDT&timestamp={now}", secret="wrong")
    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, auth.DEFAULT_API_KEY, bad, raw_bad, "", now)
    assert e.value.code == -1022

    stale, raw_stale = _signed(f"symbol=BTCUSDT&timestamp={now - 6000}")  # default recvWindow 5000
    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, auth.DEFAULT_API_KEY, stale, raw_stale, "", now)
    assert e.value.code == -1021

    no_ts = {"symbol": "BTCUSDT", "signature": "00"}
    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, auth.DEFAULT_API_KEY, no_ts, "symbol=BTCUSDT&signature=00", "", now)
    assert e.value.code == -1102

    big, raw_big = _signed(f"recvWindow=70000&timestamp={now}")
    with pytest.raises(ApiError) as e:
        auth.authenticate(keys, auth.DEFAULT_API_KEY, big, raw_big, "", now)
    assert e.value.code == -1131


@pytest.mark.parametrize(("params", "code"), [
    ({"timestamp": "abc"}, -1100),
    ({"timestamp": "1.5"}, -1100),
    ({"timestamp": ""}, -1102),
    ({}, -1102),
    ({"timestamp": "{now}", "recvWindow": "wide"}, -1100),
    ({"timestamp": "{now}", "recvWindow": "inf"}, -1100),  # was an OverflowError (an answer -1000)
    ({"timestamp": "{now}", "recvWindow": "nan"}, -1100),
    ({"timestamp": "{now}", "recvWindow": "60001"}, -1131),
    ({"timestamp": "{now}", "recvWindow": "0"}, -1131),
    ({"timestamp": "{now}", "recvWindow": "-5"}, -1131),
    ({"timestamp": "{old}", "recvWindow": "10000"}, -1021),
    ({"timestamp": "{old}"}, -1021),
    ({"timestamp": "{now}", "recvWindow": "60000"}, None),
    ({"timestamp": "{old}", "recvWindow": "20000.5"}, None),  # fractional recvWindow is allowed
    ({"timestamp": "{now}", "recvWindow": ""}, None),  # empty: the default 5000
])
def test_request_time_rule_shared_by_rest_and_ws_api(params: dict[str, str], code: int | None) -> None:
    """``check_request_time`` is what ``authenticate`` (REST) and the WS-API subscribe both run."""
    now = 1_700_000_000_000
    params = {k: v.format(now=now, old=now - 15_000) for k, v in params.items()}
    if code is None:
        auth.check_request_time(params, now)
        return
    with pytest.raises(ApiError) as e:
        auth.check_request_time(params, now)
    assert (e.value.code, e.value.status) == (code, 400)
    if "timestamp" in params:  # authenticate gives the same answer (a signature is present)
        with pytest.raises(ApiError) as e2:
            auth.authenticate(auth.KeyStore(), auth.DEFAULT_API_KEY, {**params, "signature": "00"}, "", "", now)
        assert e2.value.code == code


def test_the_adapter_knows_the_local_exchanges_default_keys() -> None:
    # Two applications, one pair of public constants: the worker uses them when no keys are set.
    from exchange.venues import LOCAL_API_KEY, LOCAL_API_SECRET
    from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET

    assert (LOCAL_API_KEY, LOCAL_API_SECRET) == (DEFAULT_API_KEY, DEFAULT_API_SECRET)
