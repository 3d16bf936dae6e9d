#!/usr/bin/env bash
# test/deploy/k8s_manifests.sh - deploy/k8s, checked without a cluster.
#
#   test/deploy/k8s_manifests.sh [ZRAFTD]
#
# 1. `kubectl kustomize deploy/k8s` renders the manifests client-side (it
#    parses every file and resolves the kustomization; `kubectl apply
#    --dry-run=client` cannot run here: it asks an API server for the
#    resource types even in client mode, and there is no cluster).
# 2. The rendered objects are checked for what the deployment relies on
#    (docs/deploy.md): the StatefulSet's name, service, Parallel start,
#    volume claims, probes on /healthz, preStop and grace period, ids from
#    the host name, each pod's stable address, the initial members; the
#    headless Service publishing not-ready addresses; the client Service;
#    the PodDisruptionBudget; the ConfigMap's JSON config (every key one
#    zraftd knows, by `ZRAFTD --help`, when ZRAFTD is given) and its
#    preStop script (bash -n); selectors that select the pods.
# Exit 77 (skipped, says why) without kubectl or python3's yaml module;
# 1 on a failed check. Takes about a second.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
zraftd=${1:-}

command -v kubectl >/dev/null ||
  { echo "k8s: skipped: no kubectl (Debian: apt-get install kubernetes-client)"; exit 77; }
python3 -c 'import yaml' 2>/dev/null ||
  { echo "k8s: skipped: no python3 yaml module (apt-get install python3-yaml)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT

if ! kubectl kustomize "$root/deploy/k8s" >"$work/all.yaml" 2>"$work/err"; then
  echo "FAIL kubectl kustomize deploy/k8s:"
  sed 's/^/    /' "$work/err"
  exit 1
fi
echo "ok   kubectl kustomize renders deploy/k8s (kubectl $(kubectl version --client 2>/dev/null |
  grep -o 'v[0-9][0-9.]*' | head -1))"

keys=""
if [ -n "$zraftd" ]; then
  keys=$("$zraftd" --help | awk '/^keys:/ { k = 1; next } k && NF { print $1 }' | tr '\n' ' ')
fi

python3 - "$work/all.yaml" "$work" "$keys" <<'PY'
import json, re, subprocess, sys, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
work, known = sys.argv[2], sys.argv[3].split()
passed = 0

def ok(cond, what):
    global passed
    if not cond:
        print("FAIL " + what)
        sys.exit(1)
    passed += 1

def one(kind, api):
    objs = [d for d in docs if d.get("kind") == kind]
    ok(len(objs) == 1, "exactly one %s (found %d)" % (kind, len(objs)))
    ok(objs[0].get("apiVersion") == api, "%s is %s" % (kind, api))
    return objs[0]

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

sts = one("StatefulSet", "apps/v1")
svcs = [d for d in docs if d.get("kind") == "Service"]
pdb = one("PodDisruptionBudget", "policy/v1")
cm = one("ConfigMap", "v1")

name = sts["metadata"]["name"]
spec = sts["spec"]
pod = spec["template"]["spec"]
labels = spec["template"]["metadata"]["labels"]
ok(name == "zraft", "the StatefulSet is named zraft (pods zraft-N)")
ok(spec.get("replicas") == 3, "3 replicas")
ok(spec.get("podManagementPolicy") == "Parallel", "podManagementPolicy: Parallel")
ok(selects(spec["selector"]["matchLabels"], labels), "the StatefulSet's selector selects its pods")
ok(spec.get("updateStrategy", {}).get("type", "RollingUpdate") == "RollingUpdate",
   "rolling updates")

# Volumes: claim templates, mounted at the image's data directory.
vct = {v["metadata"]["name"]: v for v in spec.get("volumeClaimTemplates", [])}
ok("data" in vct, "a volumeClaimTemplate 'data'")
ok(vct["data"]["spec"]["accessModes"] == ["ReadWriteOnce"], "data is ReadWriteOnce")
ok("storage" in vct["data"]["spec"]["resources"]["requests"], "data requests storage")
cs = pod["containers"]
ok(len(cs) == 1, "one container")
c = cs[0]
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
ok(mounts.get("data") == "/var/lib/zraft", "data mounted at /var/lib/zraft")

# The id from the pod's name; one template for every member.
args = c.get("args", [])
ok("--id-from-hostname" in args, "zraftd runs with --id-from-hostname")
env = {e["name"]: e for e in c.get("env", [])}
ok("ZRAFT_ID" not in env, "no fixed ZRAFT_ID in the template")
ok(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
   == "metadata.name", "POD_NAME from the downward API")
ok(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
   == "metadata.namespace", "POD_NAMESPACE from the downward API")
# $(VAR) is expanded only for variables defined earlier in the list.
order = [e["name"] for e in c["env"]]
for var in ("ZRAFT_RAFT_ADDR", "ZRAFT_HTTP_ADDR", "ZRAFT_INITIAL_CLUSTER"):
    ok(var in env, var + " set")
    for ref in re.findall(r"\$\((\w+)\)", env[var].get("value", "")):
        ok(ref in order and order.index(ref) < order.index(var),
           "%s uses $(%s), defined before it" % (var, ref))
