#!/usr/bin/python3
"""Experiment sets (experiments/sets/*.toml): loading, validation and the run plan.

Standard library only (Debian's /usr/bin/python3 has no numpy). run.sh calls the CLI:

  expset.py train-plan SET OUT      one line per training run (phase 1)
  expset.py search-plan SET OUT     one line per SuperNet run to search (phase 2)
  expset.py winners-plan SET OUT    iFedAvg runs of the searched winners (phase 3, optional)

Plan lines are tab-separated: run_dir, label, then sfn-sim --set overrides. A set names
methods, the alpha/seed grid each runs on, the fixed target SubNets, the search budgets and
the report's comparison rules; see experiments/sets/quick.toml for every key.
"""

import csv
import os
import sys
import tomllib

ROLES = ("supernet", "per-target")


class SetError(Exception):
    pass


def _need(table, key, where, kind=None):
    if key not in table:
        raise SetError(f"{where}: missing key '{key}'")
    value = table[key]
    if kind is not None and not isinstance(value, kind):
        raise SetError(f"{where}.{key}: expected {kind.__name__ if isinstance(kind, type) else kind}")
    return value


def alpha_tag(alpha):
    """Folder-safe, stable text for an alpha: 1.0 -> '1', 0.1 -> '0.1', 100.0 -> '100'."""
    return f"{alpha:g}"


