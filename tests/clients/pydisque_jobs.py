"""pydisque, the Disque client on PyPI, against a three-member cluster:
jobs added through one member are taken through another, nacked, taken
again and acked, with QLEN, SHOW and QSTAT checked on the way.

Usage: python pydisque_jobs.py host:port host:port host:port

pydisque speaks through redis-py with redis-py's default protocol: RESP2
up to redis-py 7, RESP3 (`HELLO 3`) from redis-py 8 on, so the two venvs
cover both. Exits non-zero with a MISMATCH line on the first difference.
"""

import sys

import redis
from pydisque.client import Client

from checks import addresses, check, equal, eventually

QUEUE = "pydisque-jobs"
FIRST_BODY = "first job \u2713"
SECOND_BODY = "second job"

# SHOW's keys in Disque's order; Synod adds its own after them.
DISQUE_SHOW_KEYS = [
    "id", "queue", "state", "repl", "ttl", "ctime", "delay", "retry", "nacks",
    "additional-deliveries", "nodes-delivered", "nodes-confirmed",
    "next-requeue-within", "next-awake-within", "body",
]
DISQUE_QSTAT_KEYS = [
    "name", "len", "age", "idle", "blocked", "import-from", "import-rate",
    "jobs-in", "jobs-out", "pause",
]


def connect(address):
    """A pydisque client bound to one member (given several, pydisque
    settles on the last it reaches, so each client gets exactly one)."""
    client = Client([address])
    client.connect()
    return client


def protocol_of(client):
    """The RESP version the member says this connection speaks."""
    return int(client.get_connection().client_info()["resp"])


def as_fields(reply, protocol, what):
    """A SHOW or QSTAT reply as a dict with text keys, in reply order.

    RESP2 carries Disque's flat list, which pydisque's `return_dict` pairs;
    RESP3 carries a map, which redis-py already makes a dict.
    """
    check(isinstance(reply, dict), f"{what} over RESP{protocol} is not a dict: {reply!r}")
    return {key.decode(): value for key, value in reply.items()}


def show(client, job_id, protocol):
    """SHOW through pydisque: the fields, or None for no such job."""
    if protocol == 2:
        flat = client.show(job_id)
        if flat is None:
            return None
        check(isinstance(flat, list) and len(flat) % 2 == 0,
              f"SHOW over RESP2 is not a flat key-value list: {flat!r}")
        reply = client.show(job_id, return_dict=True)
    else:
        # Not return_dict: it would pair up the keys of the dict redis-py
        # already made.
        reply = client.show(job_id)
        if reply is None:
            return None
    return as_fields(reply, protocol, "SHOW")


def qstat(client, queue, protocol):
    """QSTAT through pydisque, as fields."""
    reply = client.qstat(queue, return_dict=protocol == 2)
    return as_fields(reply, protocol, "QSTAT")


def check_show(fields, expected, what):
    """Disque's keys in order, then each expected field."""
    equal(list(fields)[: len(DISQUE_SHOW_KEYS)], DISQUE_SHOW_KEYS, f"{what}: SHOW keys")
    for key, value in expected.items():
        equal(fields[key], value, f"{what}: SHOW {key}")


