#!/usr/bin/env python3
"""Failover as a client sees it, against `synod dev` (ports 7711-7713).

Usage: bench/failover.py 1=PID1,2=PID2,3=PID3   (the pids synod dev prints)

Writes go to a follower in a loop (ADDJOB with a 200 ms timeout, so a write
stuck on a dead leader fails and is retried); after 100 writes the leader is
killed with SIGKILL; prints the time from the kill to the first successful
write after it.
"""
import socket, time, subprocess, sys, os, signal
def conn(port):
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
def call(s, *args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(65536)
        if not chunk: raise IOError("closed")
        data += chunk
    return data
def info(port):
    s = conn(port); r = call(s, b"INFO", b"replication").decode(); s.close()
    return dict(l.split(":", 1) for l in r.split("\r\n") if ":" in l)
pids = {int(k): int(v) for k, v in (x.split("=") for x in sys.argv[1].split(","))}
ports = {1: 7711, 2: 7712, 3: 7713}
leader = next(i for i in ports if info(ports[i]).get("role") == "leader")
follower = next(i for i in ports if i != leader)
s = conn(ports[follower])
for i in range(200): assert call(s, b"ADDJOB", b"q", b"warm", b"0").startswith(b"+D-")
killed_at = None; first_ok_after = None; i = 0
while first_ok_after is None:
    if i == 100:
        os.kill(pids[leader], signal.SIGKILL); killed_at = time.perf_counter()
    try:
        r = call(s, b"ADDJOB", b"q", b"x%d" % i, b"200")
        ok = r.startswith(b"+D-")
    except Exception:
        ok = False; s = conn(ports[follower])
    if ok and killed_at is not None: first_ok_after = time.perf_counter()
    i += 1
print("leader %d killed; follower %d wrote again after %.0f ms" % (leader, follower, (first_ok_after - killed_at) * 1000))