def load_set(path):
    """Reads and validates a set file; returns a dict with defaults filled in."""
    with open(path, "rb") as f:
        try:
            s = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise SetError(f"{path}: {e}") from e
    known = {"set", "target", "grid", "method", "search", "cost", "report"}
    for k in s:
        if k not in known:
            raise SetError(f"{path}: unknown table '{k}' (expected one of {sorted(known)})")
    meta = _need(s, "set", path, dict)
    _need(meta, "name", "[set]", str)
    _need(meta, "config", "[set]", str)
    rounds = _need(meta, "rounds", "[set]", int)
    if rounds < 1:
        raise SetError("[set] rounds must be >= 1")
    meta.setdefault("about", "")
    meta.setdefault("overrides", [])
    meta.setdefault("eval_every", max(1, rounds // 10))
    meta.setdefault("headline_alpha", 1.0)
    base_dir = os.path.dirname(os.path.abspath(path))
    meta["config_path"] = os.path.normpath(os.path.join(base_dir, meta["config"]))
    if not os.path.isfile(meta["config_path"]):
        raise SetError(f"[set] config '{meta['config']}' not found at {meta['config_path']}")

    targets = _need(s, "target", path, list)
    names = set()
    for i, t in enumerate(targets):
        where = f"[[target]] #{i + 1}"
        _need(t, "name", where, str)
        _need(t, "subnet", where, str)
        if t["name"] in names:
            raise SetError(f"{where}: duplicate name '{t['name']}'")
        if any(c in t["name"] for c in " /,\t"):
            raise SetError(f"{where}: name '{t['name']}' must not contain spaces, '/', ',' or tabs")
        names.add(t["name"])

    grids = _need(s, "grid", path, dict)
    for gname, cells in grids.items():
        if not isinstance(cells, list) or not cells:
            raise SetError(f"[grid] {gname}: expected a non-empty array of {{alpha, seeds}}")
        for c in cells:
            _need(c, "alpha", f"[grid] {gname}")
            c["alpha"] = float(c["alpha"])
            seeds = _need(c, "seeds", f"[grid] {gname}", list)
            if not seeds or not all(isinstance(x, int) and x >= 0 for x in seeds):
                raise SetError(f"[grid] {gname}: seeds must be non-negative integers")

    methods = _need(s, "method", path, list)
    mnames = set()
    for i, m in enumerate(methods):
        where = f"[[method]] #{i + 1}"
        _need(m, "name", where, str)
        if m["name"] in mnames or any(c in m["name"] for c in " /,\t"):
            raise SetError(f"{where}: name '{m['name']}' is duplicate or has spaces, '/', ','")
        mnames.add(m["name"])
        if _need(m, "role", where, str) not in ROLES:
            raise SetError(f"{where}.role: expected one of {ROLES}")
        if _need(m, "grid", where, str) not in grids:
            raise SetError(f"{where}.grid: no grid '{m['grid']}' in [grid]")
        m.setdefault("overrides", [])
        m.setdefault("search", False)
        m.setdefault("about", "")

    search = s.setdefault("search", {})
    search.setdefault("macs_fractions", [])
    search.setdefault("args", [])
    search.setdefault("ifedavg_winners_alphas", [])
    search["ifedavg_winners_alphas"] = [float(a) for a in search["ifedavg_winners_alphas"]]
    for f in search["macs_fractions"]:
        if not 0.0 <= float(f) <= 1.0:
            raise SetError("[search] macs_fractions must lie in [0, 1]")
    cost = s.setdefault("cost", {})
    cost.setdefault("max_targets", 20)
    cost.setdefault("search", True)
    cost.setdefault("search_targets", cost["max_targets"])
    if not 1 <= int(cost["search_targets"]) <= int(cost["max_targets"]):
        raise SetError("[cost] search_targets must lie in 1..max_targets")
    report = s.setdefault("report", {})
    report.setdefault("reference", "SuperFedNAS")
    report.setdefault("baseline", "iFedAvg")
    report.setdefault("ablations", [m["name"] for m in methods
                                    if m["name"] not in (report["reference"], report["baseline"])])
    report.setdefault("tolerance_pp", 1.0)
    report.setdefault("noise_pp", 0.5)
    for key in ("reference", "baseline"):
        if report[key] not in mnames:
            raise SetError(f"[report] {key} = '{report[key]}' is not a method")
    for a in report["ablations"]:
        if a not in mnames:
            raise SetError(f"[report] ablations: '{a}' is not a method")
    s["_path"] = os.path.abspath(path)
    return s


def cells(s, method):
    """(alpha, seed) pairs a method runs on, in grid order."""
    for c in s["grid"][method["grid"]]:
        for seed in c["seeds"]:
            yield c["alpha"], seed


def toml_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_dir(out, method, alpha, seed, target=None):
    parts = [out, "runs", method, f"a{alpha_tag(alpha)}", f"s{seed}"]
    if target:
        parts.append(target)
    return os.path.join(*parts)


def common_overrides(s, alpha, seed, label):
    meta = s["set"]
    return [
        f"run.name={toml_string(label.replace('/', '-'))}",
        f"run.rounds={meta['rounds']}",
        f"run.seed={seed}",
        f"data.alpha={alpha!r}",
        f"eval.every={meta['eval_every']}",
    ] + list(meta["overrides"])


def train_runs(s, out):
    """Phase 1: every (method, alpha, seed[, target]) training run."""
    targets = s["target"]
    all_subnets = "[" + ", ".join(toml_string(t["subnet"]) for t in targets) + "]"
    for m in s["method"]:
        for alpha, seed in cells(s, m):
            if m["role"] == "supernet":
                label = f"{m['name']}/a{alpha_tag(alpha)}/s{seed}"
                yield (run_dir(out, m["name"], alpha, seed), label,
                       common_overrides(s, alpha, seed, label) + list(m["overrides"]) +
                       [f"eval.subnets={all_subnets}"])
            else:
                for t in targets:
                    label = f"{m['name']}/a{alpha_tag(alpha)}/s{seed}/{t['name']}"
                    yield (run_dir(out, m["name"], alpha, seed, t["name"]), label,
                           common_overrides(s, alpha, seed, label) + list(m["overrides"]) +
                           [f"round.fixed_subnet={toml_string(t['subnet'])}",
                            f"eval.subnets=[{toml_string(t['subnet'])}]"])


def summary_macs(run):
    """MACs of the MinNet and MaxNet of a finished SuperNet run (from summary.json)."""
    import json
    with open(os.path.join(run, "summary.json")) as f:
        final = json.load(f)["final"]
    macs = [r["macs"] for r in final]
    return min(macs), max(macs)


def search_dir(out, method, alpha, seed):
    return os.path.join(out, "search", method, f"a{alpha_tag(alpha)}", f"s{seed}")


def search_targets(s, lo, hi):
    """[(name, max_macs)] for the set's MACs fractions between the MinNet and MaxNet MACs."""
    out = []
    for f in s["search"]["macs_fractions"]:
        budget = int(round(lo + float(f) * (hi - lo)))
        out.append((f"macs{budget / 1e6:.2f}M", budget))
    return out


def cost_search_dir(out, method, alpha, seed):
    return os.path.join(out, "search-cost", method, f"a{alpha_tag(alpha)}", f"s{seed}")


def cost_search_cell(s):
    """(method, alpha, seed) whose checkpoint is searched once for [cost] search_targets
    targets, to measure the search cost at a large N; None if the set does not ask for it."""
    if not s["cost"]["search"]:
        return None
    ref = next(m for m in s["method"] if m["name"] == s["report"]["reference"])
    if not ref["search"] or ref["role"] != "supernet":
        return None
    alpha = float(s["set"]["headline_alpha"])
    seeds = [seed for a, seed in cells(s, ref) if a == alpha]
    return (ref["name"], alpha, seeds[0]) if seeds else None


def write_targets(path, s, budgets):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# Generated by experiments/tools/expset.py from {s['_path']}\n")
        for name, budget in budgets:
            f.write(f'[[target]]\nname = "{name}"\nmax_macs = {budget}\n\n')


def search_runs(s, out):
    """Phase 2: (run_dir, search_dir, targets_file) per finished run of a method with search,
    then the cost search ([cost] search_targets budgets evenly spread from MinNet to MaxNet MACs)."""
    for m in s["method"]:
        if not m["search"] or m["role"] != "supernet":
            continue
        for alpha, seed in cells(s, m):
            rd = run_dir(out, m["name"], alpha, seed)
            if not os.path.isfile(os.path.join(rd, "summary.json")):
                continue
            sd = search_dir(out, m["name"], alpha, seed)
            tf = os.path.join(sd, "targets.toml")
            write_targets(tf, s, search_targets(s, *summary_macs(rd)))
            yield rd, sd, tf
    cell = cost_search_cell(s)
    if cell is not None:
        rd = run_dir(out, *cell)
        if os.path.isfile(os.path.join(rd, "summary.json")):
            lo, hi = summary_macs(rd)
            n = int(s["cost"]["search_targets"])
            budgets = [lo + (hi - lo) * i // max(1, n - 1) for i in range(n)]
            sd = cost_search_dir(out, *cell)
            tf = os.path.join(sd, "targets.toml")
            write_targets(tf, s, [(f"n{i + 1:02d}-macs{b / 1e6:.2f}M", b) for i, b in enumerate(budgets)])
            yield rd, sd, tf


def read_search_results(sd):
    """Rows of a search's results.csv as dicts with normalised keys (None if absent)."""
    path = os.path.join(sd, "results.csv")
    if not os.path.isfile(path):
        return None
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            g = lambda *keys: next((r[k] for k in keys if k in r and r[k] != ""), None)  # noqa: E731
            rows.append({
                "target": g("target", "name"),
                "subnet": g("subnet", "winner", "config"),
                "macs": g("macs"),
                "params": g("params"),
                "val_accuracy": g("val_accuracy", "val_acc"),
                "test_accuracy": g("test_accuracy", "test_acc"),
            })
    return rows


def winner_runs(s, out):
    """Phase 3: iFedAvg (the baseline method's overrides) on each searched winner."""
    alphas = s["search"]["ifedavg_winners_alphas"]
    if not alphas:
        return
    base = next(m for m in s["method"] if m["name"] == s["report"]["baseline"])
    for m in s["method"]:
        if not m["search"] or m["role"] != "supernet":
            continue
        for alpha, seed in cells(s, m):
            if alpha not in alphas:
                continue
            rows = read_search_results(search_dir(out, m["name"], alpha, seed)) or []
            for r in rows:
                if not r["subnet"] or not r["target"]:
                    continue
                tname = f"win-{r['target']}"
                label = f"{base['name']}/a{alpha_tag(alpha)}/s{seed}/{tname}"
                yield (run_dir(out, base["name"], alpha, seed, tname), label,
                       common_overrides(s, alpha, seed, label) + list(base["overrides"]) +
                       [f"round.fixed_subnet={toml_string(r['subnet'])}",
                        f"eval.subnets=[{toml_string(r['subnet'])}]"])


def main(argv):
    if len(argv) != 4 or argv[1] not in ("train-plan", "search-plan", "winners-plan", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, set_path, out = argv[1], argv[2], argv[3]
    try:
        s = load_set(set_path)
        if cmd == "check":
            print(f"{s['set']['name']}: {sum(1 for _ in train_runs(s, out))} training runs")
        elif cmd == "train-plan":
            for rd, label, ov in train_runs(s, out):
                print("\t".join([rd, label] + ov))
        elif cmd == "winners-plan":
            for rd, label, ov in winner_runs(s, out):
                print("\t".join([rd, label] + ov))
        else:
            for rd, sd, tf in search_runs(s, out):
                print("\t".join([rd, sd, tf] + list(s["search"]["args"])))
    except (SetError, OSError, KeyError, ValueError) as e:
        print(f"expset.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
