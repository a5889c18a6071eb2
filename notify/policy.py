"""How much the notifier says: de-duplication of repeats and the per-target rate limit.

**De-duplication.** Events are the same thing when they have the same kind, bot and rule
(``data["rule"]``; events without a rule, such as trades, are keyed by their title, so distinct
trades are never merged). The first one passes; repeats inside ``window_s`` are held back and
counted; when the window ends, one summary says how many there were ("... repeated 999 more
times in 5 min"). So one flapping rule sends at most two messages per window, not 1,000.

**Rate limit.** A target gets at most ``rate_per_min`` messages in any 60 s; events that come
faster wait and are joined into one digest message when the target may send again. Nothing is
dropped by the rate limit.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from state.events import SEVERITY_RANK, Event


def dedupe_key(e: Event) -> str:
    rule = e.data.get("rule")
    return f"{e.kind}|{e.bot}|{rule if rule is not None else e.title}"


@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0
    last: Event | None = None


class Deduper:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self.suppressed_total = 0

    def admit(self, e: Event, now: float) -> bool:
        """True: send it. False: a repeat inside its window (counted for the summary)."""
        if self.window_s <= 0:
            return True
        k = dedupe_key(e)
        w = self._windows.get(k)
        if w is not None and now - w.start < self.window_s:
            w.suppressed += 1
            if w.last is None or SEVERITY_RANK[e.severity] >= SEVERITY_RANK[w.last.severity]:
                w.last = e
            self.suppressed_total += 1
            return False
        self._windows[k] = _Window(start=now)
        return True

    def flush(self, now: float) -> list[Event]:
        """Summaries of the windows that ended with repeats held back; ended windows are forgotten."""
        out: list[Event] = []
        for k in [k for k, w in self._windows.items() if now - w.start >= self.window_s]:
            w = self._windows.pop(k)
            if w.suppressed and w.last is not None:
                e = w.last
                mins = self.window_s / 60
                span = f"{mins:g} min" if mins >= 1 else f"{self.window_s:g} s"
                out.append(e.model_copy(update={
                    "title": f"{e.title} (repeated {w.suppressed} more time{'s' if w.suppressed > 1 else ''} "
                             f"in {span})"[:200],
                    "data": {**e.data, "repeats": w.suppressed}, "id": ""}))
        return out


class RateLimit:
    """At most ``per_min`` sends in any rolling 60 s."""

    def __init__(self, per_min: int) -> None:
        self.per_min = per_min
        self._sent: deque[float] = deque()

    def wait_s(self, now: float) -> float:
        """0 when a send is allowed now, else how long until it is."""
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) < self.per_min:
            return 0.0
        return 60.0 - (now - self._sent[0])

    def record(self, now: float) -> None:
        self._sent.append(now)
