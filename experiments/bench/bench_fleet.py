#!/usr/bin/python3
"""bench_fleet: how many real clients sfn welcomes, how fast, at what memory.

Two measurements in one run, on the same keys and the same machine:
  baseline  bench_fleet_zmq serve + S `bench_fleet_zmq clients` processes: bare libzmq with
            CURVE and a ZAP allowlist, one thread polling all of a process's sockets, each
            client sending one 64-byte message and awaiting its echo (the real limit);
  sfn       sfn-server (deploy/k8s/base/sfn-server.toml on synthetic data, as
            tests/integration/fleet_scale.sh runs it) + S `sfn-sim --connect` processes, until the server
            has seen all N clients (/status clients.connected), then R rounds.

Welcome time is wall time from launching the S client processes: for the baseline until all
exited 0 (each also reports its own first-connect-to-last-echo time), for sfn until
/status says all N are connected. Peak memory is VmHWM from /proc/PID/status, sampled while
a process runs (it is gone once the process has exited). rusage's ru_maxrss is not used: a
child forked from this interpreter inherits its RSS high-water mark across exec.

Output: one JSON object on stdout (and in --json OUT). Exit 1 with a message naming the
step on any failure (a timeout, a process exiting non-zero); every child is killed on exit.

Usage: python3 experiments/bench/bench_fleet.py --build build --clients 300 --shards 2
"""
import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER_CONFIG = REPO / "deploy/k8s/base/sfn-server.toml"
SAMPLE_S = 0.2
KILL_GRACE_S = 5.0


class BenchError(Exception):
    """A failed step; the message says which."""


class Children:
    """Every process this run started; kill_all() ends those still running."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, stdout, stderr):
        try:
            p = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise BenchError(f"cannot start {name} ({cmd[0]}): {e}") from e
        p.bench_name = name
        self.procs.append(p)
        return p

    def kill_all(self):
        live = [p for p in self.procs if p.poll() is None]
        for p in live:
            p.terminate()
        deadline = time.monotonic() + KILL_GRACE_S
        for p in live:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def vm_hwm_kib(pid):
    """VmHWM of a running process in KiB; None once it has exited (a zombie has no mm)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakRss:
    """The last VmHWM seen for each sampled process (the kernel keeps the peak until exit)."""

    def __init__(self):
        self.kib = {}

    def sample(self, procs):
        for p in procs:
            v = vm_hwm_kib(p.pid)
            if v is not None:
                self.kib[p.pid] = max(v, self.kib.get(p.pid, 0))

    def mib(self, procs):
        values = [self.kib[p.pid] for p in procs if p.pid in self.kib]
        if len(values) < len(procs):
            raise BenchError("no VmHWM sample of " + ", ".join(
                p.bench_name for p in procs if p.pid not in self.kib))
        return round(max(values) / 1024.0, 1)


def tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def check_running(procs, logs):
    """Raises if any of `procs` has exited (they are all meant to be running)."""
    for p in procs:
        if p.poll() is not None:
            raise BenchError(f"{p.bench_name} exited early with {p.returncode}; "
                             f"{logs.get(p.pid, '')}:\n{tail(logs.get(p.pid, ''))}")


def check_exit_ok(procs, logs):
    for p in procs:
        if p.returncode != 0:
            raise BenchError(f"{p.bench_name} exited with {p.returncode}; "
                             f"{logs.get(p.pid, '')}:\n{tail(logs.get(p.pid, ''))}")


def run_quiet(cmd, what, timeout_s):
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what} did not finish within {timeout_s} s") from e
    if r.returncode != 0:
        raise BenchError(f"{what} exited with {r.returncode}:\n{r.stdout[-2000:]}")


def ensure_keys(a, work):
    """Server key pair and N fleet key pairs under `work`, reused when already there."""
    skeys, fleet = work / "skeys", work / "fleet"
    if not (skeys / "server.key").exists():
        run_quiet([str(a.build / "server/sfn-server"), "keygen", "--out", str(skeys)],
                  "sfn-server keygen", a.timeout_s)
    if not ((fleet / f"client-{a.clients - 1:06d}.key").exists() and (fleet / "allow").exists()):
        run_quiet([str(a.build / "simulator/sfn-sim"), "keygen", "--clients", str(a.clients),
                   "-o", str(fleet)], "sfn-sim keygen", a.timeout_s)
    return skeys, fleet


