"""A Python subscriber of the frames a Go program publishes
(examples/python/frames): each frame arrives as a numpy array over shared
memory, without a copy.

    go run ./examples/python/frames -name frames -count 1000 &
    SHMKIT_LIB=$PWD/libshmkit.so python3 examples/python/frames_subscriber.py frames
"""

import sys
import time

import numpy as np

import shmkit


def open_when_there(name, wait=60.0):
    """The publisher creates the channel: retry until it exists."""
    end = time.monotonic() + wait
    while True:
        try:
            return shmkit.open(name)
        except shmkit.NotFound:
            if time.monotonic() > end:
                raise
            time.sleep(0.005)


def main(name):
    n = 0
    with open_when_there(name) as ch, ch.subscriber() as sub:
        start = None
        for msg in sub:  # until the publisher is gone
            if start is None:
                start = time.perf_counter()
            frame = np.frombuffer(msg.data, dtype=np.uint64)  # zero copy: shared memory
            if frame[0] != n or frame[-1] != n:
                print("frame %d: numbered %d/%d" % (n, frame[0], frame[-1]), file=sys.stderr)
                return 1
            del frame  # drop the view before the message goes back (the iterator releases it)
            n += 1
        el = time.perf_counter() - (start or time.perf_counter())
    rate = (n - 1) / el if n > 1 and el > 0 else 0.0
    print("received %d frames, %.0f frames/s" % (n, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "frames"))
