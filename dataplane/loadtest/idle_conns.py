#!/usr/bin/env python3
"""Open N idle TCP connections to 127.0.0.1:PORT, hold them for HOLD seconds, then close.

Prints "ready <n>" once all are open (so the caller can sample the proxy's memory).
Usage: idle_conns.py PORT N HOLD
"""
import socket, sys, time

port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    socks.append(s)
print(f"ready {len(socks)}", flush=True)
time.sleep(hold)
for s in socks:
    s.close()
