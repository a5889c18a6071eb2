"""``python -m api``: serve the REST API on BOT_API_HOST:BOT_API_PORT (127.0.0.1:8503)."""
from __future__ import annotations

import logging
import sys

import redis
import uvicorn

from api.app import create_app
from api.auth import TokenStore
from api.settings import ApiSettings, SettingsError, WebhookSettings, parse_tokens, parse_webhook_secrets

log = logging.getLogger("api")


def main() -> int:
    from settings import ConfigError, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        s, hooks = ApiSettings(), WebhookSettings()
        tokens = TokenStore(parse_tokens(s))
        secrets = parse_webhook_secrets(hooks)
        app_cfg = load_config()
    except (SettingsError, ConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    # The raw tokens and secrets are not kept: only their digests (in the stores above).
    s = s.model_copy(update={"tokens": None})
    hooks = hooks.model_copy(update={"secrets": None})
    if not len(tokens):
        log.warning("no API tokens (BOT_API_TOKENS): every route but /api/v1/health and /webhook answers 401")
    r = redis.Redis.from_url(app_cfg.redis.url, decode_responses=True, socket_timeout=5, health_check_interval=30)
    app = create_app(r, s, tokens, hooks, secrets, (app_cfg.paper.fee_pct, app_cfg.paper.slippage_bps))
    log.info("API on http://%s:%d (docs at /docs); %d token(s), webhooks for %s", s.host, s.port, len(tokens),
             ", ".join(sorted(secrets)) or "no bot")
    uvicorn.run(app, host=s.host, port=s.port, access_log=False, log_config=None, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
