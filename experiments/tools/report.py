#!/usr/bin/python3
"""Gathers an experiment set's runs into CSVs, gnuplot PNGs and report.md.

  report.py SET_FILE OUT      reads OUT/runs, OUT/search; writes OUT/report/

Standard library only. Every number in report.md is computed here from the run folders
(summary.json, metrics.jsonl) and the searcher's results.csv; nothing is typed by hand.
What each CSV holds is listed in report.md's "Files" section.
"""

import collections
import csv
import datetime
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tomllib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expset  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# One comparison behind a verdict (a row of claims.csv, which gets every field but `pair`). pair: the
# two methods an accuracy comparison sets against each other, (reference side, baseline side), so the
# report names them without parsing the claim's name; None for cost and ablation rows.
Claim = collections.namedtuple("Claim", "claim alpha subject verdict ref_value other_value diff rule seeds pair",
                               defaults=(None,))

# ----------------------------------------------------------------------------- loading


def load_run(path):
    """summary.json and metrics.jsonl of a finished run, or None if it is not finished."""
    sp = os.path.join(path, "summary.json")
    if not os.path.isfile(sp):
        return None
    with open(sp) as f:
        summary = json.load(f)
    metrics = []
    mp = os.path.join(path, "metrics.jsonl")
    if os.path.isfile(mp):
        with open(mp) as f:
            metrics = [json.loads(line) for line in f if line.strip()]
    return {"summary": summary, "metrics": metrics, "machine": load_machine(path)}


def load_machine(path):
    """machine.json run.sh wrote into a run or search folder (None for older folders)."""
    mp = os.path.join(path, "machine.json")
    if not os.path.isfile(mp):
        return None
    with open(mp) as f:
        return json.load(f)


def report_machine_text(m):
    return f"{m.get('nproc', '?')} cores, {m.get('cpu', '?')}, {m.get('memory', '?')}, {m.get('uname', '?')}"


def run_cost(run):
    m = run["metrics"]
    return {
        "rounds": len(m),
        "train_macs": sum(r.get("train_macs", 0) for r in m),
        "bytes_sent": sum(r.get("bytes_sent", 0) for r in m),
        "bytes_received": sum(r.get("bytes_received", 0) for r in m),
        "wall_s": float(run["summary"].get("wall_s", 0.0)),
    }


def toml_value(text):
    """The value of a --set override as sfn-sim reads it (TOML, else a bare string)."""
    try:
        return tomllib.loads("v = " + text)["v"]
    except tomllib.TOMLDecodeError:
        return text


def effective_config(s, method):
    """The base config with the set's and the method's overrides applied (for the report)."""
    with open(s["set"]["config_path"], "rb") as f:
        cfg = tomllib.load(f)
    for o in list(s["set"]["overrides"]) + list(method["overrides"]):
        key, _, value = o.partition("=")
        table, _, name = key.partition(".")
        cfg.setdefault(table, {})[name] = toml_value(value)
    cfg.setdefault("run", {})["rounds"] = s["set"]["rounds"]
    return cfg


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], 0.0
    return statistics.fmean(values), statistics.stdev(values)


def pct(x, digits=2):
    return "–" if x is None else f"{100.0 * x:.{digits}f}"


def fmt_pm(mean, std, n, digits=2):
    if mean is None:
        return "–"
    if n > 1:
        return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}"
    return f"{100 * mean:.{digits}f}"


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in r])


# ----------------------------------------------------------------------------- gathering


def read_wall(sd):
    """Wall seconds of a search as timed by run.sh (None if unknown)."""
    wp = os.path.join(sd, "wall_s.txt")
    if not os.path.isfile(wp):
        return None
    with open(wp) as f:
        text = f.read().strip()
    return float(text) if text else None


def search_cost(sd):
    """Server-side compute of one sfn-search: forward MACs of every SubNet it scored times the
    validation images it scored them on (from its own evaluated.csv and results.json)."""
    out = {"evaluations": None, "search_macs": None}
    jp, ep = os.path.join(sd, "results.json"), os.path.join(sd, "evaluated.csv")
    if not os.path.isfile(jp):
        return out
    with open(jp) as f:
        rj = json.load(f)
    out["evaluations"] = rj.get("evaluations")
    val_samples = rj.get("options", {}).get("val_samples")
    if val_samples and os.path.isfile(ep):
        with open(ep, newline="") as f:
            out["search_macs"] = sum(int(float(r["macs"])) for r in csv.DictReader(f)) * int(val_samples)
    return out


class Gathered:
    def __init__(self, s, out):
        self.s = s
        self.out = out
        self.targets = s["target"]
        self.methods = {m["name"]: m for m in s["method"]}
        self.runs = []  # dicts: method, role, alpha, seed, target, source, dir, run, cost
        self.missing = []  # (label, method, alpha) of planned runs without summary.json
        self.final = []  # final accuracy rows
        self.searches = []  # dicts: method, alpha, seed, dir, rows, wall_s
        self.search_missing = os.path.isfile(os.path.join(out, "search-missing"))
        self._gather()

    def _add_run(self, rd, label, method, alpha, seed, target, source, aliases=()):
        """aliases: more names for a per-target run's SubNet (targets whose search found it)."""
        run = load_run(rd)
        if run is None:
            self.missing.append((label, method, alpha))
            return
        m = self.methods[method]
        rec = {"method": method, "role": m["role"], "alpha": alpha, "seed": seed, "target": target,
               "source": source, "dir": rd, "run": run, "cost": run_cost(run)}
        self.runs.append(rec)
        final = run["summary"].get("final", [])
        pairs = list(zip(self.target_names(target), final))
        pairs += [(name, pairs[0][1]) for name in aliases if pairs]
        for name, r in pairs:
            self.final.append({"method": method, "subnet_name": name, "source": source,
                               "subnet": r["subnet"], "macs": int(r["macs"]), "params": int(r["params"]),
                               "alpha": alpha, "seed": seed, "val": float(r["val_accuracy"]),
                               "test": float(r["test_accuracy"])})

    def target_names(self, target):
        """The names of the SubNets a run trained, in the order of its summary's `final` list:
        every target for a SuperNet run, its own target for a per-target run."""
        return [t["name"] for t in self.targets] if target is None else [target]

    def _gather(self):
        s, out = self.s, self.out
        tnames = {t["name"] for t in self.targets}
        for rd, label, _ in expset.train_runs(s, out):
            parts = label.split("/")
            method, alpha, seed = parts[0], float(parts[1][1:]), int(parts[2][1:])
            target = parts[3] if len(parts) > 3 else None
            assert target is None or target in tnames
            self._add_run(rd, label, method, alpha, seed, target, "fixed")
        for m in s["method"]:
            for alpha, seed in expset.searched_cells(s, m):
                sd = expset.search_dir(out, m["name"], alpha, seed)
                rows = expset.read_search_results(sd)
                if rows is None:
                    continue
                self.searches.append({"method": m["name"], "alpha": alpha, "seed": seed, "dir": sd,
                                      "rows": rows, "wall_s": read_wall(sd), **search_cost(sd),
                                      "targets": len(rows), "machine": load_machine(sd)})
                for r in rows:
                    if r["test_accuracy"] is None or r["macs"] is None:
                        continue
                    self.final.append({"method": m["name"], "subnet_name": r["target"], "source": "search",
                                       "subnet": r["subnet"] or "", "macs": int(float(r["macs"])),
                                       "params": int(float(r["params"] or 0)), "alpha": alpha, "seed": seed,
                                       "val": float(r["val_accuracy"] or "nan"),
                                       "test": float(r["test_accuracy"])})
        self.cost_search = None
        cell = expset.cost_search_cell(s)
        if cell is not None:
            sd = expset.cost_search_dir(out, *cell)
            rows = expset.read_search_results(sd)
            if rows is not None:
                self.cost_search = {"method": cell[0], "alpha": cell[1], "seed": cell[2], "targets": len(rows),
                                    "wall_s": read_wall(sd), **search_cost(sd), "machine": load_machine(sd)}
        aliases = expset.winner_aliases(s, out)
        for rd, label, _ in expset.winner_runs(s, out):
            parts = label.split("/")
            self._add_run(rd, label, parts[0], float(parts[1][1:]), int(parts[2][1:]), parts[3], "search",
                          aliases.get(rd, []))

    # Accuracy rows grouped over seeds.
    def summary_rows(self):
        groups = {}
        for r in self.final:
            key = (r["method"], r["subnet_name"], r["source"], r["alpha"])
            groups.setdefault(key, []).append(r)
        rows = []
        for (method, name, source, alpha), rs in groups.items():
            rs.sort(key=lambda r: r["seed"])
            tm, ts = mean_std([r["test"] for r in rs])
            vm, vs = mean_std([r["val"] for r in rs if not math.isnan(r["val"])])
            rows.append({"method": method, "subnet_name": name, "source": source, "alpha": alpha,
                         "macs": statistics.fmean(r["macs"] for r in rs),
                         "params": statistics.fmean(r["params"] for r in rs), "n": len(rs),
                         "seeds": " ".join(str(r["seed"]) for r in rs), "test_mean": tm, "test_std": ts,
                         "val_mean": vm, "val_std": vs, "by_seed": {r["seed"]: r["test"] for r in rs}})
        order = {m["name"]: i for i, m in enumerate(self.s["method"])}
        rows.sort(key=lambda r: (r["alpha"], order.get(r["method"], 99), r["source"], r["macs"]))
        return rows

    def pending(self, methods, alpha):
        """Whether a planned run of any of these methods at this alpha is still missing: a
        verdict over them can still change (another target may fail, another seed moves a mean)."""
        return any(m in methods and a == alpha for _label, m, a in self.missing)

    def alphas(self):
        return sorted({r["alpha"] for r in self.runs})

    def machines(self):
        """{machine text: number of runs and searches} over the folders that recorded one."""
        found = {}
        for x in [r["run"] for r in self.runs] + self.searches + ([self.cost_search] if self.cost_search else []):
            if x.get("machine"):
                key = report_machine_text(x["machine"])
                found[key] = found.get(key, 0) + 1
        return found

    def training_costs(self):
        """Per (method, alpha, seed): the cost of producing that method's fixed-target models."""
        groups = {}
        for r in self.runs:
            if r["source"] != "fixed":
                continue
            key = (r["method"], r["alpha"], r["seed"])
            g = groups.setdefault(key, {"train_macs": 0, "bytes": 0, "wall_s": 0.0, "runs": 0})
            g["train_macs"] += r["cost"]["train_macs"]
            g["bytes"] += r["cost"]["bytes_sent"] + r["cost"]["bytes_received"]
            g["wall_s"] += r["cost"]["wall_s"]
            g["runs"] += 1
        return groups


