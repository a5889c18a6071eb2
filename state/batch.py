"""One fenced, atomic write: the commands a batch queues, and how they reach Redis.

``Batch`` takes redis-py's own command methods (``xadd``, ``hset``, ``set`` ... from
``redis.commands.CoreCommands``, so the arguments are exactly what redis-py sends) and records each
command instead of sending it (``set`` and ``xadd``, in every write, are recorded by ``Batch`` itself
with the same arguments, tests/unit/test_batch_commands.py). ``execute`` then writes them all at once,
all or nothing as far as another client can see, and only while every fence key still holds this
worker's token (``state/lease.py``):

* as a rule in **one** round trip: ``BATCH_LUA`` compares the fences and runs the commands in one
  script, atomic as a script is. Before, the same write took three (WATCH + GET of the fences,
  then MULTI ... EXEC) and an answer to parse per command, which was a third of a trading step;
* a batch holding a script of its own (``EVAL``: a fanned-out command's merged answer,
  ``state/shards.py``; Redis refuses EVAL inside a script) or a command too long to pass through
  Lua's stack goes the general way: WATCH the fences, compare them, MULTI ... EXEC.

A script batch can also be sent ahead of its answer (``send``, then ``finish``): the trading loop
computes its next steps while Redis runs it (``StateWriter.commit(defer=True)`` keeps the order and
what fails). The script goes as ``EVAL`` with its text (Redis finds it compiled by its digest), so a Redis
that restarted or flushed its scripts cannot refuse a batch already sent.

Either way a moved fence raises ``LeaseLost`` with nothing written. Like MULTI/EXEC, a command that
Redis refuses (a wrong type) does not stop the others; the first such error is raised afterwards.
The data keys travel as arguments, not as KEYS: this store is one Redis, not a cluster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from redis.commands import CoreCommands

from state.lease import LeaseLost

# KEYS: the fence keys; ARGV[1..#KEYS]: the tokens this worker holds; then each command as its
# argument count followed by its arguments, or, for the record appends of every write
# (XADD key MAXLEN ~ n * field value), "x" followed by key, n, field and value: four arguments fewer
# to pack and to pass each time.
BATCH_LUA = """
local n = #KEYS
for i = 1, n do
  local cur = redis.call('GET', KEYS[i])
  if cur ~= ARGV[i] then
    return redis.error_reply('LEASE_LOST ' .. KEYS[i] .. ' holds ' .. tostring(cur) .. ', not ' .. ARGV[i])
  end
end
local i, last, err = n + 1, #ARGV, nil
local reply
while i <= last do
  if ARGV[i] == 'x' then
    reply = redis.pcall('XADD', ARGV[i + 1], 'MAXLEN', '~', ARGV[i + 2], '*', ARGV[i + 3], ARGV[i + 4])
    i = i + 5
  else
    local argc = tonumber(ARGV[i])
    reply = redis.pcall(unpack(ARGV, i + 1, i + argc))
    i = i + argc + 1
  end
  if err == nil and type(reply) == 'table' and reply.err then err = reply.err end
