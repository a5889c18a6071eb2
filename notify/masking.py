"""Secrets never reach a log line: a logging filter that masks them in every record.

Installed on the root logger's handlers, so it covers the notifier's own lines and those of the
libraries under it (apprise names failing targets, httpx logs python-telegram-bot's request URLs,
which carry the bot token), exception texts included.
"""
from __future__ import annotations

import logging
from typing import Iterable

MASK = "***"


class MaskingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a URL is masked whole before any of its parts.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.mask(record.getMessage())
        record.args = ()
        if record.exc_info:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def install(secrets: Iterable[str], level: int = logging.INFO) -> MaskingFilter:
    """Log to stderr through a handler that masks ``secrets``; quiets the per-request INFO lines
    of httpx (they would print the Telegram bot URL)."""
    flt = MaskingFilter(secrets)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for h in root.handlers:
        h.addFilter(flt)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apprise").setLevel(logging.WARNING)  # a line per message sent is noise
    return flt
