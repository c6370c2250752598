"""What the client scripts share: checks that stop the script with a clear
message, and waiting for a member's reads to catch up.

Reads (QLEN, SHOW, QSTAT) are served from a member's own applied state, so
after a write through one member another may answer from a few slots
behind; `eventually` polls until it has caught up.
"""

import sys
import time

# How long a member may take to apply what another member already applied.
CATCH_UP_SECONDS = 5.0


def fail(message):
    """Stops the script: exit status 1 and the message on stderr."""
    print(f"MISMATCH: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, message):
    """Fails with `message` unless `condition` holds."""
    if not condition:
        fail(message)


def equal(actual, expected, what):
    """Fails unless `actual == expected`, saying what was compared."""
    if actual != expected:
        fail(f"{what}: expected {expected!r}, got {actual!r}")


def eventually(read, expected, what, within=CATCH_UP_SECONDS):
    """Polls `read()` until it returns `expected`; fails with the last
    value after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        actual = read()
        if actual == expected:
            return actual
        if time.monotonic() > deadline:
            fail(f"{what}: expected {expected!r} within {within} s, still {actual!r}")
        time.sleep(0.02)


def addresses(argv):
    """The members' `host:port` client addresses from the command line."""
    if len(argv) != 4:
        fail(f"usage: {argv[0]} host:port host:port host:port (got {argv[1:]!r})")
    return argv[1:]


def split_address(address):
    """`host:port` as (host, port)."""
    host, port = address.rsplit(":", 1)
    return host, int(port)
