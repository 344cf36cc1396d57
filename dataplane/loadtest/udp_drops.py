#!/usr/bin/env python3
"""Where UDP datagrams are lost during a flood: samples /proc/net/udp{,6} every 50 ms for SECS
seconds and prints "PROXY_DROPS SINK_DROPS": receive-buffer drops, over the run, of the sockets
bound to PROXY_PORT (the proxy's listener; 0 for none) and to SINK_PORT (the iperf3 server,
whose per-test socket appears and disappears within the run). A socket seen at the first
sample counts from there; a new one counts from zero.

Usage: udp_drops.py PROXY_PORT SINK_PORT SECS
"""
import sys
import time


def sample():
    out = {}
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            port = int(f[1].rsplit(":", 1)[1], 16)
            out[(path, f[9])] = (port, int(f[-1]))  # inode -> (local port, drops)
    return out


def main():
    proxy, sink, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    first = sample()
    last = dict(first)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(0.05)
        for k, v in sample().items():
            last[k] = v
    drops = {proxy: 0, sink: 0}
    for k, (port, d) in last.items():
        if port in drops:
            drops[port] += d - first.get(k, (port, 0))[1]
    print(drops[proxy] if proxy else 0, drops[sink])


main()
