"""Benchmarks of the Python and C bindings against the usual Python answers.

    SHMKIT_BINDINGS_BENCH=1 go test -run TestBindingsBench -v -timeout 30m ./bindings/c

runs this with the programs it needs built (or by hand: python3 bench.py
--bin DIR, with DIR holding libshmkit.so, frames, ticks and c-subscriber
built as the test does, SHMKIT_LIB and PYTHONPATH set). Every workload runs
once per round, the workloads interleaved, and the medians are printed.

Workloads (each rate is measured by the receiver, first to last message):
  frames  1 MiB numpy frames: a Go publisher -> this process through shmkit,
          zero copy (numpy.frombuffer on the message); a Python producer ->
          this process through multiprocessing.Queue (the array pickled);
          and through multiprocessing.shared_memory blocks whose names go
          through a Queue (the usual hand-rolled answer). Each producer
          stamps the frame number at both ends, each receiver checks them.
  small   64-byte messages: a Go publisher -> this process through shmkit
          (receive + release; receive_into) against multiprocessing.Queue of
          64-byte bytes between two Python processes.
  crossing the cost of one ctypes call: into the library's C part
          (shmkit_abi_version) and into Go (try_receive on an empty
          subscriber).
  c       64-byte messages from a Go publisher: examples/c/subscriber.c
          against the Go subscriber examples/python/ticks.
"""

import argparse
import ctypes
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time

MIB = 1 << 20


# ---- producers for the multiprocessing baselines (run in spawned processes)

