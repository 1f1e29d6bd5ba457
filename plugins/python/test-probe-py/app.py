"""Test-only plug-in: reports what a Python component can reach inside the host's sandbox.

`analyze` answers intent `probe` whose slots describe the environment, files, clocks, randomness
and sockets as the guest sees them. The transcript `sleep` makes it sleep, `print` makes it
write to stdout and stderr, and `raise` raises an exception.
"""
import os
import random
import sys
import time

import wit_world
from wit_world.imports import types


def attempt(action):
    try:
        return "ok:" + str(action())
    except BaseException as e:  # a trap is not catchable; anything else is reported
        return "error:" + type(e).__name__


def open_file(path):
    with open(path) as f:
        return len(f.read())


def connect():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 9))
    return "connected"


# Calls answered by this instance (module state: componentize-py makes a new WitWorld per call).
CALLS = 0


class WitWorld(wit_world.WitWorld):
    def init(self, config):
        global CALLS
        CALLS = 0

    def analyze(self, input):
        global CALLS
        CALLS += 1
        command = input.transcript.strip().lower()
        if command == "sleep":
            time.sleep(0.5)
        elif command == "print":
            print("probe says hello on stdout")
            print("probe says hello on stderr", file=sys.stderr)
        elif command == "raise":
            raise RuntimeError("probe raised on purpose")
        elif command == "socket":
            return types.Intent(name="probe", confidence=1.0, slots=[("socket", attempt(connect))])
        slots = [
            ("calls", str(CALLS)),
            ("env", str(len(os.environ))),
            ("argv", str(len(sys.argv))),
            ("listdir", attempt(lambda: len(os.listdir("/")))),
            ("passwd", attempt(lambda: open_file("/etc/passwd"))),
            ("time", str(int(time.time()))),
            ("random", str(random.random())),
            ("urandom", os.urandom(4).hex()),
        ]
        return types.Intent(name="probe", confidence=1.0, slots=slots)
