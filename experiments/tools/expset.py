#!/usr/bin/python3
"""Experiment sets (experiments/sets/*.toml): loading, validation and the run plan.

Standard library only (Debian's /usr/bin/python3 has no numpy). run.sh calls the CLI:

  expset.py check SET OUT                  validate SET; print how many runs and searches it plans
  expset.py train-plan SET OUT             one line per training run, in run order (phase 1)
  expset.py search-plan SET OUT [RUN_DIR]  one line per finished SuperNet run to search (phase 2),
                                           or only the searches of RUN_DIR
  expset.py winners-plan SET OUT           iFedAvg runs of the searched winners (phase 3, optional)
  expset.py restore SET OUT ARCHIVE        copy planned, complete runs and searches missing in
                                           OUT from ARCHIVE (see "archive" below)
  expset.py archive SET OUT ARCHIVE RUN_DIR  copy the small files of a finished run (and of its
                                           searches) into ARCHIVE

Plan lines are tab-separated: run_dir, label, then sfn-sim --set overrides (search-plan:
run_dir, search_dir, targets_file, then sfn-search arguments). A set names methods, the
alpha/seed grid each runs on, the fixed target SubNets, the search budgets and the report's
comparison rules; see experiments/sets/quick.toml for every key.

Run order (train-plan): cell by cell, most useful comparison first. A cell is an (alpha,
seed); its priority is (the seed's position in its grid entry, headline alpha before the
others, the others in the order the grids list them). Within a cell: the report's reference
method, then its baseline (every target), then the other methods in file order. So the
headline alpha's first seed finishes every method before any second seed starts.
"""

import collections
import csv
import hashlib
import json
import os
import shutil
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


def _check_target_seeds(m, where, target_names):
    """all_targets_seeds / extra_seed_targets of a per-target method (fills the defaults:
    None = every seed runs every target, [] = later seeds run no target)."""
    has_n, has_extra = "all_targets_seeds" in m, "extra_seed_targets" in m
    if (has_n or has_extra) and m["role"] != "per-target":
        raise SetError(f"{where} ({m['name']}): all_targets_seeds and extra_seed_targets apply to "
                       f"role = \"per-target\" methods only (this one is \"{m['role']}\")")
    n = m.setdefault("all_targets_seeds", None)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise SetError(f"{where}.all_targets_seeds: expected an integer >= 0 (the first N seeds of each "
                       f"grid entry run every target; 0: every seed runs extra_seed_targets only), "
                       f"got {n!r}")
    extra = m.setdefault("extra_seed_targets", [])
    if not isinstance(extra, list) or not all(isinstance(x, str) for x in extra):
        raise SetError(f"{where}.extra_seed_targets: expected an array of [[target]] names")
    if has_extra and n is None:
        raise SetError(f"{where}.extra_seed_targets needs all_targets_seeds (without it every seed "
                       "runs every target)")
    for x in extra:
        if x not in target_names:
            raise SetError(f"{where}.extra_seed_targets: '{x}' is not a [[target]] name "
                           f"(expected one of {sorted(target_names)})")
    if len(set(extra)) != len(extra):
        raise SetError(f"{where}.extra_seed_targets: duplicate target names")


def _check_search_grid(m, where, grids):
    """search = true searches every run of the method; search = "GRID" only the runs in that
    grid's cells, which must all be cells the method runs on."""
    if isinstance(m["search"], bool):
        return
    if not isinstance(m["search"], str) or m["search"] not in grids:
        raise SetError(f"{where}.search: expected true, false or a [grid] name, got {m['search']!r}")
    own = {(c["alpha"], seed) for c in grids[m["grid"]] for seed in c["seeds"]}
    for c in grids[m["search"]]:
        for seed in c["seeds"]:
            if (c["alpha"], seed) not in own:
                raise SetError(f"{where}.search: grid '{m['search']}' has alpha {c['alpha']:g} seed "
                               f"{seed}, which the method's grid '{m['grid']}' does not run")


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
    _check_meta(_need(s, "set", path, dict), path)
    names = _check_targets(_need(s, "target", path, list))
    grids = _check_grids(_need(s, "grid", path, dict))
    methods = _need(s, "method", path, list)
    _check_methods(methods, grids, names)
    _check_search_cost(s)
    _check_report(s.setdefault("report", {}), methods)
    s["_path"] = os.path.abspath(path)
    return s


