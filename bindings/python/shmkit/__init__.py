"""shmkit channels from Python: zero-copy pub/sub and work queues in shared
memory, over the same segments as the Go and C programs of shmkit.

    import shmkit, numpy as np

    with shmkit.open("frames") as ch, ch.subscriber() as sub:
        for msg in sub:                       # until every publisher is gone
            frame = np.frombuffer(msg.data, np.uint8)   # no copy
            ...
            del frame
            msg.release()

The package is pure Python over ctypes and libshmkit.so (the Go
implementation built with -buildmode=c-shared), loaded from $SHMKIT_LIB or
from beside this file. Every blocking call releases the GIL while it waits
and wakes at least every RECHECK seconds to let signal handlers (Ctrl-C)
run.

Lifetimes. A received Message's ``data`` is a read-only memoryview into
shared memory; ``release()`` (or the end of a ``with`` block) invalidates
that memoryview, and any later use raises ValueError. Views derived from it
(slices, numpy arrays) keep the message held until the last of them is
gone: the shared memory under a live view is never handed out again. A
Loan's memoryview is writable until publish or discard; publish refuses
(BufferError) while views derived from it are alive. A Channel or
Subscriber closed while derived views are alive stays mapped until they
are gone. See docs/bindings.md.
"""

import ctypes
import json
import struct
import sys
import threading
import time
import warnings
import weakref

from . import _lib

__all__ = [
    "create", "open", "open_or_create", "remove",
    "Channel", "Publisher", "Subscriber", "Message", "Loan",
    "Error", "PeerGone", "Closed", "TypeMismatch", "Timeout", "NotFound", "Exists", "Corrupt",
    "Mismatch", "ConfigError", "TooLarge", "Full", "NoMemory", "TooManyHeld", "WouldBlock",
    "InUse", "TooManyLoans", "Untrusted", "Fault",
    "RECHECK",
]

_L = _lib.load()

#: The longest a blocking call waits inside the library before Python
#: checks for signals (KeyboardInterrupt) and calls again, in seconds.
RECHECK = 0.1
_RECHECK_NS = int(RECHECK * 1e9)
_MSG = struct.Struct("@PNQQQQ")  # shmkit_message, native layout
assert _MSG.size == ctypes.sizeof(_lib.Msg)


class Error(Exception):
    """Base of every shmkit error; ``status`` is the C status code."""

    status = _lib.ERR


class PeerGone(Error):
    """Every publisher has left and everything they published was received."""


class Closed(Error):
    """The channel, publisher or subscriber is closed."""


class TypeMismatch(Error):
    """A typed channel of another message type."""


class Timeout(Error, TimeoutError):
    """The timeout passed."""


class NotFound(Error, FileNotFoundError):
    """No channel of that name."""


class Exists(Error, FileExistsError):
    """create: a channel (or segment) of that name exists."""


class Corrupt(Error):
    """Shared state that cannot be (or not a shmkit channel)."""


class Mismatch(Error):
    """open: the channel differs from the configuration expected."""


class ConfigError(Error, ValueError):
    """A configuration or argument out of range."""


class TooLarge(Error, ValueError):
    """A message over the channel's max_message."""


class Full(Error):
    """Every publisher, subscriber or process slot is taken."""


class NoMemory(Error):
    """The pool has no free chunk (a loan that may not wait)."""


class TooManyHeld(Error):
    """A subscriber holds the most unreleased messages it may."""


class WouldBlock(Error):
    """Nothing to receive without waiting."""


class InUse(Error):
    """remove: live processes hold the channel (force=True removes it anyway)."""


class TooManyLoans(Error):
    """A publisher holds the most loans it may (publish or discard one)."""


class Untrusted(Error, PermissionError):
    """open: the channel's owner or mode is not trusted (docs/security.md)."""


class Fault(Corrupt):
    """A memory fault on the mapping: someone truncated the segment."""


