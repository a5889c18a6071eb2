"""Shared fixtures: a real redis-server per test session (integration and e2e)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from support import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.close()


@pytest.fixture
def r(redis_server):
    """A client of the session's redis-server, emptied for this test."""
    client = redis_server.client()
    client.flushall()
    return client


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest runs its script as ``__main__``; a process spawned later in this pytest
    process (the backtest service's worker) would re-import that temporary script and die. Each
    test leaves ``__main__`` as it found it."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