def main():
    members = addresses(sys.argv)
    one, two, three = (connect(address) for address in members)
    redis_major = int(redis.__version__.split(".")[0])
    protocol = protocol_of(one)
    equal(protocol, 3 if redis_major >= 8 else 2,
          f"the protocol redis-py {redis.__version__} chose by default")

    # HELLO: pydisque's handshake took the member's id; every member listed.
    hello = one.hello()
    equal(hello[0], 1, "HELLO format version")
    equal(one.connected_node.node_id, hello[1], "pydisque's node id is HELLO's")
    equal(sorted(int(node[2]) for node in hello[2:]),
          sorted(int(address.rsplit(":", 1)[1]) for address in members),
          "HELLO lists every member's client port")

    # Two jobs through member 1: QLEN goes from 0 to 2 everywhere.
    equal(one.qlen(QUEUE), 0, "QLEN before any ADDJOB")
    first = one.add_job(QUEUE, FIRST_BODY, timeout=5000, retry=30)
    second = one.add_job(QUEUE, SECOND_BODY, timeout=5000, retry=30)
    for job_id in (first, second):
        check(isinstance(job_id, bytes) and job_id.startswith(b"D-") and len(job_id) == 40,
              f"ADDJOB's reply is not a Disque job id: {job_id!r}")
    check(first != second, f"two ADDJOBs gave the same id {first!r}")
    equal(one.qlen(QUEUE), 2, "QLEN on member 1 after its two ADDJOBs")
    eventually(lambda: two.qlen(QUEUE), 2, "QLEN on member 2 after two ADDJOBs on member 1")

    # SHOW on member 2 once it has applied the ADDJOB.
    eventually(lambda: show(two, first, protocol) is not None, True,
               "member 2 knows the first job")
    shown = show(two, first, protocol)
    check_show(shown, {
        "id": first, "queue": QUEUE.encode(), "state": b"queued", "repl": 3,
        "retry": 30, "nacks": 0, "additional-deliveries": 0,
        "body": FIRST_BODY.encode(),
    }, "a new job")
    equal(len(shown["nodes-delivered"]), 3, "SHOW nodes-delivered: every member")
    check(0 < shown["ttl"] <= 24 * 3600, f"SHOW ttl is Disque's default day: {shown['ttl']!r}")

    # GETJOB through member 2 takes the oldest job: Disque's (queue, id, body).
    # pydisque names the tuple (job_id, queue_name, job), but unpacks what
    # the server sends in order, so the queue comes first.
    taken = two.get_job([QUEUE], timeout=2000)
    equal(taken, [(QUEUE.encode(), first, FIRST_BODY.encode())], "GETJOB on member 2")
    equal(two.qlen(QUEUE), 1, "QLEN on member 2 after its GETJOB")
    check_show(show(two, first, protocol), {"state": b"active", "nacks": 0},
               "a job taken by GETJOB")

    # NACK through member 3 queues it again at once and counts a nack.
    three.nack_job(first)
    check_show(show(three, first, protocol), {"state": b"queued", "nacks": 1},
               "a nacked job on the member that nacked it")
    eventually(lambda: two.qlen(QUEUE), 2, "QLEN on member 2 after the NACK on member 3")
    eventually(lambda: show(two, first, protocol)["nacks"], 1,
               "SHOW nacks on member 2 after the NACK on member 3")

    # Taken again through member 3, with counters: the nacked job returns
    # to its place (created first, delivered first) with one nack.
    taken = three.get_job([QUEUE], timeout=2000, count=2, withcounters=True)
    equal(taken, [
        (QUEUE.encode(), first, FIRST_BODY.encode(), 1, 0),
        (QUEUE.encode(), second, SECOND_BODY.encode(), 0, 0),
    ], "GETJOB COUNT 2 WITHCOUNTERS on member 3")
    equal(three.qlen(QUEUE), 0, "QLEN on member 3 after taking both jobs")

    # ACKJOB through member 1: both jobs gone from every member.
    one.ack_job(first, second)
    for number, client in enumerate((one, two, three), start=1):
        for job_id in (first, second):
            eventually(lambda: show(client, job_id, protocol), None,
                       f"SHOW {job_id!r} on member {number} after ACKJOB")
        equal(client.qlen(QUEUE), 0, f"QLEN on member {number} after ACKJOB")

    # QSTAT on member 1: three jobs in (two adds, one nack), three out.
    stats = qstat(one, QUEUE, protocol)
    equal(list(stats)[: len(DISQUE_QSTAT_KEYS)], DISQUE_QSTAT_KEYS, "QSTAT keys")
    for key, value in {"name": QUEUE.encode(), "len": 0, "jobs-in": 3, "jobs-out": 3,
                       "pause": b"none"}.items():
        equal(stats[key], value, f"QSTAT {key}")

    # Nothing left: GETJOB NOHANG finds nothing (pydisque: an empty list).
    equal(two.get_job([QUEUE], nohang=True), [], "GETJOB NOHANG on an empty queue")

    print(f"ok: pydisque over redis-py {redis.__version__}, RESP{protocol}")


if __name__ == "__main__":
    main()
