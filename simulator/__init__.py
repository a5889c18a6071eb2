"""The local Binance-compatible exchange: an aiohttp server that python-binance drives unmodified.

Run it with ``python -m simulator --port 8765`` (see ``README.md`` beside this file).

Modules, one concept each:
    errors       Binance error codes/messages and their HTTP statuses
    auth         API keys, HMAC-SHA256 signatures, timestamp/recvWindow
    params       request parameter parsing and validation (-1100/-1102/-1106/...)
    filters      spot symbol specs and exchange filters (PRICE_FILTER, LOT_SIZE, NOTIONAL, ...)
    prices       the PriceSource protocol, a seeded random walk, an adapter for candle markets
    klines       candle history built from price bars, aggregated to any interval
    book         the synthetic order book around the current price
    accounts     spot balances (free/locked)
    spot_orders  spot order and trade records, the stop-trigger rule, the order-list hook
    matching     spot orders: book walk, resting limit orders, trade-through fills, fees
    order_lists  spot order lists (OCO): two legs that cancel each other
    order_list_params   the OCO endpoints' parameters (orderList/oco and the older order/oco)
    responses    spot JSON shapes (orders, trades, account)
    futures      USD-M positions, margin, wallet and LIMIT/MARKET matching
    futures_specs   USD-M symbol specs and their exchangeInfo filters
    futures_params  USD-M order parameters (POST /fapi/v1/order)
    income       the USD-M income ledger (every wallet change)
    funding      index price, premium index, funding rate and the 8-hourly settlement
    algo         USD-M conditional orders (the Algo service)
    tape         the public trade tape (one trade per bar)
    tickers      rolling 24 h statistics
    listenkeys   USD-M user-stream listen keys
    ratelimit    request weight / order count windows, 429 and 418 bans
    faults       fault injection state (latency, 5xx, unknown status, lost responses)
    state        SimExchange: all of the above plus the two clocks and the market loop
    registry     the REST endpoint table and shared parameter helpers
    spot_api     /api/v3/* handlers
    order_list_api      /api/v3/orderList/oco, order/oco, orderList, openOrderList, allOrderList
    futures_market_api  /fapi/* market data and funding handlers
    futures_api  /fapi/* trading and account handlers (income included)
    futures_algo_api    /fapi/v1/algoOrder & co.
    tape_api     public trades REST (spot and USD-M)
    ws           market-data WebSocket streams (routing, subscriptions)
    ws_events    the stream events' JSON, diff depth
    user_stream  user-data streams (spot WS-API, futures listenKey socket)
    admin        loopback-only /admin routes
    state_file/  the accounts on disk (--state-file): codec, document, funding and order-list sections, saver
    server       the aiohttp app and the request pipeline
    __main__     the CLI
"""
from simulator.auth import DEFAULT_API_KEY, DEFAULT_API_SECRET

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET"]