# ----------------------------------------------------------------------------- claims


def seeds_text(compared):
    """'MinNet: 1 2 3; Mid1: 1' (claims.csv)."""
    return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (compared or {}).items())


def n_text(compared):
    """Seed counts behind a claim: 'n = 3', or 'n = 3 (MinNet, MaxNet), 1 (Mid1, Mid2)'."""
    if not compared:
        return "–"
    by_n = {}
    for k, v in compared.items():
        by_n.setdefault(len(v), []).append(k)
    if len(by_n) == 1:
        return f"n = {next(iter(by_n))}"
    return "n = " + ", ".join(f"{n} ({', '.join(ks)})" for n, ks in sorted(by_n.items(), reverse=True))


def claims(g, summary, cvt):
    """Claim rows (cvt: cost_vs_targets(g)); seeds: {target or winner: the seeds whose runs were
    compared} (None for cost claims)."""
    by = {(r["method"], r["subnet_name"], r["source"], r["alpha"]): r for r in summary}
    return accuracy_claims(g, by, summary) + cost_claims(g, cvt) + ablation_claims(g, by)


def accuracy_claims(g, by, summary):
    """C1 and its forms: at equal rounds, at equal compute, in the longer regime, with variants."""
    rep = g.s["report"]
    ref, base = rep["reference"], rep["baseline"]
    tol = float(rep["tolerance_pp"])
    out = []
    # C1: SuperFedNAS SubNets as accurate as or better than iFedAvg, per fixed target.
    rule1 = (f"{ref} mean test accuracy >= {base} mean - {tol:g} pp for every fixed target and every searched "
             f"winner that {base} also trained (means over the seeds both ran)")
    for alpha in g.alphas():
        out += c1_rows(g, by, summary, "C1 accuracy vs iFedAvg", ref, alpha, rule1, winners=True)
    # C1 at equal compute: the same comparison for a longer SuperFedNAS training whose one run
    # costs as many client MACs as the baseline's trainings of all fixed targets.
    eq = rep.get("equal_compute")
    if eq:
        rule1e = (f"{eq} (SuperFedNAS with the client compute of {base}'s {len(g.targets)} fixed-target "
                  f"trainings) mean test accuracy >= {base} mean - {tol:g} pp for every fixed target")
        for alpha in g.alphas():
            out += c1_rows(g, by, summary, "C1 at equal compute", eq, alpha, rule1e, winners=False)
        out += equal_compute_cost_rows(g, eq, base)
    # C1 at equal rounds in the longer regime: both trained for the same, larger, number of rounds.
    if rep.get("long_rounds"):
        lref, lbase = rep["long_rounds"]
        rule1l = (f"{lref} mean test accuracy >= {lbase} mean - {tol:g} pp for every fixed target "
                  f"{lbase} trained (both at {rounds_of(g, lref)} rounds)")
        for alpha in g.alphas():
            out += c1_rows(g, by, summary, f"C1 at equal rounds, {rounds_of(g, lref)} rounds", lref, alpha,
                           rule1l, winners=False, base=lbase)
    # C1 for variants of the method that the evidence suggests: would the claim hold with them?
    for v in rep["variants"]:
        rule1v = (f"{v} (a variant, not the authors' method) mean test accuracy >= {base} mean - {tol:g} pp "
                  "for every fixed target (means over the seeds both ran)")
        for alpha in g.alphas():
            out += c1_rows(g, by, summary, f"C1 with variant {v}", v, alpha, rule1v, winners=False)
    return out


def cost_claims(g, cvt):
    """C2: cost flat in the number of targets for SuperFedNAS, linear for iFedAvg."""
    s = g.s
    ref, base = s["report"]["reference"], s["report"]["baseline"]
    if not cvt:
        return []
    rule2 = ("one SuperFedNAS training serves every target (flat); iFedAvg needs one training per target; "
             f"reproduced if iFedAvg's cost exceeds SuperFedNAS's within 1..{s['cost']['max_targets']} targets")
    out = []
    for unit, key in (("client training TMACs", "train_tmacs"), ("GB communicated", "comm_gb")):
        refc = [r for r in cvt if r["method"] == ref]
        basec = [r for r in cvt if r["method"] == base]
        if not refc or not basec:
            continue
        flat = max(r[key] for r in refc) == min(r[key] for r in refc)
        cross = next((r["n"] for r in basec if r[key] > refc[0][key]), None)
        out.append(Claim("C2 cost vs number of targets", s["set"]["headline_alpha"], unit,
                         "reproduced" if flat and cross is not None else "not reproduced",
                         refc[0][key], basec[-1][key], cross,
                         rule2 + "; break-even N = the smallest N at which iFedAvg costs more", None))
    # With the server's search compute added, at the largest N where it was measured.
    measured = [r for r in cvt if r["method"] == ref + "+search"]
    nmax = max((r["n"] for r in measured), default=0)
    a = next((r for r in measured if r["n"] == nmax), None)
    b = next((r for r in cvt if r["method"] == base and r["n"] == nmax), None)
    if a and b:
        out.append(Claim("C2 cost vs number of targets", s["set"]["headline_alpha"],
                         f"training + search TMACs at N={nmax}",
                         "reproduced" if a["train_tmacs"] < b["train_tmacs"] else "not reproduced",
                         a["train_tmacs"], b["train_tmacs"], None,
                         f"with search: reproduced if {ref} training + its measured {nmax}-target search "
                         f"costs fewer TMACs than {nmax} {base} trainings", None))
    return out


