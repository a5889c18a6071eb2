"""The worker's background loops (threads beside the trading loop): the venue loop (reconciliation
and the account guard), the fills thread, the heartbeat, the health check and the command reader.
Mixed into ``engine.worker.Worker``: the attributes they use are the worker's."""
from __future__ import annotations

import logging
import threading

import redis

from engine.bot import Bot
from engine.dca_bot import DcaBot
from state.lease import LeaseLost
from state.shards import read as read_commands

log = logging.getLogger("worker")


class WorkerLoops:
    """The loops each run in their own thread until ``stop`` is set (a mixin of Worker)."""

    # ---- venue bots -----------------------------------------------------------------------
    def venue_loop(self, stop: threading.Event) -> None:
        """Every exchange.reconcile_every_s: resolve stale intents and reconcile each venue bot."""
        assert self.supervisor is not None
        while not stop.wait(self.app.exchange.reconcile_every_s):
            for name in list(self.configs):
                bot = self.bots.get(name)
                if bot is None or not self.fleet.on_venue(name):
                    continue
                try:
                    with self.lock:
                        self.supervisor.pass_bot(bot)
                        self.retry_closes(self.clock.now_ms())
                        self._commit_bots([bot])
                except Exception as exc:  # noqa: BLE001 - the next pass tries again
                    log.error("reconcile %s: %s", name, exc)
            self._guard_account()

    def _guard_account(self) -> None:
        """Account-level loss limits across every live bot: a breach flattens and halts all of them."""
        if self.account is None:
            return
        try:
            breaches = self.account.check()
        except Exception as exc:  # noqa: BLE001 - the next pass tries again
            log.error("account equity not checked: %s", exc)
            return
        if not breaches:
            return
        live = [b for b in self.bots.values() if self.configs[b.name].mode == "live"]
        log.critical("ACCOUNT LIMIT: %s; every live bot is flattened and halted", "; ".join(b.reason for b in breaches))
        with self.lock:
            for bot in live:
                bot.queue_breaches(breaches)
            self._commit_bots(live)

    def fills_loop(self, stop: threading.Event) -> None:
        """Resting orders that completed on the venue (user-data stream or poll) are booked at once,
        not at the next candle: the next safety order and the new take-profit go out in milliseconds."""
        assert self.venue is not None
        while not stop.is_set():
            if not self.venue.fills_ready.wait(0.5):
                continue
            self.venue.fills_ready.clear()
            try:
                with self.lock:
                    synced = [b for b in self.bots.values() if isinstance(b, (DcaBot, Bot)) and b.sync_venue()]
                    if synced:
                        self._commit_bots(synced)
            except Exception:  # noqa: BLE001 - the next wake-up or poll tries again
                log.exception("booking venue fills failed")

    # ---- heartbeat and commands ---------------------------------------------------------------
    def heartbeat_loop(self, stop: threading.Event) -> None:
        cfg = self.app.worker
        while not stop.is_set():
            try:
                if not self.shards.renew():
                    self.lose_lease("another worker took the lease")
                    return
                if self.shards.primary:  # the worker of shard 0 is the one the heartbeat shows
                    self.writer.heartbeat(self._heartbeat(), cfg.heartbeat_ttl_s)
            except redis.RedisError as exc:
                log.error("heartbeat failed: %s", exc)
            stop.wait(cfg.heartbeat_every_s)

    def health_loop(self, stop: threading.Event) -> None:
        """Every second: market and venue health; affected bots to REDUCE_ONLY and back (engine.health)."""
        while not stop.wait(1.0):
            try:
                with self.lock:
                    now = self.clock.now_ms()
                    changes, audits, view = self.health.check(now)
                    if changes:
                        for ch in changes:
                            log.warning("health: %s %s (%s)", ch.target, ch.record.state.value, ch.record.reason)
                        self.writer.commit([b.drain(now) for b in self.bots.values() if b.name in
                                            {c.target for c in changes}], controls=changes, audits=audits)
                if self.shards.primary:
                    self.writer.health(view)
                self.write_marks()
            except LeaseLost as exc:
                self.lose_lease(str(exc))
            except Exception:  # noqa: BLE001 - the next check tries again
                log.exception("health check failed")

    def command_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            held = self.shards.held()
            if not held:  # a standby worker reads nothing until it takes a shard over
                stop.wait(0.5)
                continue
            try:
                for shard, entry_id, fields in read_commands(self.r, self.consumer, held, block_ms=500):
                    self.handle_command(entry_id, fields, shard)
            except redis.RedisError as exc:
                log.error("command stream: %s", exc)
                stop.wait(1.0)
            except Exception:  # never let a bad command kill the reader
                log.exception("command loop error")
                stop.wait(0.5)