_BY_STATUS = {
    _lib.INVALID_HANDLE: Closed,
    _lib.INVALID_ARGUMENT: ConfigError,
    _lib.CONFIG: ConfigError,
    _lib.NOT_FOUND: NotFound,
    _lib.EXISTS: Exists,
    _lib.MISMATCH: Mismatch,
    _lib.CORRUPT: Corrupt,
    _lib.CLOSED: Closed,
    _lib.TIMEOUT: Timeout,
    _lib.WOULD_BLOCK: WouldBlock,
    _lib.PEER_GONE: PeerGone,
    _lib.TOO_LARGE: TooLarge,
    _lib.FULL: Full,
    _lib.NO_MEMORY: NoMemory,
    _lib.TOO_MANY_HELD: TooManyHeld,
    _lib.TYPE_MISMATCH: TypeMismatch,
    _lib.IN_USE: InUse,
    _lib.TOO_MANY_LOANS: TooManyLoans,
    _lib.UNTRUSTED: Untrusted,
    _lib.FAULT: Fault,
}


def _error(rc):
    """The exception for status rc, with the calling thread's message."""
    msg = (_L.shmkit_last_error() or b"").decode("utf-8", "replace")
    cls = _BY_STATUS.get(rc, Error)
    e = cls(msg or "shmkit status %d" % rc)
    e.status = rc
    return e


def _check(rc):
    if rc:
        raise _error(rc)


_PATTERNS = {"pubsub": 1, "workqueue": 2}
_POLICIES = {"block": 1, "drop_newest": 2, "drop_oldest": 3}


def _config(pattern=None, policy=None, max_message=0, ring_depth=0, max_publishers=0,
            max_subscribers=0, max_processes=0, chunks_per_class=0, keep=False,
            liveness_interval=None, max_loans=0, mode=0):
    c = _lib.Config()
    if pattern is not None:
        if pattern not in _PATTERNS:
            raise ConfigError("pattern %r: use %s" % (pattern, " or ".join(_PATTERNS)))
        c.pattern = _PATTERNS[pattern]
    if policy is not None:
        p = policy.replace("-", "_")
        if p not in _POLICIES:
            raise ConfigError("policy %r: use %s" % (policy, ", ".join(_POLICIES)))
        c.policy = _POLICIES[p]
    for k, v in (("max_message", max_message), ("ring_depth", ring_depth),
                 ("max_publishers", max_publishers), ("max_subscribers", max_subscribers),
                 ("max_processes", max_processes), ("chunks_per_class", chunks_per_class),
                 ("max_loans", max_loans), ("mode", mode)):
        if v < 0:
            raise ConfigError("%s %d is negative" % (k, v))
        setattr(c, k, v)
    c.keep = 1 if keep else 0
    if liveness_interval is not None:
        c.liveness_interval_ns = int(liveness_interval * 1e9)
    return c


def _name(name):
    if isinstance(name, str):
        return name.encode()
    return bytes(name)


def create(name, **config):
    """Create channel ``name`` and join it. Keywords: pattern ("pubsub" or
    "workqueue"), policy ("block", "drop_newest", "drop_oldest"),
    max_message, ring_depth, max_publishers, max_subscribers, max_processes,
    chunks_per_class, max_loans, mode (permission bits), keep,
    liveness_interval (seconds); 0 or absent takes the default. Raises
    Exists when the name is taken."""
    h = ctypes.c_uint64()
    _check(_L.shmkit_create(_name(name), ctypes.byref(_config(**config)), ctypes.byref(h)))
    return Channel(h.value, name)


def open(name, **expect):
    """Join the existing channel ``name`` (NotFound if there is none). The
    keywords of create, given, are checked against the channel (Mismatch)."""
    h = ctypes.c_uint64()
    cfg = ctypes.byref(_config(**expect)) if expect else None
    _check(_L.shmkit_open(_name(name), cfg, ctypes.byref(h)))
    return Channel(h.value, name)


def open_or_create(name, **config):
    """Join channel ``name``, creating it with ``config`` if it does not
    exist; of processes racing to create it, one creates and the others
    join."""
    h = ctypes.c_uint64()
    _check(_L.shmkit_open_or_create(_name(name), ctypes.byref(_config(**config)), ctypes.byref(h)))
    return Channel(h.value, name)


def remove(name, force=False):
    """Remove channel ``name``. Raises InUse while live processes hold it,
    unless ``force`` (they keep their mappings); NotFound if there is none."""
    _check(_L.shmkit_remove(_name(name), 1 if force else 0))


def _timeout_ns(timeout):
    if timeout is None:
        return -1
    return max(0, int(timeout * 1e9))


