"""Static checks of deploy/ (Dockerfile, docker-compose.yml, Kubernetes kustomizations, the
start scripts): what can be checked without Docker or a cluster.

  python3 check_deploy.py [--no-kubectl] [--help-cache=DIR] BUILD_DIR SOURCE_DIR [DEPLOY_DIR]

1. Every YAML file parses. Every kustomization names files that exist inside its own folder
   tree (kustomize refuses files outside the root), patches target existing resources, and,
   when kubectl is on PATH, `kubectl kustomize` renders every kustomization.
2. Every sfn command and flag used in deploy/ exists in the binary's --help (subcommands'
   too), and ports and paths agree: the server's --bind and --http ports with the TOML,
   the defaults in --help, container ports, probes, Services, the compose ports and health
   checks and the image's HEALTHCHECK; config, key and run folder paths with the mounts.
3. Init containers' `sh -c` copies run on folders standing for the pod's volumes (Secrets
   filled as documented) and must leave the key files the containers are given, secret
   ones mode 0600.
DEPLOY_DIR (default SOURCE_DIR/deploy) lets a test point it at a broken copy; --no-kubectl
checks as on a machine without kubectl (the structure check alone); --help-cache keeps the
binaries' --help texts in DIR for repeated runs (each binary loads LibTorch to print it).
Prints one "ok - ..." line per check group, "N passed, N failed" last; exit 1 on any
failure."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

BINARIES = ("sfn-server", "sfn-client", "sfn-sim", "sfn-search")
# Wrapper scripts: how many positional arguments come before the binary's own flags.
WRAPPERS = {"sfn-server-start.sh": ("sfn-server", 1), "sfn-client-start.sh": ("sfn-client", 3),
            "sfn-keys-init.sh": (None, 2)}


class Checker:
    def __init__(self, build, deploy):
        self.build = build
        self.deploy = deploy
        self.errors = []
        self.help_cache = {}
        self.help_dir = None
        self.use_kubectl = True

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    # --- --help of the binaries ---
    def binary(self, name):
        sub = {"sfn-server": "server", "sfn-client": "client", "sfn-sim": "simulator",
               "sfn-search": "searcher"}[name]
        return os.path.join(self.build, sub, name)

    def help_text(self, name, sub=None):
        key = (name, sub)
        cached = os.path.join(self.help_dir, f"{name}-{sub}.txt") if self.help_dir else None
        if key not in self.help_cache and cached and os.path.isfile(cached):
            with open(cached) as f:
                self.help_cache[key] = f.read()
        if key not in self.help_cache:
            cmd = [self.binary(name)] + ([sub] if sub else []) + ["--help"]
            if not os.access(cmd[0], os.X_OK):
                raise SystemExit(f"{cmd[0]} is missing: build {name} first")
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr}")
            self.help_cache[key] = out.stdout
            if cached:
                os.makedirs(self.help_dir, exist_ok=True)
                with open(cached, "w") as f:
                    f.write(out.stdout)
        return self.help_cache[key]

    def flags(self, name, sub=None):
        found = set()
        for line in self.help_text(name, sub).splitlines():
            m = re.match(r"\s+(-[^\s]+(?:,-[^\s]+)*)", line)
            if m:
                found.update(re.findall(r"--?[A-Za-z][\w-]*", m.group(1)))
        return found

    def subcommands(self, name):
        text = self.help_text(name)
        part = text.split("Subcommands:", 1)[1] if "Subcommands:" in text else ""
        subs = set()
        for line in part.splitlines():
            m = re.match(r"\s+([a-z][\w-]*(?:, [a-z][\w-]*)*)\s{2,}", line)
            if m:
                subs.update(s.strip() for s in m.group(1).split(","))
        return subs

    def check_command(self, where, argv):
        """argv: a command as a list (the binary or a wrapper first). Returns {flag: value}."""
        if not argv:
            return {}
        prog = os.path.basename(argv[0])
        args = argv[1:]
        if prog in WRAPPERS:
            target, positional = WRAPPERS[prog]
            if not os.path.isfile(os.path.join(self.deploy, prog)):
                self.error(where, f"script {prog} is not in deploy/")
            if len(args) < positional:
                self.error(where, f"{prog} needs {positional} arguments, got {args}")
            if target is None:
                return {}
            prog, args = target, args[positional:]
        if prog not in BINARIES:
            return {}
        sub = None
        if args and not args[0].startswith("-"):
            sub = args[0]
            if sub not in self.subcommands(prog):
                self.error(where, f"{prog} has no subcommand '{sub}'")
                return {}
            args = args[1:]
        known = self.flags(prog, sub)
        values = {}
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("-"):
                flag, eq, val = a.partition("=")
                if flag not in known:
                    self.error(where, f"{prog}{' ' + sub if sub else ''} has no flag {flag}")
                elif not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
                    val = args[i + 1]
                    i += 1
                values.setdefault(flag, val)
            i += 1
        return values


def port_of(endpoint):
    m = re.search(r":(\d+)$", endpoint)
    return int(m.group(1)) if m else None


def load_yaml_files(chk):
    docs = {}
    for path in sorted(glob.glob(os.path.join(chk.deploy, "**", "*.y*ml"), recursive=True)):
        rel = os.path.relpath(path, chk.deploy)
        try:
            with open(path) as f:
                parsed = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            chk.error(rel, f"does not parse: {e}")
            continue
        if not parsed or not all(isinstance(d, dict) for d in parsed):
            chk.error(rel, "is not a YAML mapping (or list of documents of mappings)")
        docs[rel] = parsed
    return docs


# --- kustomize ---
def kustomization_dirs(deploy):
    pattern = os.path.join(deploy, "k8s", "**", "kustomization.yaml")
    return sorted(os.path.dirname(p) for p in glob.glob(pattern, recursive=True))


def inside(root, path):
    return os.path.commonpath([os.path.realpath(root), os.path.realpath(path)]) == \
        os.path.realpath(root)


def generated_config_maps(chk, kdir, k):
    out = []
    for gen in k.get("configMapGenerator", []) or []:
        data = {}
        for f in gen.get("files", []) or []:
            key, _, src = f.rpartition("=")
            path = os.path.normpath(os.path.join(kdir, src))
            if not os.path.isfile(path):
                chk.error(kdir, f"configMapGenerator {gen.get('name')}: no file {src}")
            elif not inside(kdir, path):
                chk.error(kdir, f"configMapGenerator file {src} is outside the kustomization "
                                "root (kustomize refuses it)")
            data[key or os.path.basename(src)] = path
        out.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": gen.get("name"), "namespace": gen.get("namespace")},
                    "data": data})
    return out


def collect(chk, kdir, seen=()):
    """The objects a kustomization yields (names without hashes); checks its structure."""
    if kdir in seen:
        chk.error(kdir, "kustomizations include each other in a cycle")
        return []
    path = os.path.join(kdir, "kustomization.yaml")
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    objects = []
    for entry in (k.get("resources") or []) + (k.get("components") or []):
        p = os.path.normpath(os.path.join(kdir, entry))
        if os.path.isdir(p):
            if not os.path.isfile(os.path.join(p, "kustomization.yaml")):
                chk.error(kdir, f"{entry} is a folder without kustomization.yaml")
            else:
                objects += collect(chk, p, seen + (kdir,))
        elif os.path.isfile(p):
            if not inside(kdir, p):
                chk.error(kdir, f"resource file {entry} is outside the kustomization root")
            with open(p) as f:
                objects += [d for d in yaml.safe_load_all(f) if d]
        else:
            chk.error(kdir, f"resource or component {entry} does not exist")
    objects += generated_config_maps(chk, kdir, k)
    check_patches(chk, kdir, k, objects)
    if k.get("namespace"):
        for o in objects:
            o.setdefault("metadata", {})["namespace"] = k["namespace"]
    return objects


def check_patches(chk, kdir, k, objects):
    patches = [p if isinstance(p, dict) else {"path": p} for p in
               (k.get("patches") or []) + (k.get("patchesStrategicMerge") or [])]
    for p in patches:
        target = dict(p.get("target") or {})
        if "path" in p:
            path = os.path.join(kdir, p["path"])
            if not os.path.isfile(path):
                chk.error(kdir, f"patch {p['path']} does not exist")
                continue
            with open(path) as f:
                body = yaml.safe_load(f)
            if not target and isinstance(body, dict):
                target = {"kind": body.get("kind"), "name": body.get("metadata", {}).get("name")}
        if not any(o.get("kind") == target.get("kind", o.get("kind")) and
                   o.get("metadata", {}).get("name") == target.get("name", o["metadata"]["name"])
                   for o in objects):
            chk.error(kdir, f"patch {p.get('path', '(inline)')} targets {target}, which no "
                            "resource of this kustomization is")


def render(chk, kdir):
    """`kubectl kustomize` when kubectl is there (the real rendering), else collect()."""
    objects = collect(chk, kdir)
    kubectl = shutil.which("kubectl") if chk.use_kubectl else None
    if not kubectl:
        return objects, False
    out = subprocess.run([kubectl, "kustomize", kdir], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        chk.error(kdir, f"kubectl kustomize failed: {out.stderr.strip()}")
        return objects, False
    return [d for d in yaml.safe_load_all(out.stdout) if d], True


# --- rendered Kubernetes objects ---
def pod_templates(objects):
    for o in objects:
        if o.get("kind") in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield o, o["spec"]["template"]


def mount_for(container, path):
    """The volumeMount whose mountPath holds `path`, or None."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and (best is None or
                                                           len(mp) > len(best["mountPath"])):
            best = m
    return best