def read_first_line(proc, timeout_s, what):
    """The first stdout line of `proc` (a pipe), waiting at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchError(f"{what} printed no endpoint within {timeout_s} s")
        ready, _, _ = select.select([fd], [], [], min(left, SAMPLE_S))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise BenchError(f"{what} exited (code {proc.wait()}) before printing its endpoint")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


def wait_all_exit(procs, deadline, what, peak=None):
    """Waits until every process in `procs` has exited (sampling their VmHWM meanwhile)."""
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            live = [p.bench_name for p in procs if p.poll() is None]
            raise BenchError(f"timeout: {what}: still running: {', '.join(live)}")
        if peak is not None:
            peak.sample(procs)
        time.sleep(SAMPLE_S)


def run_baseline(a, children, skeys, fleet, out):
    zmq = str(a.build / "experiments/bench/bench_fleet_zmq")
    logs = {}
    with open(out / "serve.log", "wb") as err:
        server = children.start("bench_fleet_zmq serve", [
            zmq, "serve", "--key", str(skeys / "server.key"), "--allow", str(fleet / "allow")],
            subprocess.PIPE, err)
    logs[server.pid] = out / "serve.log"
    endpoint = read_first_line(server, a.timeout_s, "bench_fleet_zmq serve")
    per = a.clients // a.shards
    clients = []
    start = time.monotonic()
    for i in range(a.shards):
        log = out / f"clients{i}.log"
        with open(out / f"clients{i}.out", "wb") as so, open(log, "wb") as se:
            p = children.start(f"bench_fleet_zmq clients shard {i}", [
                zmq, "clients", "--connect", endpoint, "--server-key", str(skeys / "server.pub"),
                "--keys-dir", str(fleet), "--shard", str(i), "--shards", str(a.shards),
                "--clients", str(per), "--timeout-s", str(a.timeout_s)], so, se)
        logs[p.pid] = log
        clients.append(p)
    # Popen.wait polls at most 50 ms apart: finer than the sampling loop, as the baseline's
    # welcome can be well under a second.
    for p in clients:
        try:
            p.wait(timeout=max(0.0, start + a.timeout_s + 10 - time.monotonic()))
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"timeout: {p.bench_name} still running") from e
    welcome_s = time.monotonic() - start
    check_exit_ok(clients, logs)
    check_running([server], logs)
    own = [json.loads((out / f"clients{i}.out").read_text().splitlines()[-1])["welcome_s"]
           for i in range(a.shards)]
    hwm = vm_hwm_kib(server.pid)
    server.terminate()
    wait_all_exit([server], time.monotonic() + 10, "bench_fleet_zmq serve after SIGTERM")
    check_exit_ok([server], logs)
    if hwm is None:
        raise BenchError("bench_fleet_zmq serve: no VmHWM in /proc")
    return {"welcome_s": round(welcome_s, 3), "client_welcome_s_max": round(max(own), 3),
            "server_peak_rss_mib": round(hwm / 1024.0, 1)}


def data_flags(clients):
    return ["--set", 'data.dataset="synthetic"', "--set", f"data.synthetic_train={3 * clients}",
            "--set", "data.synthetic_test=200", "--set", 'data.partition="iid"']


def start_sfn_server(a, children, skeys, fleet, out):
    run = out / "run"
    per_round = min(30, a.clients)
    cmd = [str(a.build / "server/sfn-server"), "-c", str(SERVER_CONFIG), "-o", str(run),
           "--bind", "tcp://127.0.0.1:*", "--http", "127.0.0.1:0",
           "--key", str(skeys / "server.key"), "--allow", str(fleet / "allow"),
           "--min-clients", str(a.clients), *data_flags(a.clients),
           "--set", f"run.rounds={a.rounds}", "--set", f"round.clients_per_round={per_round}",
           "--set", f"round.quorum={min(20, per_round)}", "--set", "round.deadline_s=120",
           "--set", "train.batch_size=4", "--set", "eval.every=0", "--set", "run.torch_threads=1"]
    with open(out / "server.log", "wb") as log:
        server = children.start("sfn-server", cmd, log, subprocess.STDOUT)
    deadline = time.monotonic() + a.timeout_s
    logs = {server.pid: out / "server.log"}
    while not ((run / "endpoint").exists() and (run / "http_endpoint").exists()):
        check_running([server], logs)
        if time.monotonic() > deadline:
            raise BenchError(f"timeout: sfn-server wrote no endpoint files in {run}")
        time.sleep(SAMPLE_S)
    time.sleep(SAMPLE_S)  # both files are written with one write each; let it land
    endpoint = (run / "endpoint").read_text().strip()
    http = (run / "http_endpoint").read_text().strip()
    return server, endpoint, http, logs


def connected_clients(http):
    url = http if http.startswith("http") else "http://" + http
    try:
        with urllib.request.urlopen(url + "/status", timeout=2) as r:
            return json.load(r)["clients"]["connected"]
    except (OSError, ValueError, KeyError):
        return None  # busy or not up yet: asked again on the next tick


def start_sims(a, children, skeys, fleet, out, endpoint, logs):
    sims = []
    for i in range(a.shards):
        log = out / f"sim{i}.log"
        cmd = [str(a.build / "simulator/sfn-sim"), "--connect", endpoint,
               "--clients", str(a.clients // a.shards), "--shard", str(i),
               "--shards", str(a.shards), "--keys-dir", str(fleet),
               "--server-key", str(skeys / "server.pub"), "-c", str(SERVER_CONFIG),
               *data_flags(a.clients), "--set", "simulation.workers=1",
               "--set", "simulation.torch_threads=1", "--status-s", "5"]
        with open(out / f"sim{i}.out", "wb") as so, open(log, "wb") as se:
            p = children.start(f"sfn-sim shard {i}", cmd, so, se)
        logs[p.pid] = log
        sims.append(p)
    return sims


def run_sfn(a, children, skeys, fleet, out):
    server, endpoint, http, logs = start_sfn_server(a, children, skeys, fleet, out)
    peak = PeakRss()
    start = time.monotonic()
    sims = start_sims(a, children, skeys, fleet, out, endpoint, logs)
    deadline = start + a.timeout_s
    seen = None
    while True:
        peak.sample([server, *sims])
        check_running([server, *sims], logs)
        seen = connected_clients(http)
        if seen is not None and seen >= a.clients:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"timeout: sfn welcomed {seen} of {a.clients} clients "
                             f"in {a.timeout_s} s")
        time.sleep(SAMPLE_S)
    welcomed = time.monotonic()
    wait_all_exit([server], welcomed + a.timeout_s, f"sfn-server running {a.rounds} rounds",
                  peak)
    rounds_s = time.monotonic() - welcomed
    check_exit_ok([server], logs)
    wait_all_exit(sims, time.monotonic() + a.timeout_s, "sfn-sim after the server's Bye", peak)
    check_exit_ok(sims, logs)
    metrics = out / "run" / "metrics.jsonl"
    completed = metrics.read_text().count('"outcome":"completed"') if metrics.exists() else 0
    return {"welcome_s": round(welcomed - start, 3), "rounds_completed": completed,
            "rounds_s": round(rounds_s, 3), "server_peak_rss_mib": peak.mib([server]),
            "sim_peak_rss_mib_max": peak.mib(sims)}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, required=True, help="CMake build folder")
    ap.add_argument("--clients", type=int, required=True, help="fleet size N")
    ap.add_argument("--shards", type=int, required=True, help="client processes S (N/S each)")
    ap.add_argument("--rounds", type=int, default=2, help="sfn rounds after the welcome")
    ap.add_argument("--json", type=Path, help="also write the result here")
    ap.add_argument("--work", type=Path,
                    help="folder for keys (reused) and logs (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep logs and run folders")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="bound of every wait")
    a = ap.parse_args(argv)
    if a.clients < 1 or a.shards < 1 or a.clients % a.shards != 0:
        ap.error(f"--clients {a.clients} must be a positive multiple of --shards {a.shards}")
    if a.rounds < 1 or a.timeout_s <= 0:
        ap.error("--rounds and --timeout-s must be positive")
    a.build = a.build.resolve()
    for exe in ("server/sfn-server", "simulator/sfn-sim", "experiments/bench/bench_fleet_zmq"):
        if not (a.build / exe).is_file():
            ap.error(f"--build {a.build}: {exe} is missing (ninja -C {a.build} {Path(exe).name})")
    return a


def measure(a, work, out, children):
    load_start = os.getloadavg()
    skeys, fleet = ensure_keys(a, work)
    (out / "baseline").mkdir()
    (out / "sfn").mkdir()
    print(f"bench_fleet: logs in {out}", file=sys.stderr)
    baseline = run_baseline(a, children, skeys, fleet, out / "baseline")
    print(f"bench_fleet: baseline {json.dumps(baseline)}", file=sys.stderr)
    sfn = run_sfn(a, children, skeys, fleet, out / "sfn")
    result = {"clients": a.clients, "shards": a.shards, "rounds": a.rounds,
              "baseline": baseline, "sfn": sfn,
              "ratio_welcome": round(sfn["welcome_s"] / baseline["welcome_s"], 2),
              "machine": {"cores": os.cpu_count(), "load_avg_start": list(load_start),
                          "load_avg_end": list(os.getloadavg())}}
    return result


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    temporary = a.work is None
    work = Path(tempfile.mkdtemp(prefix="bench_fleet-")) if temporary else a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="bench-", dir=work))
    children = Children()
    ok = False
    try:
        result = measure(a, work, out, children)
        text = json.dumps(result)
        print(text)
        if a.json:
            a.json.write_text(text + "\n")
        ok = True
        return 0
    except BenchError as e:
        print(f"bench_fleet: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_fleet: interrupted", file=sys.stderr)
        return 130
    finally:
        children.kill_all()
        # A failed run keeps its logs; a good one keeps them only with --keep.
        if ok and not a.keep:
            shutil.rmtree(work if temporary else out, ignore_errors=True)
        elif not ok:
            print(f"bench_fleet: logs kept in {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
