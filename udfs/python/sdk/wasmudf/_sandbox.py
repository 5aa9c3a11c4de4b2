"""What the sandbox does with the WASI calls CPython would make.

A wasmudf component imports nothing: the build stubs every WASI function with a trap,
which would end the call with a bare `unreachable` and no message. Before the user's
module is imported, this module replaces the Python-level entry points that reach
them, so a function that prints gets its output discarded, and one that reads the
clock, opens a file or asks for entropy gets a clear error (SQLSTATE 38000) naming
the call. The
sandbox gives no clock, files, network or environment, so that a function declared
immutable is one.
"""

import builtins
import io
import os
import sys
import time


class _Discard(io.TextIOBase):
    """sys.stdout / sys.stderr: accepts and drops text (nothing leaves the sandbox)."""

    def writable(self):
        return True

    def write(self, s):
        return len(s)

    def flush(self):
        pass


class SandboxError(RuntimeError):
    """A call the sandbox does not provide (clock, entropy, processes)."""


def _denied(name, why):
    def call(*_args, **_kwargs):
        raise SandboxError(f"{name}() is not available in the wasmudf sandbox ({why})")

    call.__name__ = name.rsplit(".", 1)[-1]
    return call


def _unless_given(original, given, name, why):
    denied = _denied(name, why)

    def call(*args):
        return original(*args) if len(args) >= given else denied()

    call.__name__ = original.__name__
    return call


def install():
    sys.stdout = _Discard()
    sys.stderr = _Discard()
    sys.__stdout__ = sys.stdout
    sys.__stderr__ = sys.stderr
    no_clock = "there is no clock; pass the time as an argument"
    for name in (
        "time",
        "time_ns",
        "monotonic",
        "monotonic_ns",
        "perf_counter",
        "perf_counter_ns",
        "process_time",
        "process_time_ns",
        "thread_time",
        "thread_time_ns",
        "sleep",
    ):
        if hasattr(time, name):
            setattr(time, name, _denied(f"time.{name}", no_clock))
    # These read the clock only when not given a time.
    for name, given in (("localtime", 1), ("gmtime", 1), ("ctime", 1), ("asctime", 1), ("strftime", 2)):
        setattr(time, name, _unless_given(getattr(time, name), given, f"time.{name}", no_clock))
    no_files = _denied("open", "there are no files")
    builtins.open = no_files
    io.open = no_files
    os.urandom = _denied("os.urandom", "there is no entropy; use random with a seed")
    os.getrandom = _denied("os.getrandom", "there is no entropy; use random with a seed")
    for name in ("system", "popen", "fork", "execv", "kill"):
        if hasattr(os, name):
            setattr(os, name, _denied(f"os.{name}", "there are no processes"))
