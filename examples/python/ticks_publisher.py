"""A Python publisher of market ticks for a Go subscriber
(examples/python/ticks): 64-byte records written in place in shared memory.

    SHMKIT_LIB=$PWD/libshmkit.so python3 examples/python/ticks_publisher.py ticks 100000 &
    go run ./examples/python/ticks -name ticks

Each tick is struct TICK: number (uint64), bid and ask (float64), venue
(4 bytes), padding to 64 bytes.
"""

import struct
import sys
import time

import shmkit

TICK = struct.Struct("<Qdd4s36x")  # 64 bytes


def main(name, count):
    with shmkit.create(name, max_message=TICK.size, ring_depth=1024) as ch:
        # A subscriber sees what is published after it joined: wait for one.
        end = time.monotonic() + 60
        while not any(p["Role"] == "subscriber" and p["State"] == "active"
                      for p in ch.stats()["Participants"]):
            if time.monotonic() > end:
                print("no subscriber joined", file=sys.stderr)
                return 1
            time.sleep(0.005)
        with ch.publisher() as pub:
            start = time.perf_counter()
            for i in range(count):
                with pub.loan(TICK.size) as buf:  # published at the end of the block
                    TICK.pack_into(buf, 0, i, 100.0 + i % 100 / 100, 100.5 + i % 100 / 100, b"XNYS")
            el = time.perf_counter() - start
        print("published %d ticks, %.0f ticks/s" % (count, count / el))
        # Stay until the subscriber has left: the last one to leave removes
        # the channel.
        while any(p["Role"] == "subscriber" for p in ch.stats()["Participants"]):
            time.sleep(0.005)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "ticks",
                  int(sys.argv[2]) if len(sys.argv) > 2 else 100000))
