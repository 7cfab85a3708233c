"""Tests of the shmkit Python package (stdlib unittest). Needs libshmkit.so
($SHMKIT_LIB or beside the package); numpy cases skip without numpy.

    SHMKIT_LIB=$PWD/libshmkit.so PYTHONPATH=bindings/python \
        python3 -m unittest discover -s bindings/python/tests -v
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import shmkit

try:
    import numpy as np
except ImportError:  # the numpy cases skip
    np = None

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for(what, cond, timeout=20.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.002)


def active(ch, role):
    return sum(1 for p in ch.stats()["Participants"] if p["Role"] == role and p["State"] == "active")


class Base(unittest.TestCase):
    def setUp(self):
        self.name = "pytest-%d-%s" % (os.getpid(), self.id().rsplit(".", 1)[-1])

    def tearDown(self):
        try:
            shmkit.remove(self.name)
        except shmkit.NotFound:
            pass

    def pool(self, ch):
        return ch.stats()["Pool"]

    def held(self, ch):
        # Samples subscribers hold unreleased (a pub/sub message lives in
        # its publisher's log, not the pool: Stats' Held counts it).
        return sum(p["Held"] for p in ch.stats()["Participants"] if p["Role"] == "subscriber")

    def assertPoolWhole(self, ch):
        p = self.pool(ch)
        self.assertEqual((p["Free"], p["InUse"], p["InFlight"]), (p["Total"], 0, 0), p)


class TestChannel(Base):
    def test_send_receive(self):
        with shmkit.create(self.name, max_message=1024, ring_depth=8) as ch:
            sub = ch.subscriber()
            pub = ch.publisher()
            pub.send(b"hello")
            pub.send(bytearray(b"bytearray"))
            pub.send(memoryview(b"xmemoryview")[1:])
            pub.send(b"")
            got = []
            for _ in range(4):
                with sub.receive(timeout=5) as m:
                    self.assertEqual(m.publisher, pub.id)
                    self.assertEqual(m.missed, 0)
                    got.append((m.seq, bytes(m.data)))
            self.assertEqual(got, [(1, b"hello"), (2, b"bytearray"), (3, b"memoryview"), (4, b"")])
            self.assertIsNone(sub.try_receive())
            self.assertPoolWhole(ch)
        self.assertFalse(os.path.exists("/dev/shm/shmkit." + self.name))

    def test_config(self):
        with shmkit.create(self.name, max_message=100, ring_depth=16, policy="drop_oldest",
                           max_subscribers=3) as ch:
            c = ch.config
            self.assertEqual((c["pattern"], c["policy"], c["max_message"], c["ring_depth"], c["max_subscribers"]),
                             ("pubsub", "drop_oldest", 100, 16, 3))
            with shmkit.open(self.name, max_message=100) as ch2:
                self.assertEqual(ch2.config, c)
            with self.assertRaises(shmkit.Mismatch):
                shmkit.open(self.name, max_message=200)

    def test_errors(self):
        with self.assertRaises(shmkit.NotFound) as cm:
            shmkit.open(self.name)
        self.assertIsInstance(cm.exception, FileNotFoundError)
        self.assertIsInstance(cm.exception, shmkit.Error)
        with self.assertRaises(shmkit.ConfigError):
            shmkit.create(self.name, ring_depth=3)
        with self.assertRaises(shmkit.ConfigError):
            shmkit.create(self.name, policy="sometimes")
        with shmkit.create(self.name, max_message=16) as ch:
            with self.assertRaises(FileExistsError):
                shmkit.create(self.name)
            pub = ch.publisher()
            with self.assertRaises(shmkit.TooLarge):
                pub.send(b"x" * 17)
            with self.assertRaises(shmkit.TooLarge):
                pub.loan(17)
            sub = ch.subscriber()
            t = time.monotonic()
            with self.assertRaises(TimeoutError):
                sub.receive(timeout=0.05)
            self.assertGreaterEqual(time.monotonic() - t, 0.04)
            with self.assertRaises(shmkit.Timeout):
                sub.receive(timeout=0)
        with self.assertRaises(shmkit.Closed):
            pub.send(b"x")
        with self.assertRaises(shmkit.Closed):
            sub.receive()
        with self.assertRaises(shmkit.Closed):
            ch.publisher()

    def test_remove(self):
        with self.assertRaises(shmkit.NotFound):
            shmkit.remove(self.name)
        with shmkit.create(self.name, max_message=64):
            with self.assertRaises(shmkit.InUse):
                shmkit.remove(self.name)  # this process holds it
            shmkit.remove(self.name, force=True)
            self.assertFalse(os.path.exists("/dev/shm/shmkit." + self.name))

    def test_open_or_create(self):
        with shmkit.open_or_create(self.name, max_message=64) as a, shmkit.open_or_create(self.name, max_message=64) as b:
            sub = b.subscriber()
            a.publisher().send(b"one")
            with sub.receive(timeout=5) as m:
                self.assertEqual(m.tobytes(), b"one")
            self.assertEqual(active(a, "handle"), 2)

    def test_release_invalidates_view(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            pub.send(b"abc")
            m = sub.receive()
            d = m.data
            self.assertTrue(d.readonly)
            with self.assertRaises(TypeError):
                d[0] = 1
            m.release()
            with self.assertRaises(ValueError):
                d[0]
            with self.assertRaises(ValueError):
                m.data
            m.release()  # idempotent
            self.assertPoolWhole(ch)

    def test_derived_view_keeps_message(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            pub.send(b"abcdef")
            m = sub.receive()
            part = m.data[2:]  # a slice: it shares the message's memory
            m.release()
            self.assertEqual(self.held(ch), 1)  # still held: part reads it
            self.assertEqual(bytes(part), b"cdef")
            del part
            self.assertPoolWhole(ch)

    @unittest.skipIf(np is None, "numpy not installed")
    def test_numpy_zero_copy(self):
        with shmkit.create(self.name, max_message=1 << 20) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            src = np.arange(1 << 18, dtype=np.float32)
            pub.send(src)
            with pub.loan(src.nbytes) as buf:
                a = np.frombuffer(buf, dtype=np.float32)
                a[:] = src * 2
                del a  # a view alive at publish would write into a published message
            m = sub.receive(timeout=5)
            x = np.frombuffer(m.data, dtype=np.float32)
            self.assertTrue(np.array_equal(x, src))
            self.assertFalse(x.flags.writeable)
            self.assertFalse(x.flags.owndata)
            m.release()
            self.assertEqual(self.held(ch), 1)  # x keeps it held
            self.assertEqual(float(x[-1]), float(src[-1]))
            del x
            self.assertEqual(self.held(ch), 0)
            with sub.receive(timeout=5) as m:
                self.assertTrue(np.array_equal(np.frombuffer(m.data, np.float32), src * 2))
            self.assertPoolWhole(ch)

    def test_loan(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            with self.assertRaises(RuntimeError):
                with pub.loan(8) as buf:
                    buf[:] = b"discard!"
                    raise RuntimeError("the block fails: the loan is discarded")
            with pub.loan(8) as buf:
                buf[:4] = b"kept"
            loan = pub.loan(10)
            loan.data[:3] = b"abc"
            part = loan.data[:3]
            with self.assertRaises(BufferError):
                loan.publish(3)
            del part
            loan.publish(3)
            with self.assertRaises(shmkit.Error):
                loan.publish()
            with sub.receive(timeout=5) as m:
                self.assertEqual(bytes(m.data[:4]), b"kept")
            with sub.receive(timeout=5) as m:
                self.assertEqual(bytes(m.data), b"abc")
            self.assertIsNone(sub.try_receive())
            self.assertPoolWhole(ch)

    def test_receive_into(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            pub.send(b"0123456789")
            buf = bytearray(4)
            self.assertEqual(sub.receive_into(buf, timeout=5), 10)  # truncated
            self.assertEqual(buf, b"0123")
            with self.assertRaises(ValueError):
                sub.receive_into(b"readonly")
            self.assertPoolWhole(ch)

    def test_iteration_until_peer_gone(self):
        with shmkit.create(self.name, max_message=64, ring_depth=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            for i in range(50):  # more than a subscriber may hold: the iterator releases
                pub.send(b"%d" % i)
            pub.close()
            self.assertEqual([m.tobytes() for m in sub], [b"%d" % i for i in range(50)])
            with self.assertRaises(shmkit.PeerGone):
                sub.receive()
            self.assertPoolWhole(ch)

    def test_too_many_held(self):
        with shmkit.create(self.name, max_message=8, ring_depth=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            for i in range(41):
                pub.send(b"x")
            held = [sub.receive() for _ in range(40)]
            with self.assertRaises(shmkit.TooManyHeld):
                sub.receive()
            held[0].release()
            sub.receive().release()
            for m in held:
                m.release()
            self.assertPoolWhole(ch)

    def test_workqueue(self):
        with shmkit.create(self.name, pattern="workqueue", max_message=16) as ch:
            c1, c2 = ch.subscriber(), ch.subscriber()
            p = ch.publisher()
            for i in range(10):
                p.send(b"%d" % i)
            got = []
            for c in (c1, c2) * 10:
                m = c.try_receive()
                if m:
                    got.append(m.tobytes())
                    m.release()
            self.assertEqual(sorted(got), sorted(b"%d" % i for i in range(10)))

    def test_stats(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            pub.send(b"x")
            sub.receive().release()
            st = ch.stats()
            roles = sorted(p["Role"] for p in st["Participants"])
            self.assertEqual(roles, ["handle", "publisher", "subscriber"])
            mine = [p for p in st["Participants"] if p["Role"] == "subscriber"][0]
            self.assertEqual((mine["Messages"], mine["PID"]), (1, os.getpid()))

    def test_close_with_live_view(self):
        ch = shmkit.create(self.name, max_message=64)
        sub, pub = ch.subscriber(), ch.publisher()
        pub.send(b"still mapped")
        m = sub.receive()
        part = m.data[:5]
        with self.assertWarns(ResourceWarning):
            ch.close()
        self.assertEqual(bytes(part), b"still")  # mapped until part goes
        with self.assertRaises(shmkit.Closed):
            ch.publisher()
        del part, m
        self.assertFalse(os.path.exists("/dev/shm/shmkit." + self.name))


class TestBlocking(Base):
    def test_gil_released_while_waiting(self):
        with shmkit.create(self.name, max_message=64) as ch:
            sub, pub = ch.subscriber(), ch.publisher()
            got = []
            t = threading.Thread(target=lambda: got.append(sub.receive(timeout=10).tobytes()))
            t.start()
            # This thread runs Python while the other waits in receive.
            n, end = 0, time.monotonic() + 0.3
            while time.monotonic() < end:
                n += 1
            self.assertGreater(n, 1000)
            pub.send(b"wake")
            t.join(10)
            self.assertEqual(got, [b"wake"])

    def test_ctrl_c_interrupts_receive(self):
        with shmkit.create(self.name, max_message=64) as ch:
            code = textwrap.dedent("""
                import sys, shmkit
                ch = shmkit.open(sys.argv[1])
                sub = ch.subscriber()
                print("waiting", flush=True)
                try:
                    sub.receive()           # no publisher: waits for ever
                except KeyboardInterrupt:
                    print("interrupted", flush=True)
                ch.close()
            """)
            p = subprocess.Popen([sys.executable, "-c", code, self.name], env=child_env(),
                                 stdout=subprocess.PIPE, text=True)
            try:
                self.assertEqual(p.stdout.readline().strip(), "waiting")
                wait_for("the child to wait", lambda: active(ch, "subscriber") == 1)
                time.sleep(0.05)  # inside the wait
                t = time.monotonic()
                p.send_signal(signal.SIGINT)
                out, _ = p.communicate(timeout=10)
                took = time.monotonic() - t
            finally:
                p.kill()
                p.wait()
            self.assertEqual(out.strip(), "interrupted")
            self.assertEqual(p.returncode, 0)
            self.assertLess(took, 5 * shmkit.RECHECK + 2)  # a re-check interval, with slack


class TestCrossProcess(Base):
    def test_python_to_python(self):
        n = 2000
        code = textwrap.dedent("""
            import sys, time, shmkit
            name, n = sys.argv[1], int(sys.argv[2])
            with shmkit.create(name, max_message=256, ring_depth=64) as ch:
                while not any(p["Role"] == "subscriber" for p in ch.stats()["Participants"]):
                    time.sleep(0.002)
                with ch.publisher() as pub:
                    for i in range(n):
                        pub.send(b"%08d" % i * (1 + i % 16))
                while any(p["Role"] == "subscriber" for p in ch.stats()["Participants"]):
                    time.sleep(0.002)
        """)
        p = subprocess.Popen([sys.executable, "-c", code, self.name, str(n)], env=child_env())
        try:
            end = time.monotonic() + 20
            while True:
                try:
                    ch = shmkit.open(self.name)
                    break
                except shmkit.NotFound:
                    self.assertLess(time.monotonic(), end, "the publisher did not create the channel")
                    time.sleep(0.005)
            with ch, ch.subscriber() as sub:
                i = 0
                for m in sub:
                    self.assertEqual(m.tobytes(), b"%08d" % i * (1 + i % 16))
                    self.assertEqual(m.seq, i + 1)
                    i += 1
                self.assertEqual(i, n)
            self.assertEqual(p.wait(20), 0)
        finally:
            p.kill()
            p.wait()


if __name__ == "__main__":
    unittest.main()