def ablation_claims(g, by):
    """C3: ablations are worse than SuperFedNAS (mean over fixed targets, common seeds)."""
    rep = g.s["report"]
    ref, noise = rep["reference"], float(rep["noise_pp"])
    rule3 = (f"{ref} mean test accuracy over the fixed targets minus the ablation's (common seeds): "
             f"> {noise:g} pp reproduced, within ±{noise:g} pp inconclusive, < -{noise:g} pp not reproduced")
    out = []
    for abl in rep["ablations"]:
        for alpha in g.alphas():
            ra_all, rb_all = [], []
            compared = {}
            for t in g.targets:
                a, b = by.get((ref, t["name"], "fixed", alpha)), by.get((abl, t["name"], "fixed", alpha))
                if not a or not b:
                    continue
                seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]))
                if seeds:
                    compared[t["name"]] = seeds
                ra_all += [a["by_seed"][x] for x in seeds]
                rb_all += [b["by_seed"][x] for x in seeds]
            if not ra_all:
                continue
            d = 100 * (statistics.fmean(ra_all) - statistics.fmean(rb_all))
            verdict = "reproduced" if d > noise else ("inconclusive" if d >= -noise else "not reproduced")
            if g.pending((ref, abl), alpha):
                verdict = "incomplete"
            out.append(Claim(f"C3 ablation {abl} is worse", alpha, "mean over fixed targets", verdict,
                             100 * statistics.fmean(ra_all), 100 * statistics.fmean(rb_all), d, rule3, compared))
    return out


def c1_rows(g, by, summary, claim, ref, alpha, rule, winners, base=None):
    """Per fixed target (and, with winners, per searched winner the baseline also trained):
    ref's mean test accuracy against base's (default: the set's baseline) over the seeds both
    ran, then one ALL row."""
    base = base or g.s["report"]["baseline"]
    tol = float(g.s["report"]["tolerance_pp"])
    out, diffs, compared = [], [], {}

    def compare(subject, key, a, b):
        seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]))
        if not seeds:
            return
        ra = statistics.fmean(a["by_seed"][x] for x in seeds)
        rb = statistics.fmean(b["by_seed"][x] for x in seeds)
        d = 100 * (ra - rb)
        diffs.append(d)
        compared[key] = seeds
        out.append(Claim(claim, alpha, subject, "holds" if d >= -tol else "fails", 100 * ra, 100 * rb, d, rule,
                         {key: seeds}, (ref, base)))

    for t in g.targets:
        a, b = by.get((ref, t["name"], "fixed", alpha)), by.get((base, t["name"], "fixed", alpha))
        if a and b:
            seeds = sorted(set(a["by_seed"]) & set(b["by_seed"]))
            compare(f"{t['name']} (seeds {' '.join(map(str, seeds))})", t["name"], a, b)
    for r in summary if winners else []:
        if r["method"] != ref or r["source"] != "search" or r["alpha"] != alpha:
            continue
        b = by.get((base, expset.winner_target(r["subnet_name"]), "search", alpha))
        if b:
            compare(f"winner {r['subnet_name']}", "winner " + r["subnet_name"], r, b)
    if diffs:
        verdict = "reproduced" if all(d >= -tol for d in diffs) else "not reproduced"
        if g.pending((ref, base), alpha):
            verdict = "incomplete"
        out.append(Claim(claim, alpha, "ALL", verdict, None, None, min(diffs), rule, compared, (ref, base)))
    return out


def rounds_of(g, method):
    """The rounds a method trains for: its run.rounds override, else the set's."""
    rounds = g.s["set"]["rounds"]
    for o in g.methods[method]["overrides"]:
        if o.startswith("run.rounds="):
            rounds = int(o.split("=", 1)[1])
    return rounds


def equal_compute_cost_rows(g, eq, base):
    """The compute behind the equal-compute claim, per alpha and seed where the baseline trained
    every fixed target: eq's client training TMACs against the sum of the baseline's."""
    costs = g.training_costs()
    out = []
    for (m, alpha, seed), c in sorted(costs.items()):
        b = costs.get((base, alpha, seed))
        if m != eq or not b or b["runs"] != len(g.targets):
            continue
        a_t, b_t = c["train_macs"] / 1e12, b["train_macs"] / 1e12
        out.append(Claim("C1 at equal compute", alpha, f"client training TMACs (seed {seed})",
                         "holds" if a_t <= 1.05 * b_t else "fails", a_t, b_t, 100 * (a_t / b_t - 1),
                         f"the comparison is at equal compute if {eq}'s one training costs at most 5 % more "
                         f"client MACs than {base}'s {len(g.targets)} trainings (difference in %)", None))
    return out


def run_mean(runs, value):
    """Mean of value(run) over the targets of runs, each target weighted once: a target with
    more seeds (all_targets_seeds) must not pull the mean towards its size."""
    by_target = {}
    for r in runs:
        by_target.setdefault(r["target"], []).append(value(r))
    return statistics.fmean(statistics.fmean(v) for v in by_target.values())


def cost_vs_targets(g):
    """Cost of serving N targets at the headline alpha, N = 1..max_targets.

    Reference (SuperFedNAS): one training serves every N, so its measured cost (mean over
    seeds) is the same for all N. Baseline (iFedAvg): N trainings; each is the mean over the
    fixed targets (MinNet..MaxNet) of each target's mean run over its seeds, so cost(N) = N x
    that mean; at N = number of fixed targets the sum of the actual runs of the seeds that
    trained every target is given as a separate point.
    """
    s = g.s
    alpha = float(s["set"]["headline_alpha"])
    ref, base = s["report"]["reference"], s["report"]["baseline"]
    ref_runs = [r for r in g.runs if r["method"] == ref and r["alpha"] == alpha and r["source"] == "fixed"]
    base_runs = [r for r in g.runs if r["method"] == base and r["alpha"] == alpha and r["source"] == "fixed"]
    if not ref_runs or not base_runs:
        return []
    tm = lambda rs: run_mean(rs, lambda r: r["cost"]["train_macs"]) / 1e12  # noqa: E731
    gb = lambda rs: run_mean(rs, lambda r: r["cost"]["bytes_sent"] + r["cost"]["bytes_received"]) / 1e9  # noqa: E731
    rows = []
    for n in range(1, int(s["cost"]["max_targets"]) + 1):
        rows.append({"n": n, "method": ref, "train_tmacs": tm(ref_runs), "comm_gb": gb(ref_runs),
                     "basis": f"measured: mean of {len(ref_runs)} run(s), one training for all N"})
    for n in range(1, int(s["cost"]["max_targets"]) + 1):
        rows.append({"n": n, "method": base, "train_tmacs": n * tm(base_runs), "comm_gb": n * gb(base_runs),
                     "basis": f"N x mean over the {len({r['target'] for r in base_runs})} targets of each "
                              f"target's mean measured run ({len(base_runs)} runs)"})
    # Training + search, only where the search cost was measured: the set's K budget targets
    # (mean over the searched seeds) and one search for max_targets targets.
    searched = [x for x in g.searches if x["method"] == ref and x["alpha"] == alpha and x["search_macs"]]
    if searched:
        rows.append({"n": searched[0]["targets"], "method": ref + "+search",
                     "train_tmacs": tm(ref_runs) + statistics.fmean(x["search_macs"] for x in searched) / 1e12,
                     "comm_gb": gb(ref_runs),
                     "basis": f"measured: training + server search forward MACs for {searched[0]['targets']} "
                              f"targets (mean of {len(searched)} search(es))"})
    cs = g.cost_search
    if cs and cs["search_macs"] and cs["alpha"] == alpha:
        rows.append({"n": cs["targets"], "method": ref + "+search",
                     "train_tmacs": tm(ref_runs) + cs["search_macs"] / 1e12, "comm_gb": gb(ref_runs),
                     "basis": f"measured: training + server search forward MACs for {cs['targets']} targets "
                              f"(one search, seed {cs['seed']})"})
    seeds = sorted({r["seed"] for r in base_runs})
    k = len(g.targets)
    per_seed = [[r for r in base_runs if r["seed"] == sd] for sd in seeds]
    per_seed = [rs for rs in per_seed if len(rs) == k]
    if per_seed:
        rows.append({"n": k, "method": base + "-measured-sum",
                     "train_tmacs": statistics.fmean(sum(r["cost"]["train_macs"] for r in rs) for rs in per_seed) / 1e12,
                     "comm_gb": statistics.fmean(sum(r["cost"]["bytes_sent"] + r["cost"]["bytes_received"]
                                                     for r in rs) for rs in per_seed) / 1e9,
                     "basis": f"measured: sum of the {k} fixed-target runs (mean over {len(per_seed)} seed(s))"})
    return rows