def _mpq_producer(q, n, size):
    import numpy as np
    for i in range(n):
        frame = np.empty(size // 8, dtype=np.uint64)  # a new frame: put pickles it later, in a thread
        frame[0] = frame[-1] = i
        q.put(frame)
    q.put(None)


def _shm_producer(data_q, free_q, names, n, size):
    import numpy as np
    from multiprocessing import shared_memory
    blocks = [shared_memory.SharedMemory(name=nm) for nm in names]
    views = [np.ndarray((size // 8,), dtype=np.uint64, buffer=b.buf) for b in blocks]
    for i in range(n):
        k = free_q.get()
        views[k][0] = views[k][-1] = i
        data_q.put((names[k], k, i))
    data_q.put(None)
    del views
    for b in blocks:
        b.close()


def _small_producer(q, n):
    msg = bytearray(64)
    for i in range(n):
        msg[:8] = i.to_bytes(8, "little")
        q.put(bytes(msg))
    q.put(None)


# ---- the workloads: each returns messages per second

def frames_shmkit(bin_dir, n, tag, extra=()):
    import numpy as np
    import shmkit
    name = "bench-frames-%d-%s" % (os.getpid(), tag)
    pub = subprocess.Popen([os.path.join(bin_dir, "frames"), "-name", name, "-count", str(n),
                            "-size", str(MIB), "-depth", "64"] + list(extra), stdout=subprocess.DEVNULL)
    try:
        ch = _open(shmkit, name)
        with ch, ch.subscriber() as sub:
            i, start = 0, None
            for msg in sub:
                if start is None:
                    start = time.perf_counter()
                a = np.frombuffer(msg.data, dtype=np.uint64)  # zero copy
                if a[0] != i or a[-1] != i:
                    raise SystemExit("shmkit frame %d numbered %d/%d" % (i, a[0], a[-1]))
                del a
                i += 1
            el = time.perf_counter() - start
        assert i == n, i
    finally:
        pub.wait(60)
    return (n - 1) / el


def _open(shmkit, name):
    end = time.monotonic() + 60
    while True:
        try:
            return shmkit.open(name)
        except shmkit.NotFound:
            if time.monotonic() > end:
                raise
            time.sleep(0.002)


def frames_mpqueue(n):
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=64)
    p = ctx.Process(target=_mpq_producer, args=(q, n, MIB))
    p.start()
    i, start = 0, None
    while True:
        a = q.get()
        if a is None:
            break
        if start is None:
            start = time.perf_counter()
        if a[0] != i or a[-1] != i:
            raise SystemExit("mp.Queue frame %d numbered %d/%d" % (i, a[0], a[-1]))
        i += 1
    el = time.perf_counter() - start
    p.join()
    assert i == n
    return (n - 1) / el


def frames_shm_names(n, depth=64):
    import numpy as np
    from multiprocessing import shared_memory
    ctx = mp.get_context("spawn")
    blocks = [shared_memory.SharedMemory(create=True, size=MIB) for _ in range(depth)]
    try:
        data_q, free_q = ctx.Queue(), ctx.Queue()
        for k in range(depth):
            free_q.put(k)
        p = ctx.Process(target=_shm_producer, args=(data_q, free_q, [b.name for b in blocks], n, MIB))
        p.start()
        attached = {}  # name -> (SharedMemory, ndarray): attach once per block
        i, start = 0, None
        while True:
            item = data_q.get()
            if item is None:
                break
            if start is None:
                start = time.perf_counter()
            nm, k, num = item
            if nm not in attached:
                s = shared_memory.SharedMemory(name=nm)
                attached[nm] = (s, np.ndarray((MIB // 8,), dtype=np.uint64, buffer=s.buf))
            a = attached[nm][1]
            if a[0] != i or a[-1] != i or num != i:
                raise SystemExit("shared_memory frame %d numbered %d/%d" % (i, a[0], a[-1]))
            free_q.put(k)
            i += 1
        el = time.perf_counter() - start
        p.join()
        for s, a in attached.values():
            del a
        for nm in list(attached):
            s, _ = attached.pop(nm)
            s.close()
        assert i == n
        return (n - 1) / el
    finally:
        for b in blocks:
            b.close()
            b.unlink()


def small_shmkit(bin_dir, n, tag, into, extra=()):
    import shmkit
    name = "bench-small-%d-%s" % (os.getpid(), tag)
    pub = subprocess.Popen([os.path.join(bin_dir, "frames"), "-name", name, "-count", str(n),
                            "-size", "64", "-depth", "1024"] + list(extra), stdout=subprocess.DEVNULL)
    try:
        ch = _open(shmkit, name)
        with ch, ch.subscriber() as sub:
            i, start = 0, None
            if into:
                buf = bytearray(64)
                while True:
                    try:
                        sub.receive_into(buf)  # one call into the library: receive, copy, release
                    except shmkit.PeerGone:
                        break
                    if start is None:
                        start = time.perf_counter()
                    if int.from_bytes(buf[:8], "little") != i:
                        raise SystemExit("small message %d misnumbered" % i)
                    i += 1
            else:
                while True:
                    try:
                        m = sub.receive()  # zero copy; two calls: receive and release
                    except shmkit.PeerGone:
                        break
                    if start is None:
                        start = time.perf_counter()
                    if int.from_bytes(m.data[:8], "little") != i:
                        raise SystemExit("small message %d misnumbered" % i)
                    m.release()
                    i += 1
            el = time.perf_counter() - start
        assert i == n, i
    finally:
        pub.wait(60)
    return (n - 1) / el


def small_mpqueue(n):
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=1024)
    p = ctx.Process(target=_small_producer, args=(q, n))
    p.start()
    i, start = 0, None
    while True:
        m = q.get()
        if m is None:
            break
        if start is None:
            start = time.perf_counter()
        if int.from_bytes(m[:8], "little") != i:
            raise SystemExit("mp.Queue message %d misnumbered" % i)
        i += 1
    el = time.perf_counter() - start
    p.join()
    return (n - 1) / el


def crossing(n):
    """ns per call: the C part of the library, and into Go."""
    import shmkit
    lib = shmkit._L
    f = lib.shmkit_abi_version
    t = time.perf_counter()
    for _ in range(n):
        f()
    c_ns = (time.perf_counter() - t) / n * 1e9
    name = "bench-cross-%d" % os.getpid()
    with shmkit.create(name, max_message=64) as ch, ch.subscriber() as sub:
        tr, h, mp_ = lib.shmkit_try_receive, sub._h, sub._mp
        t = time.perf_counter()
        for _ in range(n):
            tr(h, mp_)
        go_ns = (time.perf_counter() - t) / n * 1e9
        t = time.perf_counter()
        for _ in range(n):
            sub.try_receive()
        py_ns = (time.perf_counter() - t) / n * 1e9
        pub = ch.publisher()
        pid, h, v = lib.shmkit_publisher_id, pub._h, ctypes.byref(ctypes.c_uint64())
        t = time.perf_counter()
        for _ in range(n):
            pid(h, v)
        id_ns = (time.perf_counter() - t) / n * 1e9
    return c_ns, go_ns, py_ns, id_ns


def c_vs_go(bin_dir, n, tag, prog):
    name = "bench-c-%d-%s-%s" % (os.getpid(), tag, prog)
    pub = subprocess.Popen([os.path.join(bin_dir, "frames"), "-name", name, "-count", str(n),
                            "-size", "64", "-depth", "1024"], stdout=subprocess.DEVNULL)
    args = [os.path.join(bin_dir, prog)] + ([name] if prog == "c-subscriber" else ["-name", name])
    t0 = time.perf_counter()
    sub = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    out, _ = sub.communicate(timeout=300)
    wall = time.perf_counter() - t0
    pub.wait(60)
    m = re.search(r"received (\d+) messages, (\d+) msgs/s", out)
    if sub.returncode or not m or int(m.group(1)) != n:
        raise SystemExit("%s: %s" % (prog, out))
    return float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="directory with frames, ticks, c-subscriber")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--small", type=int, default=200000)
    ap.add_argument("--only", default="frames,small,crossing,c")
    a = ap.parse_args()
    only = a.only.split(",")
    res = {}

    def add(k, v):
        res.setdefault(k, []).append(v)

    for r in range(a.rounds):
        tag = str(r)
        if "frames" in only:
            add("frames shmkit (Go pub, zero copy)", frames_shmkit(a.bin, a.frames, tag))
            add("frames shmkit (Go pub parks, zero copy)", frames_shmkit(a.bin, a.frames, tag + "p", ["-park"]))
            add("frames multiprocessing.Queue", frames_mpqueue(a.frames))
            add("frames shared_memory + Queue of names", frames_shm_names(a.frames))
        if "small" in only:
            add("64B shmkit receive+release", small_shmkit(a.bin, a.small, tag, False))
            add("64B shmkit receive_into", small_shmkit(a.bin, a.small, tag + "i", True))
            add("64B shmkit receive+release (Go pub parks)", small_shmkit(a.bin, a.small, tag + "p", False, ["-park"]))
            add("64B shmkit receive_into (Go pub parks)", small_shmkit(a.bin, a.small, tag + "ip", True, ["-park"]))
            add("64B multiprocessing.Queue", small_mpqueue(a.small))
        if "crossing" in only:
            c, g, p, i = crossing(200000)
            add("ns/call ctypes -> C (shmkit_abi_version)", c)
            add("ns/call ctypes -> Go (shmkit_publisher_id)", i)
            add("ns/call ctypes -> Go (shmkit_try_receive, empty)", g)
            add("ns/call Subscriber.try_receive (empty)", p)
        if "c" in only:
            add("64B C subscriber", c_vs_go(a.bin, a.small * 5, tag, "c-subscriber"))
            add("64B Go subscriber", c_vs_go(a.bin, a.small * 5, tag, "ticks"))
        print("round %d done" % (r + 1), file=sys.stderr, flush=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    print("%-50s %14s   %s" % ("workload", "median", "all rounds"))
    for k, v in res.items():
        print("%-50s %14.0f   %s" % (k, med[k], " ".join("%.0f" % x for x in v)))

    def ratio(x, y, label):
        if x in med and y in med and med[y] > 0:
            print("%-50s %14.1fx" % (label, med[x] / med[y]))

    ratio("frames shmkit (Go pub, zero copy)", "frames multiprocessing.Queue", "frames: shmkit / mp.Queue (target >= 10x)")
    ratio("frames shmkit (Go pub, zero copy)", "frames shared_memory + Queue of names",
          "frames: shmkit / shared_memory+names (target >= 2x)")
    ratio("frames shmkit (Go pub parks, zero copy)", "frames shared_memory + Queue of names",
          "frames: shmkit, pub parks / shared_memory+names (target >= 2x)")
    ratio("64B shmkit receive+release", "64B multiprocessing.Queue", "64B: receive+release / mp.Queue (target >= 3x)")
    ratio("64B shmkit receive_into", "64B multiprocessing.Queue", "64B: receive_into / mp.Queue (target >= 3x)")
    ratio("64B shmkit receive+release (Go pub parks)", "64B multiprocessing.Queue",
          "64B: receive+release, pub parks / mp.Queue (target >= 3x)")
    ratio("64B shmkit receive_into (Go pub parks)", "64B multiprocessing.Queue",
          "64B: receive_into, pub parks / mp.Queue (target >= 3x)")
    ratio("64B C subscriber", "64B Go subscriber", "64B: C subscriber / Go subscriber (target >= 0.67)")


if __name__ == "__main__":
    main()