svc_name = spec["serviceName"]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
ok(env["ZRAFT_RAFT_ADDR"]["value"] == "$(POD_NAME).%s.$(POD_NAMESPACE).svc:%d"
   % (svc_name, ports["raft"]), "each pod advertises zraft-N.%s.<ns>.svc:raft" % svc_name)
ok(env["ZRAFT_HTTP_ADDR"]["value"] == "$(POD_NAME).%s.$(POD_NAMESPACE).svc:%d"
   % (svc_name, ports["http"]), "each pod advertises zraft-N.%s.<ns>.svc:http" % svc_name)
members = dict(m.split("=", 1) for m in env["ZRAFT_INITIAL_CLUSTER"]["value"].split(","))
ok(sorted(members) == [str(i) for i in range(1, spec["replicas"] + 1)],
   "initial_cluster lists ids 1..replicas")
for i, addr in members.items():
    ok(addr == "%s-%d.%s.$(POD_NAMESPACE).svc:%d" % (name, int(i) - 1, svc_name, ports["raft"]),
       "member %s is pod %s-%d (id = ordinal + 1)" % (i, name, int(i) - 1))

# Probes, stop.
for probe in ("readinessProbe", "livenessProbe"):
    p = c.get(probe, {})
    ok(p.get("httpGet", {}).get("path") == "/healthz", probe + " on /healthz")
    ok(p["httpGet"].get("port") in ("http", ports["http"]), probe + " on the HTTP port")
lp = c["livenessProbe"]
ok(lp.get("periodSeconds", 10) * lp.get("failureThreshold", 3) >= 30,
   "the livenessProbe waits at least 30 s of failures (a slow node is not killed)")
ok("preStop" in c.get("lifecycle", {}), "a preStop hook")
grace = pod.get("terminationGracePeriodSeconds", 30)
ok(grace >= 20, "terminationGracePeriodSeconds %d >= 20 (preStop 5 s + zraftd's 10 s drain)" % grace)
ok(pod.get("securityContext", {}).get("runAsUser") == 10001, "runs as the image's user zraft")
anti = pod.get("affinity", {}).get("podAntiAffinity", {}).get(
    "requiredDuringSchedulingIgnoredDuringExecution", [])
ok(any(t.get("topologyKey") == "kubernetes.io/hostname" and
       selects(t["labelSelector"]["matchLabels"], labels) for t in anti),
   "one member per machine (required pod anti-affinity)")

# Services.
headless = [s for s in svcs if s["metadata"]["name"] == svc_name]
ok(len(headless) == 1, "a Service named serviceName (%s)" % svc_name)
h = headless[0]["spec"]
ok(h.get("clusterIP") == "None", "the peer Service is headless")
ok(h.get("publishNotReadyAddresses") is True,
   "the peer Service publishes not-ready pods (peers resolve while starting)")
ok(selects(h["selector"], labels), "the peer Service selects the pods")
hp = {p["name"]: p for p in h["ports"]}
ok(hp.get("raft", {}).get("port") == ports["raft"], "the peer Service carries raft")
clients = [s for s in svcs if s["metadata"]["name"] != svc_name]
ok(len(clients) == 1, "one client Service")
cl = clients[0]["spec"]
ok(cl.get("clusterIP") != "None" and selects(cl["selector"], labels),
   "the client Service is load-balanced over the pods")
ok(any(p.get("targetPort") in ("http", ports["http"]) for p in cl["ports"]),
   "the client Service carries HTTP")

# Disruption budget.
ok(pdb["spec"].get("maxUnavailable") == 1, "PodDisruptionBudget maxUnavailable: 1")
ok(selects(pdb["spec"]["selector"]["matchLabels"], labels), "the budget selects the pods")

# ConfigMap: the JSON config and the preStop script.
vols = {v["name"]: v for v in pod.get("volumes", [])}
ok(vols.get("config", {}).get("configMap", {}).get("name") == cm["metadata"]["name"],
   "the pods mount the ConfigMap")
cfg_dir = mounts.get("config")
ok(cfg_dir is not None and args[args.index("--config") + 1] == cfg_dir + "/zraft.json",
   "--config names the mounted zraft.json")
cfg = json.loads(cm["data"]["zraft.json"])
ok(isinstance(cfg, dict), "zraft.json is a JSON object")
ok(cfg.get("data_dir") == "/var/lib/zraft", "data_dir is the mounted volume")
ok(cfg.get("raft_listen", "").startswith("0.0.0.0:") and cfg.get("http_listen", "").startswith("0.0.0.0:"),
   "zraftd binds every interface")
if known:
    unknown = [k for k in cfg if k not in known]
    ok(not unknown, "every key of zraft.json is one zraftd knows (unknown: %s)" % unknown)
cmd = c["lifecycle"]["preStop"]["exec"]["command"]
script = cmd[-1]
ok(script.startswith(cfg_dir + "/") and script[len(cfg_dir) + 1:] in cm["data"],
   "the preStop script is in the ConfigMap")
open(work + "/pre-stop.sh", "w").write(cm["data"][script[len(cfg_dir) + 1:]])
ok(subprocess.run(["bash", "-n", work + "/pre-stop.sh"]).returncode == 0, "pre-stop.sh parses (bash -n)")
for d in docs:
    ok(d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "zraft",
       "%s %s carries the app label" % (d["kind"], d["metadata"]["name"]))
print("ok   %d checks of the rendered manifests" % passed)
PY
