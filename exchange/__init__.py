"""Exchange layer: the python-binance adapter, filters and rate limits, and the local simulator (exchange/sim/)."""