def _check_meta(meta, path):
    """[set]: required keys, defaults, the base config's path (relative to the set file)."""
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


def _check_targets(targets):
    """[[target]]: unique, folder-safe names; returns them."""
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
    return names


def _check_grids(grids):
    """[grid]: each a non-empty array of {alpha, seeds}; alphas become floats."""
    for gname, cells in grids.items():
        if not isinstance(cells, list) or not cells:
            raise SetError(f"[grid] {gname}: expected a non-empty array of {{alpha, seeds}}")
        for c in cells:
            _need(c, "alpha", f"[grid] {gname}")
            c["alpha"] = float(c["alpha"])
            seeds = _need(c, "seeds", f"[grid] {gname}", list)
            if not seeds or not all(isinstance(x, int) and x >= 0 for x in seeds):
                raise SetError(f"[grid] {gname}: seeds must be non-negative integers")
    return grids


def _check_methods(methods, grids, target_names):
    """[[method]]: unique names, a known role and grid, defaults, target seeds and search grid."""
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
        _check_target_seeds(m, where, target_names)
        _check_search_grid(m, where, grids)


def _check_search_cost(s):
    """[search] and [cost]: defaults and ranges."""
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


def _check_report(report, methods):
    """[report]: defaults; every method it names exists and has the role its comparison needs."""
    mnames = {m["name"] for m in methods}
    roles = {m["name"]: m["role"] for m in methods}
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
    if not isinstance(report.setdefault("variants", []), list):
        raise SetError(f"[report] variants: expected a list of method names, got {report['variants']!r}")
    for v in report["variants"]:
        if roles.get(v) != "supernet" or v == report["reference"]:
            raise SetError(f"[report] variants: '{v}' is not a supernet method other than the reference")
    if "equal_compute" in report and report["equal_compute"] not in mnames:
        raise SetError(f"[report] equal_compute = '{report['equal_compute']}' is not a method")
    if "long_rounds" in report:
        pair = report["long_rounds"]
        if (not isinstance(pair, list) or len(pair) != 2 or roles.get(pair[0]) != "supernet"
                or roles.get(pair[1]) != "per-target"):
            raise SetError("[report] long_rounds: expected [a supernet method, a per-target method], "
                           f"got {pair!r}")


def cells(s, method):
    """(alpha, seed) pairs a method runs on, in grid order."""
    for alpha, seed, _rank in ranked_cells(s, method):
        yield alpha, seed


def ranked_cells(s, method):
    """(alpha, seed, rank) a method runs on; rank = the seed's position in its grid entry."""
    for c in s["grid"][method["grid"]]:
        for rank, seed in enumerate(c["seeds"]):
            yield c["alpha"], seed, rank


def searched_cells(s, method):
    """(alpha, seed) of the method's runs that are searched, in grid order (none for a
    per-target method)."""
    if not method["search"] or method["role"] != "supernet":
        return []
    if method["search"] is True:
        return list(cells(s, method))
    return [(c["alpha"], seed) for c in s["grid"][method["search"]] for seed in c["seeds"]]


def method_targets(s, method, rank):
    """The [[target]]s a per-target method trains for the rank-th seed of a grid entry."""
    n = method.get("all_targets_seeds")
    if n is None or rank < n:
        return list(s["target"])
    extra = set(method.get("extra_seed_targets", []))
    return [t for t in s["target"] if t["name"] in extra]


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


def train_specs(s):
    """Every planned training run as a dict (method, alpha, seed, rank, target), in file order:
    method by method, its grid in order, targets in [[target]] order."""
    for m in s["method"]:
        for alpha, seed, rank in ranked_cells(s, m):
            if m["role"] == "supernet":
                yield {"method": m, "alpha": alpha, "seed": seed, "rank": rank, "target": None}
            else:
                for t in method_targets(s, m, rank):
                    yield {"method": m, "alpha": alpha, "seed": seed, "rank": rank, "target": t}


def run_priority(s):
    """Sort key of a train spec: the run order described in the module docstring."""
    head = float(s["set"]["headline_alpha"])
    alpha_pos = {}
    for m in s["method"]:
        for alpha, _seed in cells(s, m):
            alpha_pos.setdefault(alpha, len(alpha_pos))
    rep = s["report"]
    first = {rep["reference"]: 0, rep["baseline"]: 1}
    method_pos = {m["name"]: first.get(m["name"], 2 + i) for i, m in enumerate(s["method"])}
    target_pos = {t["name"]: i for i, t in enumerate(s["target"])}
    return lambda sp: (sp["rank"], sp["alpha"] != head, alpha_pos[sp["alpha"]], sp["seed"],
                       method_pos[sp["method"]["name"]],
                       -1 if sp["target"] is None else target_pos[sp["target"]["name"]])


