#!/usr/bin/env python3
"""UDP with segmentation offload at both ends, through a proxy: the traffic of QUIC stacks that
send GSO trains (quinn, Chrome, quic-go). A client sends trains of TRAIN datagrams of SEG bytes
(one sendmsg with UDP_SEGMENT each) to TARGET for SECS seconds; a sink on SINK_PORT reads with
UDP_GRO and counts datagrams (segments). Prints "sent_datagrams_per_s delivered_per_s loss_pct".

Usage: udp_gso.py TARGET_PORT SINK_PORT [SECS=3] [SEG=1200] [TRAIN=40] [RATE=0]
RATE: offered datagrams per second (0: as fast as the client can send).
The proxy on TARGET_PORT must forward to 127.0.0.1:SINK_PORT (127.0.0.1 only).
"""
import socket
import struct
import sys
import multiprocessing
import time

SOL_UDP, UDP_SEGMENT, UDP_GRO = 17, 103, 104


def sink(port, secs, out, ready):
    """Runs in its own process (a thread would share the client's interpreter lock)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(SOL_UDP, UDP_GRO, 1)
    s.bind(("127.0.0.1", port))
    s.settimeout(0.2)
    ready.set()
    n = 0
    end = time.monotonic() + secs + 0.5
    while time.monotonic() < end:
        try:
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(4))
        except socket.timeout:
            continue
        seg = len(data) or 1
        for level, kind, v in anc:
            if level == SOL_UDP and kind == UDP_GRO:
                seg = struct.unpack("i", v[:4])[0]
        n += max(1, -(-len(data) // seg))
    out.put(n)


def main():
    target, sink_port = int(sys.argv[1]), int(sys.argv[2])
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    seg = int(sys.argv[4]) if len(sys.argv) > 4 else 1200
    train = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    rate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    got, ready = multiprocessing.Queue(), multiprocessing.Event()
    t = multiprocessing.Process(target=sink, args=(sink_port, secs, got, ready))
    t.start()
    ready.wait()
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    payload = bytes(seg * train)
    anc = [(SOL_UDP, UDP_SEGMENT, struct.pack("H", seg))]
    sent = 0
    start = time.monotonic()
    end = start + secs
    while (now := time.monotonic()) < end:
        if rate and sent > (now - start) * rate:
            continue
        try:
            c.sendmsg([payload], anc, 0, ("127.0.0.1", target))
            sent += train
        except (BlockingIOError, ConnectionRefusedError):
            pass
    n = got.get()
    t.join()
    print(f"{sent / secs:.0f} {n / secs:.0f} {100 * (1 - n / max(sent, 1)):.1f}")


if __name__ == "__main__":
    main()