PATH_FLAGS = ("--config", "--key", "--allow", "--server-key", "--keys-dir", "--checkpoint",
              "--targets", "--out", "--data")


def check_container(chk, where, spec, c, objects, defaults):
    where = f"{where} container {c['name']}"
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    volumes.update(defaults["claim_templates"])
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            chk.error(where, f"mounts volume {m['name']}, which the pod does not have")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind, {}).get("httpGet")
        if probe and probe["port"] not in ports and probe["port"] not in ports.values():
            chk.error(where, f"{kind} uses port {probe['port']}, which the container lacks")
        if probe and probe["path"] not in ("/healthz", "/readyz"):
            chk.error(where, f"{kind} path {probe['path']} is not /healthz or /readyz")
    values = chk.check_command(where, c.get("command", []) + c.get("args", []))
    for flag in PATH_FLAGS:
        v = values.get(flag)
        if v and v.startswith("/") and not mount_for(c, v):
            chk.error(where, f"{flag} {v} is on no volume (the root file system is read-only)")
    cfg = values.get("--config")
    if cfg and mount_for(c, cfg):
        vol = volumes.get(mount_for(c, cfg)["name"], {})
        cm_name = vol.get("configMap", {}).get("name")
        cms = [o for o in objects if o.get("kind") == "ConfigMap" and
               o["metadata"]["name"] == cm_name]
        if not cms or os.path.basename(cfg) not in cms[0].get("data", {}):
            chk.error(where, f"--config {cfg}: no ConfigMap {cm_name} with key "
                             f"{os.path.basename(cfg)}")
    prog = os.path.basename((c.get("command") or [""])[0])
    if prog in ("sfn-server", "sfn-server-start.sh"):
        check_server_ports(chk, where, values, ports, defaults)
        defaults["server_run_dir"] = (c.get("command") or ["", ""])[1]
        for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            if c.get(kind, {}).get("httpGet", {}).get("path") != path:
                chk.error(where, f"the server's {kind} must GET {path}")
    if prog in BINARIES or prog in WRAPPERS:
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits"):
            chk.error(where, "has no resource requests and limits")
    return values


