"""Venue switch: local | testnet | demo | mainnet -> the base URLs python-binance should use.

python-binance has no constructor argument for the host (reference/binance-api.md §0.1), so the
only way in is to subclass its classes and override the URL class constants. Every venue goes
through the same subclasses; only the strings differ, so the local exchange exercises exactly
the code path that talks to Binance.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from typing import Any

from binance import AsyncClient, BinanceSocketManager
from binance.client import Client
from binance.ws.reconnecting_websocket import WSListenerState


class Venue(str, Enum):
    LOCAL = "local"
    TESTNET = "testnet"
    DEMO = "demo"
    MAINNET = "mainnet"


@dataclass(frozen=True, slots=True)
class VenueUrls:
    """Every base URL python-binance reads, for one venue (no trailing path beyond Binance's own)."""

    venue: Venue
    spot_rest: str  # API_URL, e.g. https://api.binance.com/api (client appends /v3/<path>)
    futures_rest: str  # FUTURES_URL, e.g. https://fapi.binance.com/fapi
    spot_ws: str  # BinanceSocketManager.STREAM_URL (ends with "/")
    futures_ws: str  # BinanceSocketManager.FSTREAM_URL (ends with "/")
    ws_api: str  # WS_API_URL: spot user-data stream (WS-API subscription)
    ws_futures_api: str  # WS_FUTURES_URL
    margin_rest: str  # MARGIN_API_URL (/sapi); overridden so nothing leaks to mainnet
    futures_data: str  # FUTURES_DATA_URL

    @property
    def real_money(self) -> bool:
        return self.venue is Venue.MAINNET


DEFAULT_LOCAL = "http://127.0.0.1:8765"
# The local exchange's public default credentials (simulator/auth.py; a contract test keeps them
# equal). Not secrets: they open only the offline exchange, and are used only when no keys are set.
LOCAL_API_KEY, LOCAL_API_SECRET = "local-key", "local-secret"


def venue_urls(venue: Venue | str, local_base: str = DEFAULT_LOCAL) -> VenueUrls:
    """The URLs of a venue; `local_base` is the local exchange's http://host:port."""
    v = Venue(venue)
    if v is Venue.LOCAL:
        base = local_base.rstrip("/")
        ws = base.replace("https://", "wss://").replace("http://", "ws://")
        return VenueUrls(v, f"{base}/api", f"{base}/fapi", f"{ws}/", f"{ws}/", f"{ws}/ws-api/v3",
                         f"{ws}/ws-fapi/v1", f"{base}/sapi", f"{base}/futures/data")
    if v is Venue.TESTNET:
        # Spot testnet has no /sapi; pointing MARGIN at the testnet keeps mainnet out of reach.
        return VenueUrls(v, "https://testnet.binance.vision/api", "https://testnet.binancefuture.com/fapi",
                         "wss://stream.testnet.binance.vision/", "wss://fstream.binancefuture.com/",
                         "wss://ws-api.testnet.binance.vision/ws-api/v3",
                         "wss://testnet.binancefuture.com/ws-fapi/v1", "https://testnet.binance.vision/sapi",
                         "https://testnet.binancefuture.com/futures/data")
    if v is Venue.DEMO:
        return VenueUrls(v, "https://demo-api.binance.com/api", "https://demo-fapi.binance.com/fapi",
                         "wss://demo-stream.binance.com/", "wss://fstream.binancefuture.com/",
                         "wss://demo-ws-api.binance.com/ws-api/v3", "wss://testnet.binancefuture.com/ws-fapi/v1",
                         "https://demo-api.binance.com/sapi", "https://demo-fapi.binance.com/futures/data")
    return VenueUrls(v, "https://api.binance.com/api", "https://fapi.binance.com/fapi",
                     "wss://stream.binance.com:9443/", "wss://fstream.binance.com/",
                     "wss://ws-api.binance.com/ws-api/v3", "wss://ws-fapi.binance.com/ws-fapi/v1",
                     "https://api.binance.com/sapi", "https://fapi.binance.com/futures/data")


def _client_attrs(urls: VenueUrls) -> dict[str, str]:
    return {
        "API_URL": urls.spot_rest,
        "FUTURES_URL": urls.futures_rest,
        "FUTURES_DATA_URL": urls.futures_data,
        "MARGIN_API_URL": urls.margin_rest,
        "WS_API_URL": urls.ws_api,
        "WS_FUTURES_URL": urls.ws_futures_api,
    }


def client_class(urls: VenueUrls) -> type[Client]:
    """python-binance's sync Client with only the URL constants overridden."""
    return type(f"{urls.venue.value.title()}Client", (Client,), _client_attrs(urls))


def async_client_class(urls: VenueUrls) -> type[AsyncClient]:
    return type(f"{urls.venue.value.title()}AsyncClient", (AsyncClient,), _client_attrs(urls))


def socket_manager_class(urls: VenueUrls) -> type[BinanceSocketManager]:
    return type(f"{urls.venue.value.title()}SocketManager", (BinanceSocketManager,),
                {"STREAM_URL": urls.spot_ws, "FSTREAM_URL": urls.futures_ws})


async def force_close(rws: Any, timeout_s: float = 2.0) -> None:
    """python-binance's socket reader only notices an exit when a message arrives or after its 10 s
    receive timeout; mark it exiting and close the connection under it so it stops now."""
    if rws is None:
        return
    rws.ws_state = WSListenerState.EXITING
    ws = getattr(rws, "ws", None)
    if ws is not None:
        try:
            await asyncio.wait_for(ws.close(), timeout_s)
        except Exception:  # noqa: BLE001 - already closed or broken: either way it is down
            pass
