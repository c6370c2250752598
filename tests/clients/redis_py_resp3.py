"""redis-py with `protocol=3` (RESP3, `HELLO 3`) against Disque's commands
through `execute_command`, on a three-member cluster: maps come back as
dicts, and every null is RESP3's `_`.

Usage: python redis_py_resp3.py host:port host:port host:port

redis-py's RESP3 parser reads `$-1` (RESP2's null) as a bulk string of
length -1 and waits for bytes that never come, so a null sent the RESP2
way hangs the client; the socket timeout turns that into a failure. The
last check reads the raw bytes to name the encoding. Exits non-zero with a
MISMATCH line on the first difference.
"""

import socket
import sys

import redis

from checks import addresses, check, equal, eventually, fail, split_address

QUEUE = "resp3-jobs"
# Binary-safe: NUL, a byte that is not UTF-8, and CRLF.
BODY = b"\x00\xffbody\r\n"
# Long enough for any reply here; short enough that a hang fails quickly.
SOCKET_TIMEOUT_SECONDS = 5


def connect(address):
    """A RESP3 redis-py client for one member."""
    host, port = split_address(address)
    return redis.Redis(host=host, port=port, protocol=3,
                       socket_timeout=SOCKET_TIMEOUT_SECONDS)


def raw_replies(address, commands, last_reply):
    """Sends inline commands on a fresh connection and reads until the
    bytes end with `last_reply`: what the member wrote, byte for byte."""
    host, port = split_address(address)
    with socket.create_connection((host, port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:
        sock.sendall(b"".join(command + b"\r\n" for command in commands))
        received = b""
        while not received.endswith(last_reply):
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                fail(f"no complete reply to {commands!r}; received {received!r}")
            if not chunk:
                fail(f"connection closed after {received!r}")
            received += chunk
        return received


def main():
    members = addresses(sys.argv)
    one, two, three = (connect(address) for address in members)

    # The handshake: redis-py sent HELLO 3 on connecting; the member agrees.
    for number, client in enumerate((one, two, three), start=1):
        equal(int(client.client_info()["resp"]), 3, f"CLIENT INFO resp on member {number}")
    handshake = one.execute_command("HELLO", 3)
    equal(handshake.get(b"proto"), 3, "HELLO 3's proto")
    equal(handshake.get(b"server"), b"synod", "HELLO 3's server")

    # ADDJOB: a status reply, the id.
    job_id = one.execute_command("ADDJOB", QUEUE, BODY, 0, "RETRY", 60)
    check(isinstance(job_id, bytes) and job_id.startswith(b"D-") and len(job_id) == 40,
          f"ADDJOB's reply is not a Disque job id: {job_id!r}")

    # GETJOB through another member: [[queue, id, body, counters...]].
    taken = two.execute_command("GETJOB", "TIMEOUT", 2000, "WITHCOUNTERS", "FROM", QUEUE)
    equal(taken, [[QUEUE.encode(), job_id, BODY, b"nacks", 0, b"additional-deliveries", 0]],
          "GETJOB WITHCOUNTERS")

    # SHOW: a map, so a dict, with RESP3 nulls inside it.
    shown = two.execute_command("SHOW", job_id)
    check(isinstance(shown, dict), f"SHOW over RESP3 is not a dict: {shown!r}")
    expected = {
        b"id": job_id, b"queue": QUEUE.encode(), b"state": b"active", b"repl": 3,
        b"retry": 60, b"nacks": 0, b"additional-deliveries": 0, b"body": BODY,
        b"deliveries": 1, b"delivery-limit": None,
    }
    for key, value in expected.items():
        check(key in shown, f"SHOW lacks {key!r}: {shown!r}")
        equal(shown[key], value, f"SHOW {key!r}")
    check(isinstance(shown[b"next-requeue-within"], int) and
          0 < shown[b"next-requeue-within"] <= 60_000,
          f"SHOW next-requeue-within is the lease left: {shown[b'next-requeue-within']!r}")

    # NACK through the third member: an integer count; then QSTAT, a map.
    equal(three.execute_command("NACK", job_id), 1, "NACK's count")
    stats = three.execute_command("QSTAT", QUEUE)
    check(isinstance(stats, dict), f"QSTAT over RESP3 is not a dict: {stats!r}")
    for key, value in {b"name": QUEUE.encode(), b"len": 1, b"jobs-in": 2, b"jobs-out": 1,
                       b"pause": b"none", b"delivery-limit": None}.items():
        equal(stats.get(key, "<missing>"), value, f"QSTAT {key!r}")

    # Errors arrive as redis-py exceptions carrying Disque's whole line.
    try:
        one.execute_command("ACKJOB", "not-an-id")
        fail("ACKJOB of a malformed id did not fail")
    except redis.ResponseError as error:
        equal(str(error), "BADID Invalid Job ID format.", "ACKJOB's error")

    # ACKJOB, then the nulls: a job nobody has, a queue that does not
    # exist, a GETJOB that finds nothing. Each reply must leave the
    # connection in step, which PING shows.
    equal(one.execute_command("ACKJOB", job_id), 1, "ACKJOB's count")
    equal(one.execute_command("SHOW", job_id), None, "SHOW of an acked job")
    equal(one.ping(), True, "PING after a null SHOW")
    eventually(lambda: two.execute_command("SHOW", job_id), None,
               "SHOW of the acked job on member 2")
    equal(two.execute_command("QSTAT", "no-such-queue"), None, "QSTAT of no queue")
    equal(two.execute_command("GETJOB", "NOHANG", "FROM", QUEUE), None,
          "GETJOB NOHANG on an empty queue")
    equal(two.ping(), True, "PING after null QSTAT and GETJOB")

    # The same nulls byte for byte: `_`, never `$-1` or `*-1`.
    eventually(lambda: three.execute_command("SHOW", job_id), None,
               "SHOW of the acked job on member 3")
    replies = raw_replies(members[2], [
        b"HELLO 3",
        b"SHOW " + job_id,
        b"QSTAT no-such-queue",
        b"GETJOB NOHANG FROM " + QUEUE.encode(),
        b"PING",
    ], b"+PONG\r\n")
    check(replies.startswith(b"%"), f"HELLO 3 did not answer a map: {replies!r}")
    check(replies.endswith(b"_\r\n_\r\n_\r\n+PONG\r\n"),
          f"RESP3 nulls are not `_`: {replies!r}")

    print(f"ok: redis-py {redis.__version__} over RESP3")


if __name__ == "__main__":
    main()