def check_server_ports(chk, where, values, ports, defaults):
    bind = port_of(values.get("--bind", ""))
    if bind != defaults["zmq_port"]:
        chk.error(where, f"--bind port {bind} is not the config's {defaults['zmq_port']}")
    if ports.get("zmq") != bind:
        chk.error(where, f"container port zmq {ports.get('zmq')} is not --bind's {bind}")
    http = port_of(values.get("--http", defaults["http_listen"]))
    if http != defaults["http_port"] or ports.get("http") != http:
        chk.error(where, f"--http port {http} / container port http {ports.get('http')} are "
                         f"not the default {defaults['http_port']}")
    if not values.get("--http", "").startswith("0.0.0.0:"):
        chk.error(where, "--http must listen on 0.0.0.0 for probes and Services to reach it")


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_services(chk, kdir, objects):
    pods = [(o, t) for o, t in pod_templates(objects)]
    for s in (o for o in objects if o.get("kind") == "Service"):
        where = f"{kdir}: Service {s['metadata']['name']}"
        sel = s["spec"].get("selector", {})
        targets = [t for _, t in pods if matches(sel, t["metadata"].get("labels", {}))
                   and not _.get("kind") == "Job"]
        if not targets:
            chk.error(where, f"selector {sel} matches no Deployment or StatefulSet pod")
            continue
        names = {p.get("name"): p["containerPort"] for t in targets
                 for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            if tp not in names and tp not in names.values():
                chk.error(where, f"targetPort {tp} is no port of the selected pods")


def check_jobs(chk, kdir, objects, values_of):
    for job, t in pod_templates(objects):
        if job.get("kind") != "Job":
            continue
        where = f"{kdir}: Job {job['metadata']['name']}"
        for c in t["spec"]["containers"]:
            v = values_of.get((job["metadata"]["name"], c["name"]), {})
            if job["spec"].get("completionMode") == "Indexed":
                check_indexed(chk, where, job, c, v)
            if os.path.basename(c["command"][0]) == "sfn-search":
                check_search(chk, where, t, c, v, objects)


def check_indexed(chk, where, job, c, v):
    shards = v.get("--shards")
    n, par = job["spec"].get("completions"), job["spec"].get("parallelism")
    if not shards or not (str(n) == str(par) == shards):
        chk.error(where, f"completions {n}, parallelism {par} and --shards {shards} must be "
                         "equal: every index runs at once, one slice of the fleet each")
    m = re.fullmatch(r"\$\((\w+)\)", v.get("--shard", ""))
    env = {e["name"]: e for e in c.get("env", [])}
    if not m or m.group(1) not in env or "job-completion-index" not in \
            str(env[m.group(1)].get("valueFrom", {})):
        chk.error(where, "--shard must be $(VAR) with VAR the pod's job-completion-index")


def check_search(chk, where, t, c, v, objects):
    vols = {x["name"]: x for x in t["spec"].get("volumes", [])}
    m = mount_for(c, v.get("--checkpoint", "/"))
    claim = vols.get(m["name"], {}).get("persistentVolumeClaim", {}).get("claimName") if m else None
    sts = [o for o in objects if o.get("kind") == "StatefulSet"]
    claims = {f"{vct['metadata']['name']}-{s['metadata']['name']}-0": s for s in sts
              for vct in s["spec"].get("volumeClaimTemplates", [])}
    if claim not in claims:
        chk.error(where, f"--checkpoint is on claim {claim}, not the server's PVC "
                         f"({', '.join(claims) or 'none'})")
        return
    server = claims[claim]["spec"]["template"]["spec"]["containers"][0]
    run_dir = server["command"][1] if len(server.get("command", [])) > 1 else None
    if v.get("--checkpoint") != run_dir:
        chk.error(where, f"--checkpoint {v.get('--checkpoint')} is not the server's run "
                         f"folder {run_dir}")


def fill_secret(chk, folder, secret):
    """What a Secret volume holds: its items, or (mounted whole) a fleet key folder as
    `sfn-sim keygen` writes it, the documented source of such a Secret."""
    if not secret.get("items"):
        subprocess.run([chk.binary("sfn-sim"), "keygen", "--clients", "2", "-o", folder],
                       check=True, capture_output=True, timeout=60)
        return
    for item in secret["items"]:
        path = os.path.join(folder, item["path"])
        with open(path, "w") as f:
            f.write(f"{secret['secretName']}/{item['key']}\n")
        os.chmod(path, 0o440)  # as with fsGroup: group-readable, what sfn refuses


def run_init_containers(chk, where, t, values_of, name):
    """Runs each init container's `sh -c` on folders standing for the pod's volumes, then
    checks that the key files and folders the containers are given exist, secret ones 0600."""
    spec = t["spec"]
    if not spec.get("initContainers"):
        return
    with tempfile.TemporaryDirectory() as root:
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for vname, v in vols.items():
            os.makedirs(os.path.join(root, vname))
            if "secret" in v:
                fill_secret(chk, os.path.join(root, vname), v["secret"])
        for init in spec["initContainers"]:
            cmd = init.get("command", [])
            if cmd[:2] != ["sh", "-c"] or "until " in cmd[2]:
                continue  # a wait for another pod's work, not a copy
            mounts = {m["mountPath"]: os.path.join(root, m["name"]) for m in init["volumeMounts"]}
            pattern = "|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True))
            script = re.sub(f"({pattern})(?=[/\\s\"']|$)", lambda m: mounts[m.group(1)], cmd[2])
            out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
            if out.returncode != 0:
                chk.error(f"{where} init container {init['name']}", f"fails: {out.stderr.strip()}")
        for c in spec["containers"]:
            values = values_of.get((name, c["name"]), {})
            for flag in ("--key", "--server-key", "--allow", "--keys-dir"):
                check_init_output(chk, f"{where} container {c['name']}", c, vols, root, flag,
                                  values.get(flag))


def check_init_output(chk, where, c, vols, root, flag, value):
    m = mount_for(c, value) if value else None
    if not m or "emptyDir" not in vols.get(m["name"], {}):
        return
    local = os.path.join(root, m["name"]) + value[len(m["mountPath"].rstrip("/")):]
    secrets = glob.glob(os.path.join(local, "*.key")) if flag == "--keys-dir" else [local]
    if not os.path.exists(local) or not secrets:
        chk.error(where, f"{flag} {value}: the init containers leave nothing there")
    elif flag in ("--key", "--keys-dir"):
        for path in secrets:
            if os.stat(path).st_mode & 0o077:
                chk.error(where, f"{flag} {value}: {os.path.basename(path)} is readable by "
                                 "group or others, which sfn refuses")


def check_k8s(chk, defaults):
    kdirs = kustomization_dirs(chk.deploy)
    if not kdirs:
        chk.error("k8s", "no kustomization.yaml")
    rendered = 0
    for kdir in kdirs:
        with open(os.path.join(kdir, "kustomization.yaml")) as f:
            if (yaml.safe_load(f) or {}).get("kind") == "Component":
                continue  # rendered as part of the overlays that use it
        objects, real = render(chk, kdir)
        rendered += real
        rel = os.path.relpath(kdir, chk.deploy)
        values_of = {}
        for o, t in pod_templates(objects):
            d = dict(defaults, claim_templates={v["metadata"]["name"]: v for v in
                                                o["spec"].get("volumeClaimTemplates", [])})
            where = f"{rel}: {o['kind']} {o['metadata']['name']}"
            for c in t["spec"].get("initContainers", []) + t["spec"]["containers"]:
                values_of[(o["metadata"]["name"], c["name"])] = check_container(
                    chk, where, t["spec"], c, objects, d)
            run_init_containers(chk, where, t, values_of, o["metadata"]["name"])
        check_services(chk, rel, objects)
        check_jobs(chk, rel, objects, values_of)
    return len(kdirs), rendered


# --- docker-compose.yml ---
def interpolate(value):
    """Compose's ${VAR:-default} with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value) if isinstance(value, str) else value


def compose_volume_targets(chk, svc):
    targets = {}
    for v in svc.get("volumes", []):
        src, tgt = v.split(":")[:2]
        if src.startswith("."):
            if not os.path.exists(os.path.join(chk.deploy, src)):
                chk.error("docker-compose.yml", f"bind mount source {src} does not exist")
        targets[tgt] = src
    return targets


def check_compose(chk, compose, defaults):
    services = compose.get("services", {})
    for name, svc in services.items():
        where = f"docker-compose.yml service {name}"
        argv = [interpolate(a) for a in svc.get("command", [])]
        values = chk.check_command(where, argv)
        targets = compose_volume_targets(chk, svc)
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                chk.error(where, f"depends on unknown service {dep}")
        paths = [values.get(f) for f in PATH_FLAGS if values.get(f)]
        if argv and os.path.basename(argv[0]) in ("sfn-client-start.sh", "sfn-keys-init.sh"):
            paths += argv[1:3 if argv[0] == "sfn-client-start.sh" else 2]
        for p in paths:
            if not any(p == t or p.startswith(t.rstrip("/") + "/") for t in targets) and \
                    p != defaults["image_config"]:
                chk.error(where, f"path {p} is on no volume (read_only root file system)")
        if values.get("--config") and values["--config"] not in targets:
            chk.error(where, f"--config {values['--config']} is not the mounted TOML")
        if argv and os.path.basename(argv[0]) == "sfn-server-start.sh":
            check_compose_server(chk, where, svc, values, defaults)
        elif svc.get("healthcheck", {}).get("disable") is not True:
            chk.error(where, "inherits the image's server HEALTHCHECK: disable it")
    return len(services)


def check_compose_server(chk, where, svc, values, defaults):
    published = {int(str(p).split(":")[-1]) for p in svc.get("ports", [])}
    bind, http = port_of(values.get("--bind", "")), port_of(values.get("--http", ""))
    if bind != defaults["zmq_port"] or bind not in published:
        chk.error(where, f"--bind port {bind}: not the config's {defaults['zmq_port']} or "
                         "not published")
    if http != defaults["http_port"] or http not in published:
        chk.error(where, f"--http port {http}: not the default {defaults['http_port']} or "
                         "not published")
    test = " ".join(svc.get("healthcheck", {}).get("test", []))
    if f"127.0.0.1:{http}/healthz" not in test:
        chk.error(where, f"the health check does not GET 127.0.0.1:{http}/healthz")


# --- Dockerfile ---
def check_dockerfile(chk, defaults, used_scripts):
    path = os.path.join(chk.deploy, "Dockerfile")
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.startswith("FROM")]
    if len(froms) < 2 or not all(f.startswith("debian:bookworm") for f in froms):
        chk.error("Dockerfile", f"not a multi-stage Debian bookworm build: {froms}")
    if not any("cpack -G DEB" in ln for ln in lines) or not any("setup.sh" in ln for ln in lines):
        chk.error("Dockerfile", "does not build the .deb packages (setup.sh, cpack -G DEB)")
    for ln in lines:
        if ln.startswith("COPY") and "--from" not in ln:
            for s in ln.split()[1:-1]:
                if not os.path.exists(os.path.join(chk.source, s)):
                    chk.error("Dockerfile", f"COPY source {s} does not exist")
    # The packages bring the scripts and the TOML: the install rules must name them, and the
    # image build must fail without them.
    rules = install_rules(chk.source)
    for script in sorted(used_scripts):
        if not re.search(rf"install\(PROGRAMS[^)]*deploy/{re.escape(script)}", rules):
            chk.error("Dockerfile", f"{script} is used as a command but no install(PROGRAMS) "
                                    "rule puts it in a package")
        if f"/usr/bin/{script}" not in text:
            chk.error("Dockerfile", f"the image build does not check /usr/bin/{script}")
    if "deploy/k8s/base/sfn-server.toml" not in rules or defaults["image_config"] not in text:
        chk.error("Dockerfile", "the packages' /etc/sfn/sfn-server.toml is not the deploy TOML, "
                                "or the image build does not check it")
    user = [ln.split()[1] for ln in lines if ln.startswith("USER")]
    if not user or user[-1].split(":")[0] in ("0", "root"):
        chk.error("Dockerfile", "does not run as a non-root user")
    for b in BINARIES:
        if not re.search(rf"\b{b} --version", text):
            chk.error("Dockerfile", f"the image build does not run {b} --version")
    hc = [ln for ln in lines if ln.startswith("HEALTHCHECK")]
    if not hc or f"127.0.0.1:{defaults['http_port']}/healthz" not in hc[0]:
        chk.error("Dockerfile", f"no HEALTHCHECK on 127.0.0.1:{defaults['http_port']}/healthz")
    exposed = {int(p) for ln in lines if ln.startswith("EXPOSE") for p in ln.split()[1:]}
    if not {defaults["zmq_port"], defaults["http_port"]} <= exposed:
        chk.error("Dockerfile", f"EXPOSE {sorted(exposed)} lacks the server's ports")


def install_rules(source):
    text = ""
    for path in [os.path.join(source, "CMakeLists.txt")] + \
            glob.glob(os.path.join(source, "cmake", "*.cmake")):
        with open(path) as f:
            text += f.read()
    return text


# --- shell scripts ---
def check_scripts(chk):
    count = 0
    for path in sorted(glob.glob(os.path.join(chk.deploy, "*.sh"))):
        name = os.path.basename(path)
        out = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
        if out.returncode != 0:
            chk.error(name, f"sh -n: {out.stderr.strip()}")
        with open(path) as f:
            text = f.read().replace("\\\n", " ")
        for ln in text.splitlines():
            if ln.lstrip().startswith("#") or re.search(r"\becho\b", ln):
                continue
            m = re.search(r'(?:"\$\{\w+:-)?\b(sfn-(?:server|client|sim|search))\}?"?\s+(.*)', ln)
            if not m:
                continue
            args = []
            for tok in shlex.split(re.split(r"\s(?:>|&&|\|\||;)", m.group(2))[0]):
                args.append(tok)
            chk.check_command(name, [m.group(1)] + args)
            count += 1
    return count


# --- the TOML and the binaries' defaults ---
def defaults_from(chk):
    toml_path = os.path.join(chk.deploy, "k8s", "base", "sfn-server.toml")
    with open(toml_path, "rb") as f:
        cfg = tomllib.load(f)
    m = re.search(r"default (\d+\.\d+\.\d+\.\d+:(\d+))", chk.help_text("sfn-server"))
    if not m:
        raise SystemExit("sfn-server --help names no default --http HOST:PORT")
    listen = cfg.get("http", {}).get("listen", m.group(1))
    if listen != m.group(1):
        chk.error("sfn-server.toml", f"[http] listen {listen} is not the default {m.group(1)}")
    if cfg.get("data", {}).get("dir", "") != "":
        chk.error("sfn-server.toml", "data.dir must stay empty: the packaged dataset's default")
    return {"zmq_port": port_of(cfg["server"]["bind"]), "http_listen": m.group(1),
            "http_port": int(m.group(2)), "image_config": "/etc/sfn/sfn-server.toml"}


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    build, source = args[0], args[1]
    chk = Checker(build, args[2] if len(args) > 2 else os.path.join(source, "deploy"))
    chk.use_kubectl = "--no-kubectl" not in sys.argv
    for a in sys.argv[1:]:
        if a.startswith("--help-cache="):
            chk.help_dir = a.split("=", 1)[1]
    chk.source = source
    results = []

    def group(what, fn):
        before = len(chk.errors)
        detail = fn()
        failed = len(chk.errors) > before
        results.append(not failed)
        print(("FAIL" if failed else "ok") + f" - {what}" + (f" ({detail})" if detail else ""))
        for e in chk.errors[before:]:
            print("  " + e)

    docs = {}

    def parse_all():
        docs.update(load_yaml_files(chk))
        return f"{len(docs)} files"

    group("every YAML file parses", parse_all)
    defaults = defaults_from(chk)
    group("kustomizations: structure, kubectl kustomize, commands, flags, ports, paths, keys",
          lambda: "%d kustomizations, %d rendered by kubectl" % check_k8s(chk, defaults))
    compose = (docs.get("docker-compose.yml") or [{}])[0]
    group("docker-compose.yml: commands, flags, ports, paths, health checks",
          lambda: f"{check_compose(chk, compose, defaults)} services")
    used = {os.path.basename(str(a)) for d in docs.values() for o in d
            for a in re.findall(r"sfn-[\w-]+\.sh", str(o))}
    group("Dockerfile: stages, packages, COPY sources, user, binaries, HEALTHCHECK, ports",
          lambda: check_dockerfile(chk, defaults, used & set(WRAPPERS)))
    group("scripts: syntax and sfn flags", lambda: f"{check_scripts(chk)} sfn commands")
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