end
if err then return redis.error_reply(err) end
return 1
"""
# Lua's C stack holds at most 8000 values (LUAI_MAXCSTACK): a longer command goes the general way.
SCRIPT_ARGS_MAX = 7000
# RESP bulk-string headers ("$<length>\r\n") of the usual argument lengths, made once
_HEADERS_KEPT = 4096
_HEADERS = [b"$%d\r\n" % n for n in range(_HEADERS_KEPT)]
_NOT_IN_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})


class Batch(CoreCommands):  # type: ignore[misc]
    """The commands queued for one write, recorded (see the module docstring)."""

    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any, **options: Any) -> None:
        self.ops.append(args)

    # The two commands of every write, recorded without redis-py's per-call option checks (its ``set``
    # inspects its own signature for experimental arguments on every call, ~5 µs; ``xadd`` checks a
    # dozen options): the same arguments as redis-py's (tests/unit/test_batch_commands.py), and
    # redis-py's own method for any other option.
    def set(self, name: Any, value: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if args or kwargs:
            return super().set(name, value, *args, **kwargs)  # type: ignore[no-any-return]
        self.ops.append(("SET", name, value))
        return None

    def xadd(self, name: Any, fields: Any, id: Any = "*", maxlen: Any = None,  # type: ignore[override]
             approximate: bool = True, **kwargs: Any) -> None:
        if kwargs or type(fields) is not dict or not fields or (
                maxlen is not None and (type(maxlen) is not int or maxlen < 0)):
            return super().xadd(name, fields, id, maxlen, approximate, **kwargs)  # type: ignore[no-any-return]
        op: list[Any] = ["XADD", name]
        if maxlen is not None:
            op += (b"MAXLEN", b"~", str(maxlen)) if approximate else (b"MAXLEN", str(maxlen))
        op.append(id)
        for pair in fields.items():
            op += pair
        self.ops.append(tuple(op))
        return None

    def scripted(self) -> bool:
        """Whether the batch can run as one script (no script of its own, no command too long)."""
        return all(op[0] not in _NOT_IN_SCRIPTS and len(op) <= SCRIPT_ARGS_MAX for op in self.ops)


@dataclass(frozen=True)
class Sent:
    """A batch sent as one script whose answer is not read yet, and the connection it waits on (held out of
    the pool until the last answer on it is read)."""
    conn: Any


class BatchRunner:
    """Writes batches to ``r``."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        # EVAL with the script's text, not EVALSHA: Redis finds it compiled by its digest (a few µs), and a
        # Redis restarted or flushed meanwhile cannot refuse a batch sent ahead of the script's reload
        self._script = BATCH_LUA.encode()
        self._encoder = r.get_encoder()
        self._text = (self._encoder.encoding, self._encoder.encoding_errors)  # the client's, as redis-py encodes

    def execute(self, batch: Batch, fences: dict[str, int]) -> None:
        sent = self.send(batch, fences)
        if sent is not None:
            self.finish(sent)

    def send(self, batch: Batch, fences: dict[str, int], conn: Any = None) -> Sent | None:
        """Send ``batch`` as one script and return before its answer (``finish`` reads it), so that the
        caller's work overlaps Redis running it. ``conn``: the connection of batches sent before it whose
        answers are not read yet (Redis runs the commands of one connection in the order they came).
        A batch that cannot go as one script is written the general way here, answer included (None)."""
        if not batch.ops and not fences:
            return None
        if not batch.scripted():
            self._watched(batch, fences)
            return None
        return Sent(self._post(self._pack(fences, batch.ops), conn))

    def finish(self, sent: Sent, release: bool = True) -> None:
        """The answer of a batch ``send`` sent: a moved fence raises ``LeaseLost``, a refusal its error.
        ``release``: the connection goes back to the pool (no other answer is waited for on it); a lost
        one is dropped either way. Never retried here: a write whose answer was lost may have run, and
        the writer decides what to do with it (``StateWriter``)."""
        try:
            self._answer(sent.conn, release)
        except redis.ResponseError as exc:
            if str(exc).startswith("LEASE_LOST"):
                raise LeaseLost(f"the lease moved ({str(exc).removeprefix('LEASE_LOST ')}); this worker's "
                                "writes nothing") from None
            raise

    def drop(self, sent: Sent) -> None:
        """The connection of ``sent`` closed and returned unread (what waits on it is not wanted)."""
        sent.conn.disconnect()
        self.r.connection_pool.release(sent.conn)

    def _pack(self, fences: dict[str, int], ops: list[tuple[Any, ...]]) -> bytes:
        """``EVAL`` of BATCH_LUA over the fences and ``ops``, as RESP, in one pass. Each argument is
        encoded as redis-py encodes it (the client's text encoding and error policy, repr of numbers,
        redis-py's own encoder for the rest and its errors). Packed here, not by redis-py, whose packer
        grows its buffer by copying it for every argument (~2.5 µs each, for the hundreds of one batch);
        the encoding is inline because a call per argument was a third of the packing."""
        text, encode = self._text, self._encoder.encode
        hdr, crlf = _HEADERS, b"\r\n"
        out: list[bytes] = [b""]
        ap = out.append
        head = [b"EVAL", self._script, b"%d" % len(fences), *(k.encode(*text) for k in fences),
                *(b"%d" % t for t in fences.values())]
        for a in head:
            ap(hdr[len(a)])
            ap(a)
            ap(crlf)
        count = len(head)
        for op in ops:
            if len(op) == 8 and op[0] == "XADD" and op[2] == b"MAXLEN" and op[3] == b"~" and op[5] == "*":
                op = (b"x", op[1], op[4], op[6], op[7])  # BATCH_LUA's short form of a record append
                count += 5
            else:
                n = b"%d" % len(op)
                ap(hdr[len(n)])
                ap(n)
                ap(crlf)
                count += len(op) + 1
            for v in op:
                t = type(v)
                if t is str:
                    v = v.encode(*text)
                elif t is not bytes:
                    v = repr(v).encode() if t is int or t is float else encode(v)
                m = len(v)
                ap(hdr[m] if m < _HEADERS_KEPT else b"$%d\r\n" % m)
                ap(v)
                ap(crlf)
        out[0] = b"*%d\r\n" % count
        return b"".join(out)

    def _answer(self, conn: Any, release: bool = True) -> Any:
        """The answer on ``conn`` (of the client's pool), which goes back to the pool if ``release``, and
        closed and back if it failed."""
        try:
            return conn.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            release = False
            self.drop(Sent(conn))  # its state is unknown: the next write connects afresh
            raise
        finally:
            if release:
                self.r.connection_pool.release(conn)

    def _post(self, payload: bytes, conn: Any = None) -> Any:
        """One packed command sent on ``conn``, or on a connection of the client's pool; the connection is
        held until its answer is read (``_answer``)."""
        pool = self.r.connection_pool
        if conn is None:
            conn = pool.get_connection()
        try:
            conn.send_packed_command([payload])
        except BaseException:
            self.drop(Sent(conn))  # its state is unknown: the next write connects afresh
            raise
        return conn

    def _watched(self, batch: Batch, fences: dict[str, int]) -> None:
        """The general way: WATCH the fences, compare them, then MULTI ... EXEC."""
        with self.r.pipeline(transaction=True) as pipe:
            if fences:
                pipe.watch(*fences)
                moved = _moved(fences, pipe.mget(list(fences)))
                if moved:
                    raise LeaseLost(f"the lease moved ({moved}); this worker's writes nothing")
                pipe.multi()
            for op in batch.ops:
                pipe.execute_command(*op)
            try:
                pipe.execute()
            except redis.WatchError:
                # redis-py also raises WatchError when the connection drops while watching (Redis
                # killed or restarted): only a changed fence means another worker has the lease
                moved = _moved(fences, self.r.mget(list(fences)))  # Redis still away: ConnectionError
                if moved:
                    raise LeaseLost(f"the lease moved during a write ({moved}); nothing was written") from None
                raise redis.ConnectionError("the connection dropped during a write; its outcome is unknown") from None


def _moved(fences: dict[str, int], current: list[Any]) -> str:
    """The first fence that no longer holds this worker's token, said as BATCH_LUA says it ('' if none)."""
    for (key, token), cur in zip(fences.items(), current):
        if cur is None or int(cur) != token:
            return f"{key} holds {cur!r}, not {token}"
    return ""
