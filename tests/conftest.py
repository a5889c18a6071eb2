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


def pytest_configure(config: pytest.Config) -> None:
    """Studies and models of the developer's var/ never leak into tests (nor tests into var/): every
    test process, and every worker or dashboard it starts, gets empty folders unless a test sets its own."""
    import os
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="bot-tests-research-"))
    os.environ.setdefault("BOT_OPTIMIZE_DIR", str(base / "optimize"))
    os.environ.setdefault("BOT_MODELS_DIR", str(base / "models"))
