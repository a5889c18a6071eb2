"""What the front ends share: loading the config (a bad one exits 2 naming the key and the rule) and
finding Redis without a valid config (a kill switch must be sendable when config.yaml is broken)."""
from __future__ import annotations

import os
import sys
from typing import NoReturn

import redis
import yaml

from settings import AppConfig, ConfigError, RedisConfig, config_path, load_config
from state.connection import connect


def load_or_exit(path: str | None) -> AppConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        exit_bad(str(exc))


def exit_bad(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def redis_url(explicit: str | None = None, config: str | None = None) -> str:
    """The Redis URL from, in order: ``--redis-url``, ``BOT_REDIS__URL``, the ``redis.url`` of the config
    file read on its own (the rest of the file may be invalid), the default."""
    if explicit:
        return explicit
    if os.environ.get("BOT_REDIS__URL"):
        return os.environ["BOT_REDIS__URL"]
    try:
        raw = yaml.safe_load(config_path(config).read_text(encoding="utf-8"))
        url = raw.get("redis", {}).get("url") if isinstance(raw, dict) else None
        if isinstance(url, str) and url:
            return url
    except (OSError, yaml.YAMLError, UnicodeDecodeError, AttributeError, RecursionError):
        pass
    return RedisConfig().url


def redis_client(url: str) -> redis.Redis:
    """A client for ``url``; when that Redis wants a password (make run's ACL, ops.redis_acl) and the URL
    has none, it signs in as the ``dashboard`` user: read state, post commands, nothing else."""
    r = connect(url)
    try:
        r.ping()
    except redis.AuthenticationError:
        from ops.redis_acl import passwords, passwords_path, url_for

        if not passwords_path().exists():
            raise
        return connect(url_for(url, "dashboard", passwords()["dashboard"]))
    except redis.RedisError:
        pass  # unreachable: the caller says so when it uses it
    return r
