"""The REST API (FastAPI + uvicorn, ``python -m api``, 127.0.0.1:8503, OpenAPI docs at /docs).

It reads the state the worker wrote and posts commands onto the worker's command stream, exactly
as the dashboard does (``state.reader``, ``state.commands``): its only Redis writes are XADDs to
that stream. Bearer tokens with read / operator scopes (``api.auth``); inbound webhook signals
(``api.webhook``); a dry-run risk check (``api.validate``).
"""