def train_line(s, out, sp):
    """(run_dir, label, overrides) of one train spec."""
    m, alpha, seed, t = sp["method"], sp["alpha"], sp["seed"], sp["target"]
    if t is None:
        label = f"{m['name']}/a{alpha_tag(alpha)}/s{seed}"
        subnets = "[" + ", ".join(toml_string(x["subnet"]) for x in s["target"]) + "]"
        return (run_dir(out, m["name"], alpha, seed), label,
                common_overrides(s, alpha, seed, label) + list(m["overrides"]) + [f"eval.subnets={subnets}"])
    label = f"{m['name']}/a{alpha_tag(alpha)}/s{seed}/{t['name']}"
    return (run_dir(out, m["name"], alpha, seed, t["name"]), label,
            common_overrides(s, alpha, seed, label) + list(m["overrides"]) +
            [f"round.fixed_subnet={toml_string(t['subnet'])}", f"eval.subnets=[{toml_string(t['subnet'])}]"])


def train_runs(s, out, ordered=False):
    """Phase 1: every (method, alpha, seed[, target]) training run, in file order or (ordered)
    in run order."""
    specs = list(train_specs(s))
    if ordered:
        specs.sort(key=run_priority(s))
    for sp in specs:
        yield train_line(s, out, sp)


def summary_macs(run):
    """MACs of the MinNet and MaxNet of a finished SuperNet run (from summary.json)."""
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
    alpha = float(s["set"]["headline_alpha"])
    seeds = [seed for a, seed in searched_cells(s, ref) if a == alpha]
    return (ref["name"], alpha, seeds[0]) if seeds else None


def write_targets(path, s, budgets):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(f"# Generated by experiments/tools/expset.py from {s['_path']}\n")
        for name, budget in budgets:
            f.write(f'[[target]]\nname = "{name}"\nmax_macs = {budget}\n\n')


