#!/usr/bin/env python3
"""Memory before authentication (issue 13 item 4), from outside the code.

Opens CONNECTIONS raw TCP connections to a ZeroMQ CURVE server; each sends a ZMTP 3.0
greeting and then the start of a handshake command frame that claims CLAIM bytes, and
streams zeros toward it (up to SEND bytes) until the server hangs up. Meanwhile it samples
the server's resident memory (VmRSS of PID) and prints one JSON line:
  {"baseline_mib":..., "peak_mib":..., "growth_mib":..., "sent_mib":[...], "seconds":...}

With --silent, CONNECTIONS raw TCP connections are opened and send nothing at all; they are
held for SETTLE seconds, then READY_FILE (if given) is written, then they are held HOLD
seconds more. All along the server's RSS and open file descriptors (/proc/PID/fd) are
sampled, and each connection is watched for the server closing it (EOF or a reset). One
JSON line; settled_* are the peaks before READY_FILE (the connections alone, before whatever
the caller then starts), peak_* over the whole run:
  {"connections":..., "open_s":..., "closed_by_server":..., "open_at_end":...,
   "baseline_mib":..., "settled_mib":..., "peak_mib":..., "growth_mib":...,
   "baseline_fds":..., "settled_fds":..., "peak_fds":..., "fds_at_end":..., "seconds":...}

Usage: pre_auth_flood.py HOST PORT PID [--connections 4] [--claim BYTES] [--send BYTES]
       pre_auth_flood.py HOST PORT PID --silent [--connections N] [--settle S] [--hold S]
                         [--ready-file F]
Standard library only.
"""
import argparse
import json
import os
import resource
import select
import socket
import struct
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def raise_file_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < need:
            raise SystemExit(f"pre_auth_flood: {need} open files needed, hard limit is {hard}")


def drained_closed(sock):
    """Reads what the server sent (its greeting); True once it closed the connection."""
    try:
        while True:
            if not sock.recv(4096):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True  # a reset


class SilentWatch:
    """Open connections and the server's peaks, sampled while waiting on the connections."""

    def __init__(self, pid, socks):
        self.pid = pid
        self.open = {s.fileno(): s for s in socks}
        self.poller = select.poll()
        for fd in self.open:
            self.poller.register(fd, select.POLLIN)
        self.peak, self.peak_fds = rss_mib(pid), fd_count(pid)

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.peak = max(self.peak, rss_mib(self.pid))
            self.peak_fds = max(self.peak_fds, fd_count(self.pid))
            for fd, _ in self.poller.poll(50):
                if drained_closed(self.open[fd]):
                    self.poller.unregister(fd)
                    del self.open[fd]


def silent(a):
    raise_file_limit(a.connections + 64)
    baseline, baseline_fds = rss_mib(a.pid), fd_count(a.pid)
    start = time.monotonic()
    socks = []
    for _ in range(a.connections):
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.setblocking(False)
        socks.append(s)
    open_s = time.monotonic() - start
    watch = SilentWatch(a.pid, socks)
    watch.run(a.settle)
    settled, settled_fds = watch.peak, watch.peak_fds
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("open\n")
    watch.run(a.hold)
    fds_at_end = fd_count(a.pid)
    for s in socks:
        s.close()
    print(json.dumps({"connections": a.connections, "open_s": round(open_s, 2),
                      "closed_by_server": a.connections - len(watch.open),
                      "open_at_end": len(watch.open), "baseline_mib": round(baseline, 1),
                      "settled_mib": round(settled, 1), "peak_mib": round(watch.peak, 1),
                      "growth_mib": round(watch.peak - baseline, 1),
                      "baseline_fds": baseline_fds, "settled_fds": settled_fds,
                      "peak_fds": watch.peak_fds, "fds_at_end": fds_at_end,
                      "seconds": round(time.monotonic() - start, 2)}))


def greeting():
    # ZMTP 3.0: signature (0xFF, 8 bytes padding, 0x7F), version 3.0, mechanism (20 bytes),
    # as-server 0, filler (31 bytes).
    return b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"CURVE".ljust(20, b"\x00") + \
        b"\x00" + b"\x00" * 31


def attack(host, port, claim, limit, sent, index):
    chunk = b"\x00" * (1 << 20)
    try:
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(greeting())
            s.sendall(bytes([0x06]) + struct.pack(">Q", claim))  # command | long size
            while sent[index] < limit:
                s.sendall(chunk)
                sent[index] += len(chunk)
    except OSError:
        pass  # the server hung up: what it should do


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("pid", type=int)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--claim", type=int, default=1 << 30)
    p.add_argument("--send", type=int, default=256 << 20)
    p.add_argument("--silent", action="store_true", help="connections that send nothing")
    p.add_argument("--settle", type=float, default=1.0,
                   help="--silent: seconds to hold them before --ready-file")
    p.add_argument("--hold", type=float, default=8.0, help="--silent: seconds after that")
    p.add_argument("--ready-file", help="--silent: written once all connections are open")
    a = p.parse_args()
    if a.silent:
        silent(a)
        return
    baseline = rss_mib(a.pid)
    sent = [0] * a.connections
    threads = [threading.Thread(target=attack, args=(a.host, a.port, a.claim, a.send, sent, i))
               for i in range(a.connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    peak = baseline
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mib(a.pid))
        time.sleep(0.05)
    # Whatever the server still holds right after the connections end.
    for _ in range(10):
        peak = max(peak, rss_mib(a.pid))
        time.sleep(0.05)
    print(json.dumps({"baseline_mib": round(baseline, 1), "peak_mib": round(peak, 1),
                      "growth_mib": round(peak - baseline, 1),
                      "sent_mib": [round(s / (1 << 20)) for s in sent],
                      "seconds": round(time.monotonic() - start, 2)}))


if __name__ == "__main__":
    main()
