#!/usr/bin/env python3
"""A user-space link emulator between two network namespaces (for `first-answer`).

The kernel here has no netem, so the path is built from two TUN devices: one created inside
namespace A, one inside namespace B (a TUN device belongs to the namespace /dev/net/tun was
opened in; this process enters each with setns(2) through ctypes, as os.setns is Python 3.12+).
Every IP packet read from one TUN is dropped with probability `loss` (per direction, seeded
RNGs) or written to the other after `delay` (a FIFO per direction: constant delay, no
reordering). Single-threaded, epoll; a few thousand packets/s is plenty for its use.

Control on stdin, one command per line, answered on stdout:
  loss P [SEED]   set the loss probability (0..1) of both directions, reseed, zero the counters
  stats           one JSON line: packets forwarded and dropped per direction
  quit            (or end of input) exit; the TUN devices disappear with this process
It prints "ready" once both TUN devices exist. The caller configures addresses and links.
"""

import argparse
import collections
import ctypes
import fcntl
import json
import os
import random
import select
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def open_tun(ns, dev):
    """Opens a new TUN device `dev` inside network namespace `ns` (a name under /run/netns)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        setns(target)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
        return fd
    finally:
        setns(home)
        os.close(target)
        os.close(home)


class Direction:
    def __init__(self, name, src, dst):
        self.name, self.src, self.dst = name, src, dst
        self.queue = collections.deque()
        self.rng = random.Random(0)
        self.loss = 0.0
        self.forwarded = self.dropped = self.overflow = 0

    def reset(self, loss, seed):
        self.loss = loss
        self.rng = random.Random(seed)
        self.forwarded = self.dropped = self.overflow = 0

    def read(self, now, delay):
        while True:
            try:
                pkt = os.read(self.src, 65536)
            except BlockingIOError:
                return
            if self.loss > 0 and self.rng.random() < self.loss:
                self.dropped += 1
            else:
                self.queue.append((now + delay, pkt))

    def flush(self, now):
        q = self.queue
        while q and q[0][0] <= now:
            _, pkt = q.popleft()
            try:
                os.write(self.dst, pkt)
                self.forwarded += 1
            except OSError:  # full queue, or the link is not up yet
                self.overflow += 1

    def stats(self):
        return {"forwarded": self.forwarded, "dropped": self.dropped, "overflow": self.overflow}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ns-a", required=True)
    p.add_argument("--dev-a", required=True)
    p.add_argument("--ns-b", required=True)
    p.add_argument("--dev-b", required=True)
    p.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay, each direction")
    p.add_argument("--loss", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    a = open_tun(args.ns_a, args.dev_a)
    b = open_tun(args.ns_b, args.dev_b)
    delay = args.delay_ms / 1000.0
    ab = Direction("a->b", a, b)
    ba = Direction("b->a", b, a)

    def reset(loss, seed):
        ab.reset(loss, seed * 2 + 1)
        ba.reset(loss, seed * 2 + 2)

    reset(args.loss, args.seed)
    ep = select.epoll()
    ep.register(a, select.EPOLLIN)
    ep.register(b, select.EPOLLIN)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    ep.register(stdin, select.EPOLLIN)
    pending = b""
    print("ready", flush=True)
    while True:
        now = time.monotonic()
        due = [q[0][0] for q in (ab.queue, ba.queue) if q]
        timeout = max(0.0, min(due) - now) if due else 1.0
        events = ep.poll(timeout)
        now = time.monotonic()
        for fd, _ in events:
            if fd == a:
                ab.read(now, delay)
            elif fd == b:
                ba.read(now, delay)
            elif fd == stdin:
                try:
                    chunk = os.read(stdin, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    words = line.decode().split()
                    if not words:
                        continue
                    if words[0] == "quit":
                        return
                    if words[0] == "loss":
                        loss = float(words[1])
                        seed = int(words[2]) if len(words) > 2 else args.seed
                        reset(loss, seed)
                        print("ok loss=%g seed=%d" % (loss, seed), flush=True)
                    elif words[0] == "stats":
                        print(json.dumps({"a_to_b": ab.stats(), "b_to_a": ba.stats()}), flush=True)
                    else:
                        print("error unknown command " + words[0], flush=True)
        ab.flush(now)
        ba.flush(now)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