def cost_search_targets(s, lo, hi):
    n = int(s["cost"]["search_targets"])
    budgets = [lo + (hi - lo) * i // max(1, n - 1) for i in range(n)]
    return [(f"n{i + 1:02d}-macs{b / 1e6:.2f}M", b) for i, b in enumerate(budgets)]


def _planned_searches(s, out):
    """[(run_dir, search_dir, budgets(lo, hi))] of every planned search: the MACs-budget search
    of each run of a method with search, then the cost search ([cost] search_targets budgets
    evenly spread from MinNet to MaxNet MACs). budgets needs the run's MinNet and MaxNet MACs."""
    found = []
    for m in s["method"]:
        for alpha, seed in searched_cells(s, m):
            found.append((run_dir(out, m["name"], alpha, seed), search_dir(out, m["name"], alpha, seed),
                          lambda lo, hi: search_targets(s, lo, hi)))
    cell = cost_search_cell(s)
    if cell is not None:
        found.append((run_dir(out, *cell), cost_search_dir(out, *cell),
                      lambda lo, hi: cost_search_targets(s, lo, hi)))
    return found


def searches_of(s, out, rd):
    """[(search_dir, budgets)] planned on the checkpoint of run folder rd (in search order)."""
    rd = os.path.abspath(rd)
    return [(sd, b) for r, sd, b in _planned_searches(s, out) if os.path.abspath(r) == rd]


def search_runs(s, out, only_run=None):
    """Phase 2: (run_dir, search_dir, targets_file) per planned search whose run is finished;
    only_run: just the searches of that run folder. Writes each search's targets file."""
    for rd, sd, budgets in _planned_searches(s, out):
        if only_run is not None and os.path.abspath(rd) != os.path.abspath(only_run):
            continue
        if not os.path.isfile(os.path.join(rd, "summary.json")):
            continue
        tf = os.path.join(sd, "targets.toml")
        write_targets(tf, s, budgets(*summary_macs(rd)))
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


def _winners(s, out):
    """(alpha, seed, subnet, target names) per distinct searched winner of each searched cell at
    an ifedavg_winners_alphas alpha, in search order: budgets that find the same SubNet share
    one entry (and so one iFedAvg run)."""
    alphas = s["search"]["ifedavg_winners_alphas"]
    for m in s["method"]:
        for alpha, seed in searched_cells(s, m):
            if alpha not in alphas:
                continue
            found = {}
            for r in read_search_results(search_dir(out, m["name"], alpha, seed)) or []:
                if r["subnet"] and r["target"]:
                    found.setdefault(r["subnet"], []).append(r["target"])
            for subnet, targets in found.items():
                yield alpha, seed, subnet, targets


def winner_target(target):
    """The target name of iFedAvg's run on the winner of search target `target`."""
    return f"win-{target}"


def winner_runs(s, out):
    """Phase 3: iFedAvg (the baseline method's overrides) on each distinct searched winner,
    named after the first target that found it."""
    base = next(m for m in s["method"] if m["name"] == s["report"]["baseline"])
    for alpha, seed, subnet, targets in _winners(s, out):
        tname = winner_target(targets[0])
        label = f"{base['name']}/a{alpha_tag(alpha)}/s{seed}/{tname}"
        yield (run_dir(out, base["name"], alpha, seed, tname), label,
               common_overrides(s, alpha, seed, label) + list(base["overrides"]) +
               [f"round.fixed_subnet={toml_string(subnet)}", f"eval.subnets=[{toml_string(subnet)}]"])


def winner_aliases(s, out):
    """{winner run folder: the winner target names of the other search targets that found the
    same SubNet}."""
    base = s["report"]["baseline"]
    names = {}
    for alpha, seed, _, targets in _winners(s, out):
        if len(targets) > 1:
            rd = run_dir(out, base, alpha, seed, winner_target(targets[0]))
            names[rd] = [winner_target(t) for t in targets[1:]]
    return names


# ----------------------------------------------------------------------------- archive
#
# Checkpoints and exported models are large and stay on the machine that made them; the
# archive keeps what the report reads, so a set can go on over sessions on fresh machines
# that share only a git checkout. Layout: ARCHIVE/<the folder's path under OUT>/. A SuperNet
# run that is searched is one unit with its searches: the searches need its checkpoint, so
# they are archived first and the run's summary.json last, and only the complete unit is
# restored. Each archived folder has plan.txt, the settings it was made with; a restore
# refuses folders whose plan.txt differs from the current set file (stale results).

RUN_FILES = ("config.toml", "metrics.jsonl", "metrics.csv", "machine.json")  # summary.json last
SEARCH_SUFFIXES = (".csv", ".json", ".md", ".txt", ".toml", ".tail")  # results.csv last
LOG_TAIL_LINES = 200
MAX_ARCHIVED_BYTES = 1 << 20


def _put(dst, src=None, text=None):
    """Writes dst from a file or a string through a temporary name, so an interrupted copy
    never leaves a truncated file under its real name."""
    tmp = dst + ".part"
    if src is not None:
        shutil.copyfile(src, tmp)
    else:
        with open(tmp, "w") as f:
            f.write(text)
    os.replace(tmp, dst)


def _tail(path, n=LOG_TAIL_LINES):
    with open(path, errors="replace") as f:
        return "".join(collections.deque(f, n))


def _log_tail(src, dst, log):
    """LOG's last lines as LOG.tail (or the .tail a restored folder already has)."""
    if os.path.isfile(os.path.join(src, log)):
        _put(os.path.join(dst, log + ".tail"), text=_tail(os.path.join(src, log)))
    elif os.path.isfile(os.path.join(src, log + ".tail")):
        _put(os.path.join(dst, log + ".tail"), src=os.path.join(src, log + ".tail"))


def _archive_run_dir(src, dst, plan):
    os.makedirs(dst, exist_ok=True)
    for name in RUN_FILES:
        if os.path.isfile(os.path.join(src, name)):
            _put(os.path.join(dst, name), src=os.path.join(src, name))
    _log_tail(src, dst, "sim.log")
    _put(os.path.join(dst, "plan.txt"), text=plan)
    _put(os.path.join(dst, "summary.json"), src=os.path.join(src, "summary.json"))


def _archive_search_dir(src, dst, plan):
    """The search's small text outputs: top-level files only (exported models are folders),
    known text suffixes, at most MAX_ARCHIVED_BYTES each."""
    os.makedirs(dst, exist_ok=True)
    for e in sorted(os.scandir(src), key=lambda e: e.name):
        if not e.is_file() or e.name in ("results.csv", "plan.txt") or not e.name.endswith(SEARCH_SUFFIXES):
            continue
        if e.stat().st_size > MAX_ARCHIVED_BYTES:
            print(f"expset.py: archive: {e.path} is over {MAX_ARCHIVED_BYTES} bytes, not archived", file=sys.stderr)
            continue
        _put(os.path.join(dst, e.name), src=e.path)
    _log_tail(src, dst, "search.log")
    _put(os.path.join(dst, "plan.txt"), text=plan)
    _put(os.path.join(dst, "results.csv"), src=os.path.join(src, "results.csv"))


def _restore_dir(src, dst, last):
    """Copies every file of an archived folder into dst, `last` (the completeness marker) last."""
    os.makedirs(dst, exist_ok=True)
    names = sorted(e.name for e in os.scandir(src) if e.is_file() and not e.name.endswith(".part"))
    for name in [n for n in names if n != last] + [last]:
        _put(os.path.join(dst, name), src=os.path.join(src, name))


def _config_digest(path):
    """SHA-256 of the set's base config with comments and blank lines left out: a changed
    recipe (a key's value) makes archived runs stale, a reworded comment does not."""
    lines = []
    with open(path) as f:
        for line in f:
            code = line.strip()
            # Cut a trailing comment at a '#' outside double quotes.
            quoted = False
            for i, ch in enumerate(code):
                if ch == '"':
                    quoted = not quoted
                elif ch == "#" and not quoted:
                    code = code[:i].rstrip()
                    break
            if code:
                lines.append(code)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _run_plan_text(s, label, overrides):
    return "\n".join([label, "config " + _config_digest(s["set"]["config_path"])] +
                      list(overrides)) + "\n"


def _search_plan_text(s, rd, budgets):
    """sfn-search settings of a search on run folder rd (its budgets follow from rd's MACs)."""
    return "\n".join(["sfn-search " + " ".join(s["search"]["args"])] +
                      [f"target {name} max_macs {b}" for name, b in budgets(*summary_macs(rd))]) + "\n"


def _read(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return f.read()


class Archive:
    """The archive of one set: OUT's planned, finished units mirrored under root."""

    def __init__(self, s, out, root):
        self.s, self.out, self.root = s, os.path.abspath(out), os.path.abspath(root)
        if self.root == self.out:
            raise SetError("the archive must not be the output folder itself")

    def mirror(self, path):
        rel = os.path.relpath(os.path.abspath(path), self.out)
        if rel.startswith(".."):
            raise SetError(f"{path} is not under {self.out}")
        return os.path.join(self.root, rel)

    def _plans(self, winners):
        runs = winner_runs(self.s, self.out) if winners else train_runs(self.s, self.out, ordered=True)
        return {os.path.abspath(rd): (label, ov) for rd, label, ov in runs}

    @staticmethod
    def _complete(rd, sds):
        return (os.path.isfile(os.path.join(rd, "summary.json")) and
                all(os.path.isfile(os.path.join(sd, "results.csv")) for sd in sds))

    def _stale(self, rd, label, ov, searches):
        """Why the archived unit of rd was made with other settings than the set's (None: same)."""
        ard = self.mirror(rd)
        want = _run_plan_text(self.s, label, ov)
        have = _read(os.path.join(ard, "plan.txt"))
        if have != want:
            return f"{label}: archived settings {_first_difference(have, want)}"
        for sd, budgets in searches:
            asd = self.mirror(sd)
            want = _search_plan_text(self.s, ard, budgets)
            have = _read(os.path.join(asd, "plan.txt"))
            if have != want:
                return f"search of {label}: archived settings {_first_difference(have, want)}"
        return None

    def archive(self, rd):
        """Archives finished run folder rd with its searches; False if it already was."""
        rd = os.path.abspath(rd)
        plans = self._plans(False)
        if rd not in plans:
            plans = self._plans(True)
        if rd not in plans:
            raise SetError(f"archive: {rd} is not a run the set plans")
        label, ov = plans[rd]
        searches = searches_of(self.s, self.out, rd)
        if not os.path.isfile(os.path.join(rd, "summary.json")):
            raise SetError(f"archive: run {label} is not finished (no summary.json)")
        for sd, _ in searches:
            if not os.path.isfile(os.path.join(sd, "results.csv")):
                raise SetError(f"archive: search {sd} of {label} is not finished; a searched run is "
                               "archived together with its searches")
        if (self._complete(self.mirror(rd), [self.mirror(sd) for sd, _ in searches]) and
                self._stale(rd, label, ov, searches) is None):
            return False
        for sd, budgets in searches:
            shutil.rmtree(self.mirror(sd), ignore_errors=True)
            _archive_search_dir(sd, self.mirror(sd), _search_plan_text(self.s, rd, budgets))
        # summary.json last: the unit counts as archived only once everything else is there.
        if os.path.isfile(os.path.join(self.mirror(rd), "summary.json")):
            os.remove(os.path.join(self.mirror(rd), "summary.json"))
        _archive_run_dir(rd, self.mirror(rd), _run_plan_text(self.s, label, ov))
        self._machine(to_archive=True)
        return True

    def _machine(self, to_archive):
        """OUT/machine.json records the set's first session; the archive carries it on."""
        a, o = os.path.join(self.root, "machine.json"), os.path.join(self.out, "machine.json")
        src, dst = (o, a) if to_archive else (a, o)
        if os.path.isfile(src) and not os.path.isfile(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _put(dst, src=src)

    def restore(self, log=sys.stderr):
        """Copies every planned unit that is complete in the archive but not in OUT into OUT.
        Training runs (with their searches) first, then the searched winners' runs, which the
        restored search results name. Returns the number of units restored."""
        self._machine(to_archive=False)
        n = 0
        for winners in (False, True):
            units = []
            for rd, (label, ov) in self._plans(winners).items():
                searches = searches_of(self.s, self.out, rd)
                sds = [sd for sd, _ in searches]
                if self._complete(rd, sds) or not self._complete(self.mirror(rd), [self.mirror(x) for x in sds]):
                    continue
                units.append((rd, label, ov, searches))
            stale = [why for why in (self._stale(*u) for u in units) if why]
            if stale:
                raise SetError(f"the archive {self.root} holds results made with other settings than the set "
                               "file asks for:\n  " + "\n  ".join(stale[:10]) +
                               ("\n  ..." if len(stale) > 10 else "") +
                               "\nDelete those folders from the archive to train them again, or restore the "
                               "set file's settings.")
            for rd, label, _, searches in units:
                for sd, _ in searches:
                    _restore_dir(self.mirror(sd), sd, "results.csv")
                _restore_dir(self.mirror(rd), rd, "summary.json")
                n += 1
                extra = f" with {len(searches)} search(es)" if searches else ""
                print(f"expset.py: restored {label}{extra} from the archive", file=log)
        return n


def _first_difference(have, want):
    if have is None:
        return "unknown (no plan.txt)"
    for a, b in zip(have.splitlines(), want.splitlines()):
        if a != b:
            return f"'{a}', the set file now '{b}'"
    return "differ in length"


ARGS = {"check": 2, "train-plan": 2, "winners-plan": 2, "search-plan": (2, 3), "restore": 3, "archive": 4}


def main(argv):
    cmd = argv[1] if len(argv) > 1 else None
    want = ARGS.get(cmd)
    if want is None or len(argv) - 2 not in (want if isinstance(want, tuple) else (want,)):
        print(__doc__, file=sys.stderr)
        return 2
    set_path, out = argv[2], argv[3]
    try:
        s = load_set(set_path)
        if cmd == "check":
            print(f"{s['set']['name']}: {sum(1 for _ in train_runs(s, out))} training runs, "
                  f"{len(_planned_searches(s, out))} searches")
        elif cmd == "train-plan":
            for rd, label, ov in train_runs(s, out, ordered=True):
                print("\t".join([rd, label] + ov))
        elif cmd == "winners-plan":
            for rd, label, ov in winner_runs(s, out):
                print("\t".join([rd, label] + ov))
        elif cmd == "search-plan":
            for rd, sd, tf in search_runs(s, out, argv[4] if len(argv) > 4 else None):
                print("\t".join([rd, sd, tf] + list(s["search"]["args"])))
        elif cmd == "restore":
            n = Archive(s, out, argv[4]).restore()
            print(f"expset.py: {n} run(s) restored from {argv[4]}", file=sys.stderr)
        else:
            if Archive(s, out, argv[4]).archive(argv[5]):
                print(f"expset.py: archived {os.path.relpath(argv[5], out)}", file=sys.stderr)
    except (SetError, OSError, KeyError, ValueError) as e:
        print(f"expset.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