class _Deferred:
    """Counts the messages whose shared memory is still referenced by views
    after release, and runs the closes that must wait for them."""

    def __init__(self):
        self.lock = threading.RLock()
        self.n = 0
        self.waiting = []  # functions to run when n drops to 0

    def add(self):
        with self.lock:
            self.n += 1

    def done(self):
        with self.lock:
            self.n -= 1
            if self.n or not self.waiting:
                return
            run, self.waiting = self.waiting, []
        for f in run:
            f()

    def when_idle(self, f):
        """Run f now if nothing is deferred, else when the last is done;
        True if it ran now."""
        with self.lock:
            if self.n:
                self.waiting.append(f)
                return False
        f()
        return True


class Channel:
    """One process's handle on a channel (a context manager). Publishers
    and subscribers made from it close with it."""

    def __init__(self, handle, name):
        self._h = handle
        self.name = name
        self._children = weakref.WeakSet()
        self._deferred = _Deferred()
        self._closed = False

    def __repr__(self):
        return "<shmkit.Channel %r%s>" % (self.name, " closed" if self._closed else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._closed:
            raise Closed("channel %r is closed" % self.name)
        return self._h

    @property
    def config(self):
        """The channel's configuration as recorded in its header (a dict)."""
        c = _lib.Config()
        _check(_L.shmkit_channel_config(self._handle(), ctypes.byref(c)))
        pats = {v: k for k, v in _PATTERNS.items()}
        pols = {v: k for k, v in _POLICIES.items()}
        return {
            "pattern": pats.get(c.pattern, c.pattern), "policy": pols.get(c.policy, c.policy),
            "max_message": c.max_message, "ring_depth": c.ring_depth,
            "max_publishers": c.max_publishers, "max_subscribers": c.max_subscribers,
            "max_processes": c.max_processes, "chunks_per_class": c.chunks_per_class,
            "keep": bool(c.keep), "liveness_interval": c.liveness_interval_ns / 1e9,
            "max_loans": c.max_loans, "mode": c.mode,
        }

    def stats(self):
        """Every counter of the channel (Go's shmkit.Stats as a dict: "Pool",
        "Participants", ...)."""
        h = self._handle()
        for c in list(self._children):
            if isinstance(c, Subscriber) and not c._closed:
                c._flush()
        n = ctypes.c_size_t()
        size = 4096
        while True:
            buf = ctypes.create_string_buffer(size)
            rc = _L.shmkit_channel_stats_json(h, buf, size, ctypes.byref(n))
            if rc == _lib.BUFFER:
                size = n.value + 1024
                continue
            _check(rc)
            return json.loads(buf.raw[:n.value])

    def publisher(self):
        """Join as a publisher (a producer on a work queue)."""
        h = ctypes.c_uint64()
        _check(_L.shmkit_publisher_open(self._handle(), ctypes.byref(h)))
        p = Publisher(self, h.value)
        self._children.add(p)
        return p

    def subscriber(self):
        """Join as a subscriber (a consumer on a work queue); it receives
        what is published after it joined."""
        h = ctypes.c_uint64()
        _check(_L.shmkit_subscriber_open(self._handle(), ctypes.byref(h)))
        s = Subscriber(self, h.value)
        self._children.add(s)
        return s

    def close(self):
        """Close every publisher and subscriber made from the channel and
        leave it; the last participant removes the name. Idempotent. While
        views of received messages are alive, the mapping stays until they
        are gone (with a ResourceWarning)."""
        if self._closed:
            return
        self._closed = True
        for c in list(self._children):
            c.close()
        h = self._h

        def really_close():
            _check(_L.shmkit_channel_close(h))

        if not self._deferred.when_idle(really_close):
            warnings.warn("shmkit: channel %r closed while views of received messages are alive; "
                          "it stays mapped until they are gone" % self.name, ResourceWarning, stacklevel=2)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Publisher:
    """Publishes into a channel (a producer on a work queue)."""

    def __init__(self, ch, handle):
        self._ch = ch
        self._h = handle
        self._closed = False
        self._loan = _lib.LoanT()
        self._send = _L.shmkit_send
        self._live = weakref.WeakSet()  # loans not yet published or discarded

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._closed:
            raise Closed("publisher is closed")
        return self._h

    @property
    def id(self):
        """The identity every message of this publisher carries
        (Message.publisher)."""
        v = ctypes.c_uint64()
        _check(_L.shmkit_publisher_id(self._handle(), ctypes.byref(v)))
        return v.value

    def send(self, data, timeout=None):
        """Copy ``data`` (any bytes-like object, e.g. bytes, bytearray, a
        numpy array) into shared memory and publish it. With policy block it
        waits for room up to ``timeout`` seconds (None: for ever; a timeout
        drops the message for the subscribers still full and raises
        Timeout)."""
        h = self._handle()
        if type(data) is bytes:
            rc = self._send(h, data, len(data), _timeout_ns(timeout))
        else:
            mv = memoryview(data)
            if not mv.c_contiguous:
                raise ValueError("shmkit: send needs a contiguous buffer")
            n = mv.nbytes
            if mv.readonly:
                buf = mv.tobytes()
            else:
                buf = (ctypes.c_char * n).from_buffer(mv) if n else b""
            rc = self._send(h, buf, n, _timeout_ns(timeout))
            del buf
            mv.release()
        if rc:
            raise _error(rc)

    def loan(self, n, timeout=None):
        """Loan ``n`` bytes of shared memory, waiting up to ``timeout``
        seconds for a free chunk (None: for ever; 0: NoMemory at once).
        ``with pub.loan(n) as buf:`` gives a writable memoryview, published
        when the block ends normally and discarded on an exception."""
        h = self._handle()
        lt = self._loan
        _check(_L.shmkit_loan(h, n, _timeout_ns(timeout), ctypes.byref(lt)))
        loan = Loan(self, lt.data, lt.len, lt.token)
        self._live.add(loan)
        return loan

    def close(self):
        """Leave the channel; loans not yet published return to the pool.
        When the last publisher has left, subscribers receive what is left
        and then PeerGone. Idempotent."""
        if self._closed:
            return
        for loan in list(self._live):
            loan.discard()  # deferred while views of it are alive
        self._closed = True
        h = self._h

        def really_close():
            rc = _L.shmkit_publisher_close(h)
            if rc not in (0, _lib.INVALID_HANDLE):
                raise _error(rc)

        self._ch._deferred.when_idle(really_close)


def _view(addr, n, readonly):
    """A memoryview of n bytes at addr, and the ctypes object it exports
    (alive while the view or anything derived from it is)."""
    if n == 0:
        addr = addr or 1  # an empty array needs a non-NULL address
    arr = (ctypes.c_ubyte * n).from_address(addr)
    mv = memoryview(arr).cast("B")
    if readonly:
        mv = mv.toreadonly()
    return mv, arr


def _drop_view(mv, arr):
    """Release mv; report whether arr is now referenced by nobody but the
    caller (no slice or export of it is alive)."""
    try:
        mv.release()
    except BufferError:  # an export (a numpy array) of mv itself
        return False
    # Our local plus getrefcount's argument: anything more is a derived
    # view's managed buffer still holding the exporter.
    return sys.getrefcount(arr) <= 3


class Loan:
    """Shared memory loaned for one message: ``data`` is a writable
    memoryview until publish or discard. A context manager: the block's
    normal end publishes, an exception discards."""

    def __init__(self, pub, addr, n, token):
        self._pub = pub
        self._tok = token
        self.data, self._arr = _view(addr, n, False)
        self._done = False

    def __len__(self):
        return self.data.nbytes if not self._done else 0

    def __del__(self):
        try:
            self.discard()
        except Exception:
            pass

    def __enter__(self):
        return self.data

    def __exit__(self, et, ev, tb):
        if self._done:
            return
        if et is None:
            self.publish()
        else:
            self.discard()

    def publish(self, length=None, timeout=None):
        """Publish the first ``length`` bytes (default all) of the loan.
        Raises BufferError, and keeps the loan, while views derived from
        ``data`` (slices, numpy arrays) are alive: they would write into a
        published message."""
        if self._done:
            raise Error("loan already published or discarded")
        n = self.data.nbytes if length is None else length
        arr, self._arr = self._arr, None
        if not _drop_view(self.data, arr):
            self.data, self._arr = memoryview(arr).cast("B"), arr
            raise BufferError("shmkit: views of the loan are alive (slices, numpy arrays): "
                              "delete them before publishing")
        self._done = True
        del arr
        _check(_L.shmkit_publish(self._pub._handle(), self._tok, n, _timeout_ns(timeout)))

    def discard(self):
        """Give the loan back unpublished. With views of it still alive the
        chunk goes back when the last of them is gone."""
        if self._done:
            return
        self._done = True
        arr, self._arr = self._arr, None
        pub, tok = self._pub, self._tok
        if _drop_view(self.data, arr):
            del arr
            if not pub._closed:
                _check(_L.shmkit_discard(pub._h, tok))
            return
        # Held by a derived view: discard when it goes.
        ch = pub._ch
        ch._deferred.add()

        def gone(_ref):
            try:
                if not pub._closed:
                    _L.shmkit_discard(pub._h, tok)
            finally:
                _KEEP.pop(id(wr), None)
                ch._deferred.done()

        wr = weakref.ref(arr, gone)
        _KEEP[id(wr)] = wr


# Weak references waiting for their callback (a weakref must stay alive for
# its callback to run).
_KEEP = {}


class Message:
    """A received message. ``data`` is a read-only memoryview into shared
    memory (``numpy.frombuffer(msg.data, dtype)`` copies nothing), valid
    until ``release()``; ``publisher``, ``seq`` and ``missed`` describe it.
    A context manager: the block's end releases it."""

    __slots__ = ("_sub", "_tok", "_addr", "_n", "_view", "_arr", "seq", "missed", "publisher", "_held",
                 "__weakref__")

    def __init__(self, sub, m):
        # m: the shmkit_message fields (data, len, seq, missed, publisher, token)
        self._sub = sub
        self._addr, self._n, self.seq, self.missed, self.publisher, self._tok = m
        self._view = None
        self._arr = None
        self._held = True

    def __repr__(self):
        return "<shmkit.Message publisher=%d seq=%d len=%d%s>" % (
            self.publisher, self.seq, self._n, "" if self._held else " released")

    def __len__(self):
        return self._n

    @property
    def data(self):
        """The payload: a read-only memoryview into shared memory."""
        if self._view is None:
            if not self._held or self._sub._closed:
                raise ValueError("shmkit: message released")
            self._view, self._arr = _view(self._addr, self._n, True)
            self._sub._live.add(self)  # its views must outlive a close
        return self._view

    def tobytes(self):
        """A copy of the payload."""
        if not self._held or self._sub._closed:
            raise ValueError("shmkit: message released")
        return ctypes.string_at(self._addr, self._n) if self._n else b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """Give the message back. ``data`` raises ValueError from now on;
        views derived from it (slices, numpy arrays) keep the shared memory
        held until the last of them is gone. Idempotent."""
        if not self._held:
            return
        self._held = False
        sub, tok = self._sub, self._tok
        view, arr = self._view, self._arr
        self._view = self._arr = None
        if view is None or _drop_view(view, arr):
            del arr
            sub._release_later(tok)
            return
        sub._defer(tok, arr)

    def __del__(self):
        # Dropped unreleased: released now, or (when its view is still
        # referenced) when the last view of it is gone.
        if not self._held:
            return
        self._held = False
        try:
            arr, self._view, self._arr = self._arr, None, None
            if arr is None:
                self._sub._release_later(self._tok)
            else:
                self._sub._defer(self._tok, arr)
        except Exception:
            pass


class Subscriber:
    """Receives from a channel (a consumer on a work queue). Iterating
    receives until every publisher is gone, releasing each message when it
    fetches the next."""

    def __init__(self, ch, handle):
        self._ch = ch
        self._h = handle
        self._closed = False
        self._m = _lib.Msg()
        self._mp = ctypes.pointer(self._m)
        self._mbuf = memoryview(self._m).cast("B")
        self._recv = _L.shmkit_receive_next
        # Released messages whose release rides on the next receive (one
        # call into the library per message in a stream); list operations
        # are atomic, so each token is taken once.
        self._pend = []
        self._n = ctypes.c_size_t()
        self._np = ctypes.pointer(self._n)
        self._live = weakref.WeakSet()  # messages with a view, not yet released

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _handle(self):
        if self._closed:
            raise Closed("subscriber is closed")
        return self._h

    def receive(self, timeout=None):
        """The next message, waiting up to ``timeout`` seconds (None: for
        ever). Raises Timeout, PeerGone when every publisher has left and
        everything was received, Closed. The wait releases the GIL and
        returns to Python every RECHECK seconds (Ctrl-C works)."""
        if self._closed:
            raise Closed("subscriber is closed")
        h, recv, mp = self._h, self._recv, self._mp
        pend = self._pend
        tok = 0
        if pend:
            try:
                tok = pend.pop()
            except IndexError:  # another thread took it
                pass
        if timeout is None:
            while True:
                rc = recv(h, tok, _RECHECK_NS, mp)
                if rc != _lib.TIMEOUT:
                    break
                tok = 0
        else:
            end = time.monotonic() + timeout
            wait = min(_timeout_ns(timeout), _RECHECK_NS)
            while True:
                rc = recv(h, tok, wait, mp)
                if rc != _lib.TIMEOUT:
                    break
                tok = 0
                left = end - time.monotonic()
                if left <= 0:
                    break
                wait = min(int(left * 1e9), _RECHECK_NS)
        if rc:
            raise _error(rc)
        return Message(self, _MSG.unpack_from(self._mbuf))

    def try_receive(self):
        """The next message if there is one now, else None. Raises PeerGone
        when every publisher has left and everything was received."""
        h = self._handle()
        pend = self._pend
        tok = 0
        if pend:
            try:
                tok = pend.pop()
            except IndexError:  # another thread took it
                pass
        rc = self._recv(h, tok, 0, self._mp)
        if rc == _lib.TIMEOUT:
            return None
        if rc:
            raise _error(rc)
        return Message(self, _MSG.unpack_from(self._mbuf))

    def receive_into(self, buf, timeout=None):
        """Receive the next message, copy it into the writable buffer
        ``buf`` and release it, in one call into the library; returns the
        message's length (beyond len(buf): truncated). Waits as receive."""
        h = self._handle()
        self._flush()
        if type(buf) is bytearray:
            mv, cap = None, len(buf)
            c = (ctypes.c_char * cap).from_buffer(buf) if cap else None
        else:
            mv = memoryview(buf)
            if mv.readonly or not mv.c_contiguous:
                mv.release()
                raise ValueError("shmkit: receive_into needs a writable contiguous buffer")
            cap = mv.nbytes
            c = (ctypes.c_char * cap).from_buffer(mv) if cap else None
        try:
            end = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = _RECHECK_NS if end is None else max(0, min(int((end - time.monotonic()) * 1e9), _RECHECK_NS))
                rc = _L.shmkit_receive_into(h, c, cap, self._np, wait)
                if rc != _lib.TIMEOUT or (end is not None and time.monotonic() >= end):
                    break
        finally:
            del c
            if mv is not None:
                mv.release()
        if rc:
            raise _error(rc)
        return self._n.value

    def __iter__(self):
        prev = None
        try:
            while True:
                try:
                    m = self.receive()
                except PeerGone:
                    return
                if prev is not None:
                    prev.release()
                prev = m
                yield m
        finally:
            if prev is not None:
                prev.release()

    def _release_later(self, tok):
        pend = self._pend
        pend.append(tok)
        if len(pend) > 1:
            try:
                tok = pend.pop(0)
            except IndexError:
                return
            self._release(tok)

    def _flush(self):
        """Release now what waits for the next receive."""
        while self._pend:
            try:
                tok = self._pend.pop()
            except IndexError:
                return
            self._release(tok)

    def _release(self, tok):
        if self._closed:
            return  # released with the subscriber
        rc = _L.shmkit_release(self._h, tok)
        if rc not in (0, _lib.INVALID_HANDLE, _lib.CLOSED):
            raise _error(rc)

    def _defer(self, tok, arr):
        """Release tok when arr (the exporter of a message's views) dies."""
        ch = self._ch
        ch._deferred.add()
        h = self._h

        def gone(_ref):
            try:
                _L.shmkit_release(h, tok)
            finally:
                _KEEP.pop(id(wr), None)
                ch._deferred.done()

        wr = weakref.ref(arr, gone)
        _KEEP[id(wr)] = wr

    def close(self):
        """Leave the channel; unreleased messages are released. Idempotent.
        While views of its messages are alive the subscriber stays joined
        (and its messages held) until they are gone."""
        if self._closed:
            return
        for m in list(self._live):
            m.release()  # deferred while views of it are alive
        self._closed = True
        h = self._h

        def really_close():
            _L.shmkit_subscriber_close(h)

        self._ch._deferred.when_idle(really_close)
