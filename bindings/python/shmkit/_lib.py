"""ctypes declarations of libshmkit.so (bindings/c/shmkit.h)."""

import ctypes
import os

from ctypes import POINTER, c_char_p, c_int, c_int64, c_size_t, c_uint32, c_uint64, c_void_p


class Config(ctypes.Structure):
    _fields_ = [
        ("pattern", c_uint32),
        ("policy", c_uint32),
        ("max_message", c_uint64),
        ("ring_depth", c_uint32),
        ("max_publishers", c_uint32),
        ("max_subscribers", c_uint32),
        ("max_processes", c_uint32),
        ("chunks_per_class", c_uint32),
        ("keep", c_uint32),
        ("liveness_interval_ns", c_int64),
        ("max_loans", c_uint32),
        ("mode", c_uint32),
        ("reserved", c_uint64 * 3),
    ]


class Msg(ctypes.Structure):
    _fields_ = [
        ("data", c_void_p),
        ("len", c_size_t),
        ("seq", c_uint64),
        ("missed", c_uint64),
        ("publisher", c_uint64),
        ("token", c_uint64),
    ]


class LoanT(ctypes.Structure):
    _fields_ = [("data", c_void_p), ("len", c_size_t), ("token", c_uint64)]


ABI_VERSION = 1

# Status codes (shmkit_status).
OK = 0
ERR = -1
INVALID_HANDLE = -2
INVALID_ARGUMENT = -3
CONFIG = -4
NOT_FOUND = -5
EXISTS = -6
MISMATCH = -7
CORRUPT = -8
CLOSED = -9
TIMEOUT = -10
WOULD_BLOCK = -11
PEER_GONE = -12
TOO_LARGE = -13
FULL = -14
NO_MEMORY = -15
TOO_MANY_HELD = -16
TYPE_MISMATCH = -17
SAMPLE_STATE = -18
UNSUPPORTED = -19
BUFFER = -20
IN_USE = -21
TOO_MANY_LOANS = -22
UNTRUSTED = -23
FAULT = -24


def _path():
    p = os.environ.get("SHMKIT_LIB")
    if p:
        return p
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libshmkit.so")


def load():
    path = _path()
    try:
        lib = ctypes.CDLL(path)  # CDLL: the GIL is released during every call
    except OSError as e:
        raise ImportError(
            "shmkit: cannot load %s (%s); build it with "
            "`go build -buildmode=c-shared -o libshmkit.so ./bindings/c` and set SHMKIT_LIB "
            "or put it beside the package" % (path, e)
        ) from e
    h = c_uint64
    decl = {
        "shmkit_abi_version": ([], c_int),
        "shmkit_sizeof": ([c_int], c_size_t),
        "shmkit_last_error": ([], c_char_p),
        "shmkit_create": ([c_char_p, POINTER(Config), POINTER(h)], c_int),
        "shmkit_open": ([c_char_p, POINTER(Config), POINTER(h)], c_int),
        "shmkit_open_or_create": ([c_char_p, POINTER(Config), POINTER(h)], c_int),
        "shmkit_channel_close": ([h], c_int),
        "shmkit_remove": ([c_char_p, c_int], c_int),
        "shmkit_channel_config": ([h, POINTER(Config)], c_int),
        "shmkit_channel_stats_json": ([h, c_void_p, c_size_t, POINTER(c_size_t)], c_int),
        "shmkit_publisher_open": ([h, POINTER(h)], c_int),
        "shmkit_publisher_close": ([h], c_int),
        "shmkit_publisher_id": ([h, POINTER(c_uint64)], c_int),
        "shmkit_loan": ([h, c_size_t, c_int64, POINTER(LoanT)], c_int),
        "shmkit_publish": ([h, c_uint64, c_size_t, c_int64], c_int),
        "shmkit_discard": ([h, c_uint64], c_int),
        "shmkit_send": ([h, c_void_p, c_size_t, c_int64], c_int),
        "shmkit_subscriber_open": ([h, POINTER(h)], c_int),
        "shmkit_subscriber_close": ([h], c_int),
        "shmkit_receive": ([h, c_int64, POINTER(Msg)], c_int),
        "shmkit_try_receive": ([h, POINTER(Msg)], c_int),
        "shmkit_release": ([h, c_uint64], c_int),
        "shmkit_receive_next": ([h, c_uint64, c_int64, POINTER(Msg)], c_int),
        "shmkit_receive_into": ([h, c_void_p, c_size_t, POINTER(c_size_t), c_int64], c_int),
    }
    for name, (args, res) in decl.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = res
    v = lib.shmkit_abi_version()
    if v != ABI_VERSION:
        raise ImportError("shmkit: %s has ABI version %d, this package needs %d" % (path, v, ABI_VERSION))
    for i, st in enumerate((Config, Msg, LoanT)):
        if lib.shmkit_sizeof(i) != ctypes.sizeof(st):
            raise ImportError("shmkit: %s: %s is %d bytes in the library, %d here" % (
                path, st.__name__, lib.shmkit_sizeof(i), ctypes.sizeof(st)))
    return lib