# ----------------------------------------------------------------------------- plots


def gnuplot_terminal():
    try:
        res = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = res.stdout + res.stderr
    return "pngcairo" if "pngcairo" in text else ("png" if " png " in text else None)


def datablock(name, rows):
    lines = [f"${name} << EOD"] + [" ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in r)
                                  for r in rows] + ["EOD"]
    return "\n".join(lines)


def render(gp_path, script, term):
    with open(gp_path, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", gp_path], check=True, timeout=120, cwd=os.path.dirname(gp_path))


def plots(g, summary, cvt, rdir, term):
    """Draws every plot with gnuplot; returns the PNG names made (none without a terminal)."""
    if term is None:
        return []
    head = f"set terminal {term} size 1000,640 font ',11'\nset grid\nset key outside right top\n"
    methods = [m["name"] for m in g.s["method"]]
    # One colour per method in every plot (colour-blind-safe palette, then greys).
    palette = ["#9400d3", "#56b4e9", "#e69f00", "#009e73", "#d55e00", "#0072b2", "#cc79a7", "#555555", "#999999"]
    color = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    made = [accuracy_vs_macs_plot(g, summary, alpha, head, color, rdir, term) for alpha in g.alphas()]
    made.append(cost_plot(g, cvt, head, rdir, term))
    # Validation accuracy per round, per alpha (headline first): one panel per fixed target.
    made += [round_plot(g, alpha, methods, color, rdir, term) for alpha in alphas_headline_first(g)]
    return [name for name in made if name]


def accuracy_vs_macs_plot(g, summary, alpha, head, color, rdir, term):
    """Test accuracy vs MACs at one alpha, per method (fixed targets and searched winners); the
    PNG name, or None without rows."""
    blocks, plotcmds = [], []
    i = 0
    for method in color:  # the set's methods, in its order
        for source, label_suffix, pt in (("fixed", "fixed targets", 7), ("search", "searched winners", 5)):
            rows = [r for r in summary if r["method"] == method and r["alpha"] == alpha and r["source"] == source]
            if not rows:
                continue
            rows.sort(key=lambda r: r["macs"])
            i += 1
            blocks.append(datablock(f"d{i}", [(r["macs"] / 1e6, 100 * r["test_mean"], 100 * r["test_std"])
                                              for r in rows]))
            style = "yerrorlines" if source == "fixed" else "yerrorbars"
            plotcmds.append(f"$d{i} using 1:2:3 with {style} lw 2 pt {pt} ps 1.3 lc rgb '{color[method]}' "
                            f"title '{method} ({label_suffix}, {n_range([r['n'] for r in rows])})'")
    if not plotcmds:
        return None
    name = f"accuracy_vs_macs_a{expset.alpha_tag(alpha)}"
    script = (head + "\n".join(blocks) + f"\nset output '{name}.png'\n"
              f"set title 'Fashion-MNIST test accuracy vs MACs, Dirichlet alpha {alpha:g} (mean ± std over seeds)'\n"
              "set xlabel 'forward MACs per image (millions)'\nset ylabel 'test accuracy (%)'\n"
              "plot " + ", \\\n     ".join(plotcmds) + "\n")
    render(os.path.join(rdir, name + ".gp"), script, term)
    return name + ".png"


def cost_plot(g, cvt, head, rdir, term):
    """Training TMACs and GB communicated vs the number of targets; the PNG name, or None."""
    if not cvt:
        return None
    ref, base = g.s["report"]["reference"], g.s["report"]["baseline"]
    # Fixed colours, so a series looks the same in both panels.
    series = [(ref, "lines lw 3 lc rgb '#9400d3'"),
              (ref + "+search", "linespoints lw 2 dt 2 pt 5 ps 1.5 lc rgb '#009e73'"),
              (base, "linespoints lw 2 pt 7 lc rgb '#56b4e9'"),
              (base + "-measured-sum", "points pt 9 ps 2.5 lc rgb '#e69f00'")]
    titles = {ref: f"{ref}: one training", ref + "+search": f"{ref}: training + search",
              base: f"{base}: N x mean run", base + "-measured-sum": f"{base}: sum of measured runs"}
    blocks, tm_cmds, gb_cmds = [], [], []
    for i, (method, style) in enumerate(series):
        rows = sorted((r for r in cvt if r["method"] == method), key=lambda r: r["n"])
        if not rows:
            continue
        blocks.append(datablock(f"c{i}", [(r["n"], r["train_tmacs"], r["comm_gb"]) for r in rows]))
        tm_cmds.append(f"$c{i} using 1:2 with {style} title '{titles[method]}'")
        if method != ref + "+search":  # the search sends nothing
            gb_cmds.append(f"$c{i} using 1:3 with {style} notitle")
    name = "cost_vs_targets"
    script = (head.replace("size 1000,640", "size 1100,520") + "\n".join(blocks) +
              f"\nset output '{name}.png'\nset key top left inside font ',10'\nset multiplot layout 1,2 "
              f"title 'Cost of serving N deployment targets (alpha {g.s['set']['headline_alpha']:g})'\n"
              "set xlabel 'number of targets N'\nset ylabel 'training TMACs (clients; + server search)'\n"
              "set yrange [0:*]\n"
              f"set xrange [0:{int(g.s['cost']['max_targets']) + 1}]\n"
              "plot " + ", ".join(tm_cmds) + "\n"
              "set ylabel 'GB communicated (down + up)'\n"
              "plot " + ", ".join(gb_cmds) + "\nunset multiplot\n")
    render(os.path.join(rdir, name + ".gp"), script, term)
    return name + ".png"


def alphas_headline_first(g):
    head = float(g.s["set"]["headline_alpha"])
    return sorted(g.alphas(), key=lambda a: (a != head, a))


def round_plot(g, alpha, methods, color, rdir, term):
    """Validation accuracy per round at one alpha, one panel per fixed target; the PNG's name,
    or None when no run of that alpha has periodic evaluations."""
    curves = round_curves(g, alpha)
    blocks, panels = [], []
    for t in g.targets:
        cmds = []
        for method in methods:
            pts, n = curves.get((method, t["name"]), (None, 0))
            if not pts:
                continue
            bname = f"r{len(blocks)}"
            blocks.append(datablock(bname, [(rnd, 100 * v) for rnd, v in pts]))
            cmds.append(f"${bname} using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb '{color[method]}' "
                        f"title '{method} (n={n})'")
        if cmds:
            panels.append((t["name"], cmds))
    if not panels:
        return None
    rows_n = (len(panels) + 1) // 2
    name = f"accuracy_per_round_a{expset.alpha_tag(alpha)}"
    script = (f"set terminal {term} size 1200,{420 * rows_n} font ',10'\nset grid\n" + "\n".join(blocks) +
              f"\nset output '{name}.png'\nset key bottom right inside font ',9'\n"
              f"set multiplot layout {rows_n},2 title 'Validation accuracy per round, alpha {alpha:g} "
              "(mean over seeds)'\nset xlabel 'round'\nset ylabel 'validation accuracy (%)'\n")
    script += "set xtics 1\n" if g.s["set"]["rounds"] <= 15 else ""
    for i, (title, cmds) in enumerate(panels):
        script += f"set title '{title}'\n" + ("" if i == 0 else "unset key\n")
        script += "plot " + ", ".join(cmds) + "\n"
    script += "unset multiplot\n"
    render(os.path.join(rdir, name + ".gp"), script, term)
    return name + ".png"


def round_rows(g):
    """(method, subnet_name, alpha, seed, round, val_accuracy) from metrics.jsonl evals."""
    rows = []
    for r in g.runs:
        if r["source"] != "fixed":
            continue
        names = g.target_names(r["target"])
        last = 0
        for m in r["run"]["metrics"]:
            for name, e in zip(names, m.get("evals", [])):
                last = int(m["round"]) + 1
                rows.append((r["method"], name, r["alpha"], r["seed"], last, float(e["accuracy"])))
        # sfn-sim's final validation accuracy is the last round's, whether or not eval.every
        # hit it: sets can skip the periodic evaluation of the last round and still plot it.
        done = len(r["run"]["metrics"])
        if done > last:
            for name, e in zip(names, r["run"]["summary"].get("final", [])):
                rows.append((r["method"], name, r["alpha"], r["seed"], done, float(e["val_accuracy"])))
    return rows


def round_curves(g, alpha):
    """{(method, SubNet name): ([(round, mean validation accuracy)], number of seeds)}."""
    acc, seeds = {}, {}
    for method, name, a, seed, rnd, v in round_rows(g):
        if a == alpha:
            acc.setdefault((method, name), {}).setdefault(rnd, []).append(v)
            seeds.setdefault((method, name), set()).add(seed)
    return {k: (sorted((rnd, statistics.fmean(vs)) for rnd, vs in d.items()), len(seeds[k])) for k, d in acc.items()}


def first_quarter(rounds):
    """How many rounds the evidence tables call a run's first quarter (at least one)."""
    return max(1, rounds // 4)


def diagnosis_rows(g):
    """Evidence for why methods differ, per alpha (headline first) and method (fixed-target
    runs): the MaxNet weight beta at round 0, the effective number of clients per round
    (1 / sum w^2, from metrics.jsonl) over the first quarter of the rounds and over all, and
    MinNet's and MaxNet's validation accuracy at the first evaluation, halfway and at the end
    (means over seeds). A run where one client's update dominates the merge learns like one
    client."""
    names = [t["name"] for t in g.targets]
    small, large = names[0], names[-1]
    rows = []
    for alpha in alphas_headline_first(g):
        curves = round_curves(g, alpha)
        for m in g.s["method"]:
            runs = [r for r in g.runs if r["method"] == m["name"] and r["alpha"] == alpha and r["source"] == "fixed"]
            metrics = [r["run"]["metrics"] for r in runs if r["run"]["metrics"]]
            if metrics:
                rows.append(diagnosis_row(m["name"], alpha, metrics, curves, (small, large)))
    header = ["method", "alpha", "rounds", "beta at round 0", "effective clients, first quarter",
              "effective clients, all rounds", f"{small} val % (first / half / end)",
              f"{large} val % (first / half / end)"]
    return header, rows


def diagnosis_row(method, alpha, metrics, curves, subnets):
    """One row of diagnosis_rows: `metrics` holds each seed's metrics.jsonl rows."""
    rounds = max(len(x) for x in metrics)
    early = [x.get("effective_clients") for ms in metrics for x in ms[:first_quarter(rounds)]]
    every = [x.get("effective_clients") for ms in metrics for x in ms]
    beta0 = [ms[0].get("beta") for ms in metrics if ms[0].get("beta")]  # 0: no MaxNet weight
    cells = []
    for name in subnets:
        pts = curves.get((method, name), ([], 0))[0]
        if not pts:
            cells.append("–")
            continue
        mid = min(pts, key=lambda p: abs(p[0] - rounds / 2))
        cells.append(" / ".join(f"{100 * v:.1f} (r{rnd})" for rnd, v in (pts[0], mid, pts[-1])))
    eff = lambda xs: f"{statistics.fmean(xs):.2f}" if xs and None not in xs else "–"
    return [method, f"{alpha:g}", str(rounds), f"{statistics.fmean(beta0):.2f}" if beta0 else "none",
            eff(early), eff(every), *cells]


DRIFT_WINDOWS = ("first quarter", "second half")


def drift_records(g):
    """(method, alpha, seed, SubNet name, window, mean change RMS, updates): how far accepted
    client updates moved the weights they were sent (`change_rms` of each task in
    metrics.jsonl, RMS per element), per fixed-target run, grouped by the SubNet the client
    trained (a target's name, or "other") over the first quarter and the second half of the
    rounds. Runs recorded before sfn-sim logged change_rms are left out."""
    out = []
    for r in g.runs:
        metrics = r["run"]["metrics"]
        if r["source"] != "fixed" or not metrics:
            continue
        final = r["run"]["summary"].get("final", [])
        label = {x["subnet"]: n for n, x in zip(g.target_names(r["target"]), final)}
        rounds = len(metrics)
        spans = dict(zip(DRIFT_WINDOWS, (metrics[:first_quarter(rounds)], metrics[rounds // 2:])))
        for window, rows in spans.items():
            by = {}
            for t in (t for m in rows for t in m.get("tasks", [])):
                if t.get("status") == "accepted" and t.get("change_rms", -1.0) > 0:
                    by.setdefault(label.get(t["subnet"], "other"), []).append(float(t["change_rms"]))
            out += [(r["method"], r["alpha"], r["seed"], n, window, statistics.fmean(v), len(v))
                    for n, v in sorted(by.items())]
    return out


def drift_rows(records, g):
    """The report's drift table: per alpha (headline first) and method, each SubNet's mean
    update RMS (over seeds) in the first quarter / the second half of the rounds."""
    cols = [t["name"] for t in g.targets] + ["other"]
    cells, seeds = {}, {}
    for method, alpha, seed, name, window, v, _ in records:
        cells.setdefault((method, alpha, name, window), []).append(v)
        seeds.setdefault((method, alpha), set()).add(seed)
    present = [c for c in cols if any(k[2] == c for k in cells)]
    rows = []
    for alpha in alphas_headline_first(g):
        for m in g.s["method"]:
            row = [m["name"], f"{alpha:g}", str(len(seeds.get((m["name"], alpha), ())))]
            for c in present:
                vs = [cells.get((m["name"], alpha, c, w)) for w in DRIFT_WINDOWS]
                row.append(" / ".join(f"{statistics.fmean(v):.3f}" if v else "–" for v in vs))
            if any(c != "– / –" for c in row[3:]):
                rows.append(row)
    return ["method", "alpha", "seeds", *(f"{c} clients" for c in present)], rows


def drift_section(g, drift):
    """The report's client-drift paragraph and table from drift_records, or "" when no run
    logged change_rms."""
    header, rows = drift_rows(drift, g)
    if not rows:
        return ""
    return ("How far each SubNet's clients move the weights they are sent: the RMS per element of an accepted "
            "update's change (trained slice minus the SuperNet slice sent), mean over the clients that trained "
            "that SubNet, first quarter / second half of the rounds, means over the seeds whose runs logged it "
            "(`client_drift.csv`; runs by sfn-sim before git 43ced5a do not). Local training from weights that "
            "already suit the SubNet moves them little; a SubNet whose slice is shaped by the other SubNets' "
            "updates is moved far by its own clients every round, and their updates are then averaged with "
            "the others'.\n\n" + md_table(header, rows))


def n_range(ns):
    lo, hi = min(ns), max(ns)
    return f"n={lo}" if lo == hi else f"n={lo}-{hi}"


# ----------------------------------------------------------------------------- report


def method_seeds(s, m):
    """The alphas and seeds a method runs, with the targets of its later seeds if it limits them."""
    text = "; ".join(f"alpha {c['alpha']:g}: seeds {' '.join(map(str, c['seeds']))}" for c in s["grid"][m["grid"]])
    n = m.get("all_targets_seeds")
    if n is not None and any(len(c["seeds"]) > n for c in s["grid"][m["grid"]]):
        extra = ", ".join(m["extra_seed_targets"]) or "no target"
        text += f" (every target for the first {n} seed(s) of each alpha; later seeds: {extra} only)"
    return text


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def num(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def sig(x, digits=3):
    """Costs span orders of magnitude between sets: significant digits, not decimals."""
    return "–" if x is None else f"{x:.{digits}g}"


# What both documents say about the setup. machine: OUT/machine.json of the first session; config: the
# reference method's effective train, round, simulation, data and supernet tables.
SetupTexts = collections.namedtuple("SetupTexts",
                                    "machine machine_text config_text training_text compute_text config")


def setup_texts(g):
    """SetupTexts of the set's runs."""
    s = g.s
    meta = s["set"]
    machine = {}
    mp = os.path.join(g.out, "machine.json")
    if os.path.isfile(mp):
        with open(mp) as f:
            machine = json.load(f)
    cfg = effective_config(s, g.methods[s["report"]["reference"]])
    config = tuple(cfg.get(k, {}) for k in ("train", "round", "simulation", "data", "supernet"))
    tr, rd, sim, data, sn = config
    # The sessions' machines as the run and search folders recorded them; before that
    # record existed, the first session's machine (OUT/machine.json) stood for all.
    seen = g.machines()
    if len(seen) > 1:
        counted = [f"{k} ({n} {'run or search' if n == 1 else 'runs and searches'})"
                   for k, n in sorted(seen.items(), key=lambda kv: -kv[1])]
        machine_text = f"{len(seen)} machines (wall times are not comparable across them): " + "; ".join(counted)
    elif seen:
        machine_text = next(iter(seen))
    else:
        machine_text = report_machine_text(machine)
    training_text = (f"{meta['rounds']} rounds x {rd.get('clients_per_round', '?')} clients, "
                     f"{tr.get('epochs', '?')} local epoch(s), batch {tr.get('batch_size', '?')}, "
                     f"lr {tr.get('lr', '?')}, momentum {tr.get('momentum', '?')}")
    config_text = (f"{data.get('dataset', 'fmnist')} ({sim.get('clients', '?')} clients, "
                   f"{data.get('partition', 'dirichlet')} split), SuperNet preset `{sn.get('preset', 'fmnist')}`, "
                   + training_text)
    run_wall = sum(r["cost"]["wall_s"] for r in g.runs)
    all_searches = g.searches + ([g.cost_search] if g.cost_search else [])
    search_wall = sum(x["wall_s"] or 0.0 for x in all_searches)
    compute_text = (f"{len(g.runs)} training runs, {run_wall / 60:.1f} min of run wall time"
                    + (f", {len(all_searches)} searches, {search_wall / 60:.1f} min" if all_searches else ""))
    return SetupTexts(machine, machine_text, config_text, training_text, compute_text, config)


def setup_section(g, texts):
    """report.md's setup table and methods table."""
    s = g.s
    meta = s["set"]
    tr, _rd, sim, data, sn = texts.config
    setup = md_table(["item", "value"], [
        ["machine", texts.machine_text],
        ["runs started", f"{texts.machine.get('started', '?')} (git {texts.machine.get('git', '?')})"],
        ["set file", f"`experiments/sets/{os.path.basename(s['_path'])}`"],
        ["base config", f"`{os.path.relpath(meta['config_path'], REPO)}` + the set's overrides"],
        ["data", f"{data.get('dataset', 'fmnist')}, {sim.get('clients', '?')} clients, partition "
                 f"{data.get('partition', 'dirichlet')}, validation fraction {data.get('val_fraction', '?')}"],
        ["SuperNet", f"preset `{sn.get('preset', 'fmnist')}`"],
        ["training", f"{texts.training_text}, clip {tr.get('clip_grad_norm', '?')}"],
        ["evaluation", f"validation accuracy every {meta['eval_every']} rounds; final test accuracy on the "
                       "test set"],
        ["compute", texts.compute_text],
    ])
    mrows = [[m["name"], m["role"], "`" + " ".join(m["overrides"]) + "`", method_seeds(s, m)] for m in s["method"]]
    return setup + "\n\n" + md_table(["method", "runs", "sfn-sim overrides", "alphas and seeds"], mrows)


def warnings_section(g):
    """Runs left out: planned but unfinished, or searches that could not run."""
    warn = []
    if g.missing:
        warn.append(f"**Incomplete:** {len(g.missing)} planned run(s) have no `summary.json` and are left out: "
                    + ", ".join(f"`{x[0]}`" for x in g.missing[:20]) + (" ..." if len(g.missing) > 20 else ""))
    if g.search_missing:
        warn.append("**sfn-search was not built when the set ran:** searched-winner rows are left out.")
    return "\n\n".join(warn)


def evidence_section(g):
    """How each method learns (beta, effective clients, validation accuracy), or '' without rows."""
    dh, dr = diagnosis_rows(g)
    return ("From `metrics.jsonl`: beta is the MaxNet client's merge weight; effective clients per "
            "round is 1 / sum of the squared client weights (10 = all clients count equally, 1 = one "
            "client's update is the new SuperNet). Validation accuracy at the first evaluation, the "
            "one nearest half the rounds, and the last round; means over seeds.\n\n" +
            md_table(dh, dr)) if dr else ""


def claim_detail(g, c):
    """The 'numbers' cell of a verdict row."""
    s = g.s
    ref, base = s["report"]["reference"], s["report"]["baseline"]
    cost = c.claim.startswith("C2")
    if c.claim.startswith("C1") and c.subject != "ALL":
        return f"{sig(c.ref_value)} vs {base} {sig(c.other_value)} TMACs ({num(c.diff, 1)} %)"
    if c.pair:
        return f"smallest {c.pair[0]} - {c.pair[1]} difference over the targets: {num(c.diff)} pp"
    if cost and "search" in c.subject:
        return f"{ref} + search {sig(c.ref_value)} vs {base} {sig(c.other_value)}"
    if cost:
        return (f"{ref} {sig(c.ref_value)} at every N vs {base} {sig(c.other_value)} at "
                f"N={s['cost']['max_targets']}; break-even N = {c.diff if c.diff is not None else 'none'}")
    return f"{ref} {num(c.ref_value)} % vs {num(c.other_value)} %, difference {num(c.diff)} pp"


def claims_section(g, claim_rows):
    """The verdicts (one row per claim and alpha, plus the cost rows) and the rules behind them."""
    vrows = []
    for c in claim_rows:
        if (c.subject == "ALL" or c.claim.startswith("C2") or c.claim.startswith("C3")
                or "TMACs (seed" in c.subject):
            vrows.append([c.claim, f"{c.alpha:g}", c.subject, f"**{c.verdict}**", claim_detail(g, c),
                          n_text(c.seeds)])
    rules = []
    for c in claim_rows:
        if c.rule not in rules:
            rules.append(c.rule)
    return ((md_table(["claim", "alpha", "measure", "verdict", "numbers", "seeds compared"], vrows)
             if vrows
             else "No claim could be decided (runs missing).") + "\n\nComparison rules: " +
            " ".join(f"({i + 1}) {r}." for i, r in enumerate(rules)))


def accuracy_table(g, summary, alpha):
    """Final test accuracy per fixed target and method at one alpha, then the searched winners."""
    methods = [m["name"] for m in g.s["method"]]
    rows = []
    for t in g.targets:
        macs = next((r["macs"] for r in summary if r["subnet_name"] == t["name"] and r["alpha"] == alpha), None)
        params = next((r["params"] for r in summary if r["subnet_name"] == t["name"] and r["alpha"] == alpha),
                      None)
        cells = []
        for m in methods:
            r = next((x for x in summary if x["method"] == m and x["subnet_name"] == t["name"]
                      and x["alpha"] == alpha and x["source"] == "fixed"), None)
            cells.append(fmt_pm(r["test_mean"], r["test_std"], r["n"]) + f" (n={r['n']})" if r else "–")
        rows.append([t["name"], "–" if macs is None else f"{macs / 1e6:.2f}",
                     "–" if params is None else f"{params / 1e3:.0f}"] + cells)
    text = md_table(["SubNet", "MMACs", "k params"] + methods, rows)
    wins = [r for r in summary if r["source"] == "search" and r["alpha"] == alpha]
    if wins:
        wrows = [[r["method"], r["subnet_name"], f"{r['macs'] / 1e6:.2f}", f"{r['params'] / 1e3:.0f}",
                  fmt_pm(r["val_mean"], r["val_std"], r["n"]), fmt_pm(r["test_mean"], r["test_std"], r["n"]),
                  r["n"]] for r in wins]
        text += ("\n\nSearched winners (MACs-budget targets; MACs and accuracy are means over seeds; "
                 "`win-*` rows are the same SubNets trained alone by iFedAvg):\n\n" +
                 md_table(["method", "target", "MMACs", "k params", "val acc", "test acc", "n"], wrows))
    return text


def cost_methods_section(g, costs):
    """Cost of producing all fixed-target models, per method and alpha (mean over seeds)."""
    # A seed's cost counts only if it trained every fixed target: a per-target method's later
    # seeds may train a few (all_targets_seeds), which is not the cost of all of them.
    crow, partial = [], []
    agg = {}
    for (method, alpha, seed), c in costs.items():
        agg.setdefault((method, alpha), []).append((seed, c))
    order = {m["name"]: i for i, m in enumerate(g.s["method"])}
    for (method, alpha), scs in sorted(agg.items(), key=lambda kv: (kv[0][1], order.get(kv[0][0], 99))):
        need = 1 if g.methods[method]["role"] == "supernet" else len(g.targets)
        cs = [c for _, c in scs if c["runs"] == need]
        left = sorted(seed for seed, c in scs if c["runs"] != need)
        if left:
            partial.append(f"{method} alpha {alpha:g} seed(s) {' '.join(map(str, left))}")
        if not cs:
            continue
        crow.append([method, f"{alpha:g}", len(cs), cs[0]["runs"],
                     sig(statistics.fmean(c["train_macs"] for c in cs) / 1e12),
                     sig(statistics.fmean(c["bytes"] for c in cs) / 1e9),
                     num(statistics.fmean(c["wall_s"] for c in cs) / 60, 1)])
    text = md_table(["method", "alpha", "seeds", "runs per seed", "client TMACs", "GB communicated", "wall min"],
                    crow)
    if partial:
        text += ("\n\nLeft out of this table because they did not train every fixed target "
                 "(their runs are in `runs.csv` and `cost.csv`): " + "; ".join(partial) + ".")
    return text


def search_note(g):
    """One sentence on the measured search cost, or ''."""
    s = g.s
    sw = [x["wall_s"] for x in g.searches if x["wall_s"] is not None]
    ev = [x["evaluations"] for x in g.searches if x["evaluations"] is not None]
    if not sw:
        return ""
    return (f"The one-shot search (server side, no client work) took {num(statistics.fmean(sw), 1)} s per SuperNet "
            f"on average for {len(s['search']['macs_fractions'])} MACs targets ({len(sw)} searches"
            + (f", {statistics.fmean(ev):.0f} SubNets evaluated on validation data per search" if ev else "")
            + f"; sfn-search options: `{' '.join(s['search']['args']) or 'defaults'}`).")


def cost_targets_section(g, cvt):
    """Cost of N deployment targets at the headline alpha, or '' without the cost lines."""
    if not cvt:
        return ""
    s = g.s
    ref, base = s["report"]["reference"], s["report"]["baseline"]
    pick = sorted({1, len(g.targets), 10, int(s["cost"]["max_targets"])} |
                  {r["n"] for r in cvt if r["method"] == ref + "+search"})
    rows = []
    for n in pick:
        a = next((r for r in cvt if r["method"] == ref and r["n"] == n), None)
        a2 = next((r for r in cvt if r["method"] == ref + "+search" and r["n"] == n), None)
        b = next((r for r in cvt if r["method"] == base and r["n"] == n), None)
        if a and b:
            rows.append([n, sig(a["train_tmacs"]), sig(a2["train_tmacs"]) if a2 else "–", sig(b["train_tmacs"]),
                         sig(a["comm_gb"]), sig(b["comm_gb"])])
    bases = sorted({(r["method"], r["basis"]) for r in cvt})
    return (f"Cost of N deployment targets at alpha {s['set']['headline_alpha']:g}:\n\n" +
            md_table(["N", f"{ref} TMACs", f"{ref} + search TMACs", f"{base} TMACs", f"{ref} GB", f"{base} GB"],
                     rows) +
            "\n\nWhich points are measured: " + "; ".join(f"{m}: {b}" for m, b in bases) +
            f". Every {base} run trains one SubNet for the same rounds, clients per round and local epochs as "
            f"the one {ref} training, so a target's cost lies between the measured MinNet and MaxNet runs; the "
            "line uses the mean measured run.")


FILES_TABLE = [
    ["`runs.csv`", "one row per training run: rounds, client TMACs, MB sent/received, wall seconds"],
    ["`final_accuracy.csv`", "final validation and test accuracy per run and SubNet (fixed targets, "
                             "searched winners)"],
    ["`accuracy_summary.csv`", "the same, mean and std over seeds"],
    ["`round_accuracy.csv`", "validation accuracy per round per run and SubNet"],
    ["`cost.csv`", "per method, alpha and seed: cost of producing the fixed-target models"],
    ["`cost_vs_targets.csv`", "cost of N targets, N = 1..max, with the basis of each point"],
    ["`claims.csv`", "every comparison behind the verdicts, with its rule"],
    ["`client_drift.csv`", "mean update RMS per run, SubNet and window (first quarter, second half)"],
    ["`results_section.md`", "the README's Results section, generated from the same numbers"],
    ["`*.png`, `*.gp`", "plots and the gnuplot scripts that drew them"],
]


def plot_link(plots_made, prefix, name, alt):
    """Markdown image link to a drawn plot, '' for one that was not drawn (no gnuplot, no data)."""
    return f"![{alt}]({prefix}{name})" if name in plots_made else ""


def report_md(g, summary, sec, plots_made):
    """report.md's lines from the sections."""
    meta = g.s["set"]
    L = [f"# SuperFedNAS at CPU scale: experiment set `{meta['name']}`\n",
         f"Generated {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by "
         "`experiments/tools/report.py` from the run folders; every number below is computed from "
         "`summary.json`, `metrics.jsonl` and the searcher's `results.csv`.\n"]
    if meta["about"]:
        L.append(f"*{meta['about']}*\n")
    L += ["## Setup\n", sec["setup"], ""]
    if sec["warnings"]:
        L += [sec["warnings"], ""]
    L += ["## Claims\n", sec["claims"], "", "## Final test accuracy (%)\n",
          "Each cell: mean ± std over the seeds that trained it, n = their number (targets of one method "
          "can differ in n when later seeds train only some targets).\n"]
    for alpha in g.alphas():
        L += [f"### Dirichlet alpha {alpha:g}\n", accuracy_table(g, summary, alpha), ""]
        L += [plot_link(plots_made, "", f"accuracy_vs_macs_a{expset.alpha_tag(alpha)}.png", "accuracy vs MACs"), ""]
    L += ["## Cost counted by the system\n",
          "Client training MACs are summed from `train_macs` of every round in `metrics.jsonl` (3 x forward "
          "MACs x samples x epochs per task); bytes are the encoded messages sent and received by the "
          "coordinator. Per method and (alpha, seed), the cost of producing all of its fixed-target models: "
          "one run for SuperNet methods, one run per target for iFedAvg.\n", sec["cost_methods"], ""]
    if sec["search_note"]:
        L += [sec["search_note"], ""]
    if sec["cost_targets"]:
        L += [sec["cost_targets"], "",
              plot_link(plots_made, "", "cost_vs_targets.png", "cost vs number of targets"), ""]
    per_round = [(a, f"accuracy_per_round_a{expset.alpha_tag(a)}.png") for a in alphas_headline_first(g)]
    per_round = [(a, p) for a, p in per_round if p in plots_made]
    if per_round:
        L += ["## Accuracy per round\n"]
        for a, p in per_round:
            L += ([f"### Dirichlet alpha {a:g}\n"] if len(per_round) > 1 else []) + [
                plot_link(plots_made, "", p, "accuracy per round"), ""]
    if sec["evidence"]:
        L += ["## Evidence: how each method learns\n", sec["evidence"], ""]
    if sec["drift"]:
        L += ["### Client drift by SubNet\n", sec["drift"], ""]
    L += ["## Files\n", md_table(["file", "content"], FILES_TABLE), "",
          f"Reproduce: `bash experiments/run.sh {meta['name']}` (resumable), then "
          f"`bash experiments/run.sh {meta['name']} --report-only` to redraw.\n"]
    return L


def results_section_md(g, summary, sec, plots_made, texts):
    """results_section.md's lines (pasted into README.md; paths relative to the repository root)."""
    s = g.s
    meta = s["set"]
    pre = f"experiments/results/{meta['name']}/"
    head = float(meta["headline_alpha"])
    R = [f"### Experiment set `{meta['name']}`\n",
         f"Runs started {texts.machine.get('started', '?')} (git {texts.machine.get('git', '?')}) on "
         f"{texts.machine_text}. Config: {texts.config_text}. Seeds: " +
         "; ".join(f"{m['name']} {method_seeds(s, m)}" for m in s["method"]) +
         f". Run time: {texts.compute_text}. Command: `bash experiments/run.sh {meta['name']} --publish`; "
         f"full report, CSVs and plots: [`{pre}report.md`]({pre}report.md).\n"]
    if sec["warnings"]:
        R += [sec["warnings"], ""]
    R += ["What did and did not reproduce:\n", sec["claims"], "",
          f"Final test accuracy (%) at alpha {head:g}, mean ± std over the n seeds of each cell:\n",
          accuracy_table(g, summary, head), "",
          plot_link(plots_made, pre, f"accuracy_vs_macs_a{expset.alpha_tag(head)}.png", "accuracy vs MACs"), ""]
    if sec["cost_targets"]:
        R += [sec["cost_targets"], "",
              plot_link(plots_made, pre, "cost_vs_targets.png", "cost vs number of targets"), ""]
    if sec["evidence"]:
        R += [f"How each method learns: {sec['evidence']}", ""]
    return R


def write_report(g, summary, cvt, claim_rows, costs, drift, plots_made, rdir):
    """report.md and results_section.md in rdir."""
    texts = setup_texts(g)
    sec = {"setup": setup_section(g, texts), "warnings": warnings_section(g),
           "claims": claims_section(g, claim_rows), "evidence": evidence_section(g),
           "drift": drift_section(g, drift), "cost_methods": cost_methods_section(g, costs),
           "search_note": search_note(g), "cost_targets": cost_targets_section(g, cvt)}

    with open(os.path.join(rdir, "report.md"), "w") as f:
        f.write("\n".join(report_md(g, summary, sec, plots_made)))
    with open(os.path.join(rdir, "results_section.md"), "w") as f:
        f.write("\n".join(results_section_md(g, summary, sec, plots_made, texts)))


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        s = expset.load_set(argv[1])
    except (expset.SetError, OSError) as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    out = os.path.abspath(argv[2])
    rdir = os.path.join(out, "report")
    if os.path.isdir(rdir):
        shutil.rmtree(rdir)
    os.makedirs(rdir)
    g = Gathered(s, out)
    summary = g.summary_rows()

    write_csv(os.path.join(rdir, "runs.csv"),
              ["method", "target", "source", "alpha", "seed", "rounds", "train_tmacs", "bytes_sent_mb",
               "bytes_received_mb", "wall_s"],
              [(r["method"], r["target"] or "", r["source"], r["alpha"], r["seed"], r["cost"]["rounds"],
                r["cost"]["train_macs"] / 1e12, r["cost"]["bytes_sent"] / 1e6, r["cost"]["bytes_received"] / 1e6,
                r["cost"]["wall_s"]) for r in g.runs])
    write_csv(os.path.join(rdir, "final_accuracy.csv"),
              ["method", "subnet_name", "source", "subnet", "macs", "params", "alpha", "seed", "val_accuracy",
               "test_accuracy"],
              [(r["method"], r["subnet_name"], r["source"], r["subnet"], r["macs"], r["params"], r["alpha"],
                r["seed"], r["val"], r["test"]) for r in g.final])
    write_csv(os.path.join(rdir, "accuracy_summary.csv"),
              ["method", "subnet_name", "source", "alpha", "macs", "params", "n", "seeds", "test_mean", "test_std",
               "val_mean", "val_std"],
              [(r["method"], r["subnet_name"], r["source"], r["alpha"], r["macs"], r["params"], r["n"], r["seeds"],
                r["test_mean"], r["test_std"], r["val_mean"], r["val_std"]) for r in summary])
    write_csv(os.path.join(rdir, "round_accuracy.csv"),
              ["method", "subnet_name", "alpha", "seed", "round", "val_accuracy"], round_rows(g))
    costs = g.training_costs()
    write_csv(os.path.join(rdir, "cost.csv"),
              ["method", "alpha", "seed", "runs", "train_tmacs", "comm_gb", "wall_s"],
              [(m, a, sd, c["runs"], c["train_macs"] / 1e12, c["bytes"] / 1e9, c["wall_s"])
               for (m, a, sd), c in sorted(costs.items())])
    cvt = cost_vs_targets(g)
    write_csv(os.path.join(rdir, "cost_vs_targets.csv"), ["n_targets", "method", "train_tmacs", "comm_gb", "basis"],
              [(r["n"], r["method"], r["train_tmacs"], r["comm_gb"], r["basis"]) for r in cvt])
    drift = drift_records(g)
    write_csv(os.path.join(rdir, "client_drift.csv"),
              ["method", "alpha", "seed", "subnet_name", "window", "mean_change_rms", "updates"], drift)
    claim_rows = claims(g, summary, cvt)
    write_csv(os.path.join(rdir, "claims.csv"),
              ["claim", "alpha", "subject", "verdict", "reference", "other", "difference", "rule", "seeds"],
              [c[:8] + (seeds_text(c.seeds),) for c in claim_rows])
    term = gnuplot_terminal()
    if term is None:
        print("report.py: gnuplot with a png terminal not found; plots skipped", file=sys.stderr)
    plots_made = plots(g, summary, cvt, rdir, term)
    write_report(g, summary, cvt, claim_rows, costs, drift, plots_made, rdir)
    print(f"report.py: {len(g.runs)} runs, {len(g.final)} accuracy rows, {len(plots_made)} plots -> {rdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
