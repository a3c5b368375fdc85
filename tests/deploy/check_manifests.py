#!/usr/bin/env python3
"""Structural checks of the rendered g4serve Kubernetes manifests (tests/deploy/validate.sh).

Usage: check_manifests.py --repo ROOT [--rendered OVERLAY=FILE ...]
Overlays without a rendered file (no kubectl) are rendered here by a minimal kustomize that
supports exactly what deploy/ uses: resources, namespace, labels, images, and patches that are
either a JSON6902 list of add/replace ops or a strategic-merge map (merged as a JSON merge patch).
Prints one line per problem and exits 1 if there is any.
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys

import yaml

problems = []


def problem(where, msg):
    problems.append(f"{where}: {msg}")


# ---------------------------------------------------------------- minimal kustomize (fallback)
def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        elif v is None:
            dst.pop(k, None)
        else:
            dst[k] = copy.deepcopy(v)


def json_patch(doc, ops):
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if op["op"] in ("replace", "add"):
            if isinstance(parent, list):
                idx = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(idx, op["value"])
                else:
                    parent[idx] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']}")


def matches(doc, target):
    for key in ("kind", "name"):
        want = target.get(key)
        have = doc.get("kind") if key == "kind" else doc.get("metadata", {}).get("name")
        if want and want != have:
            return False
    if target.get("group") and not doc.get("apiVersion", "").startswith(target["group"] + "/"):
        return False
    return True


def pod_specs_paths(doc):
    kind = doc.get("kind")
    spec = doc.get("spec", {})
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [spec.get("template", {})]
    if kind == "LeaderWorkerSet":
        lwt = spec.get("leaderWorkerTemplate", {})
        return [t for t in (lwt.get("leaderTemplate"), lwt.get("workerTemplate")) if t]
    return []


def render(kdir):
    with open(os.path.join(kdir, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    docs = []
    for r in k.get("resources", []):
        path = os.path.normpath(os.path.join(kdir, r))
        if os.path.isdir(path):
            docs += render(path)
        else:
            with open(path) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    for gen in k.get("configMapGenerator", []):
        data = {}
        for fname in gen.get("files", []):
            with open(os.path.join(kdir, fname)) as f:
                data[os.path.basename(fname)] = f.read()
        md = {"name": gen["name"]}
        if gen.get("options", {}).get("labels"):
            md["labels"] = dict(gen["options"]["labels"])
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data})
    for p in k.get("patches", []):
        body = yaml.safe_load(p["patch"]) if "patch" in p else None
        for d in docs:
            if matches(d, p.get("target", {})):
                if isinstance(body, list):
                    json_patch(d, body)
                else:
                    merge(d, body)
    for lab in k.get("labels", []):
        for d in docs:
            d.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
            if lab.get("includeTemplates"):
                for t in pod_specs_paths(d):
                    t.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        for d in docs:
            for t in pod_specs_paths(d):
                for c in t.get("spec", {}).get("containers", []):
                    name = c["image"].split(":")[0]
                    if name == img["name"]:
                        c["image"] = f"{img.get('newName', name)}:{img.get('newTag', 'latest')}"
    if k.get("namespace"):
        for d in docs:
            if d.get("kind") != "Namespace":
                d.setdefault("metadata", {})["namespace"] = k["namespace"]
    return docs


# ---------------------------------------------------------------- flags the binaries accept
def accepted_flags(repo):
    flags = {}
    for binary, rel, docs in (
        ("g4-coordinator", "build/coordinator/g4-coordinator", ["docs/coordinator.md"]),
        ("g4-worker", "build/worker/service/g4-worker", ["docs/worker.md", "docs/metrics.md"]),
    ):
        text, source = "", ""
        path = os.path.join(repo, rel)
        if os.access(path, os.X_OK):
            try:
                r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
                text, source = r.stdout + r.stderr, f"{rel} --help"
            except (OSError, subprocess.TimeoutExpired):
                text = ""
        if "--" not in text:
            text = "".join(open(os.path.join(repo, d)).read() for d in docs)
            source = " + ".join(docs)
        flags[binary] = (set(re.findall(r"(--[a-z][a-z0-9-]*)", text)) - {"--help"}, source)
    return flags


# ---------------------------------------------------------------- checks
def duration_seconds(text):
    """'60s', '1m', '500ms', '1m30s' or a bare number of seconds; None when malformed."""
    if re.fullmatch(r"[0-9.]+", text or ""):
        return float(text)
    parts = re.findall(r"([0-9.]+)(ms|s|m|h)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def prestop_sleep_seconds(container):
    """Seconds of a preStop `sleep N` hook (exec or the native sleep action); 0 without one."""
    pre = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre:
        return float(pre["sleep"].get("seconds", 0))
    cmd = pre.get("exec", {}).get("command", [])
    if len(cmd) == 2 and cmd[0] in ("sleep", "/bin/sleep") and re.fullmatch(r"[0-9.]+", cmd[1]):
        return float(cmd[1])
    return 0


def container_ports(container):
    return {p.get("name"): p["containerPort"] for p in container.get("ports", [])}


def port_ok(container, port):
    ports = container_ports(container)
    return port in ports if isinstance(port, str) else port in ports.values()


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def component_of(selector):
    return selector.get("matchLabels", {}).get("app.kubernetes.io/component")


def check_network_policies(where, policies, pods):
    """The coordinator's internal port is reachable only from worker pods; the workers' ports
    (Worker service, Gloo/NCCL) only from the coordinator and workers, except metrics."""
    by_component = {}
    for np in policies:
        spec = np.get("spec", {})
        if "Ingress" not in spec.get("policyTypes", []):
            problem(where, f"NetworkPolicy {np['metadata']['name']}: no Ingress policyType")
        by_component[component_of(spec.get("podSelector", {}))] = spec.get("ingress", [])
    for component in ("coordinator", "worker"):
        if component not in by_component:
            problem(where, f"no NetworkPolicy selects the {component} pods")
    for rule in by_component.get("coordinator", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        sources = {component_of(f.get("podSelector", {})) for f in rule.get("from", [])}
        if ("internal" in ports or not ports) and (not rule.get("from") or sources != {"worker"}):
            problem(where, f"NetworkPolicy: the coordinator's internal port is open to {sorted(map(str, sources)) or 'anyone'}")
    for rule in by_component.get("worker", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        sources = {component_of(f.get("podSelector", {})) for f in rule.get("from", [])}
        if ports != ["metrics"] and (not rule.get("from") or not sources <= {"coordinator", "worker"}):
            problem(where, f"NetworkPolicy: worker ports {ports or 'all'} are open to {sorted(map(str, sources)) or 'anyone'}")


TLS_FLAGS = ("--internal-tls-cert", "--internal-tls-key", "--internal-tls-ca")


def check_internal_tls(where, by_kind, pods, effective):
    """Mutual TLS on the internal plane (docs/security.md): the coordinator and the workers both
    have the three --internal-tls-* files or neither; every file is in a read-only Secret volume
    mounted as a directory (no subPath: the kubelet updates only those on renewal); a Secret made
    by a cert-manager Certificate names the identity the other side requires, for server and
    client auth; no gRPC probe on a port that speaks TLS only."""
    certificates = {c["spec"].get("secretName"): c for c in by_kind.get("Certificate", [])}
    issuers = {i["metadata"]["name"] for i in by_kind.get("Issuer", []) + by_kind.get("ClusterIssuer", [])}
    for c in by_kind.get("Certificate", []):
        ref = c["spec"].get("issuerRef", {}).get("name")
        if ref not in issuers:
            problem(where, f"Certificate {c['metadata']['name']}: issuer {ref} is not rendered")
    coord, work = effective.get("g4-coordinator", {}), effective.get("g4-worker", {})
    on = {b: any(f in effective.get(b, {}) for f in TLS_FLAGS) for b in ("g4-coordinator", "g4-worker")}
    if on["g4-coordinator"] != on["g4-worker"]:
        problem(where, f"internal TLS only on {[b for b, v in on.items() if v]}: both sides or neither")
    # The identity each side's certificate must carry (the other side's flag or its default).
    wanted = {"g4-coordinator": work.get("--coordinator-identity") or "g4serve-coordinator",
              "g4-worker": coord.get("--worker-identity") or "g4serve-worker"}
    for owner, _, t in pods:
        spec = t.get("spec", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("containers", []):
            binary = (c.get("command") or [""])[0]
            values = {}
            for a in c.get("args", []):
                flag, _, value = a.partition("=")
                values[flag] = value
            given = [f for f in TLS_FLAGS if f in values]
            if not given:
                continue
            cw = f"{owner} container {c['name']}"
            if len(given) != 3:
                problem(where, f"{cw}: internal TLS needs all of {TLS_FLAGS}, has {given}")
            secrets = set()
            for f in given:
                path = values[f]
                mount = None
                for m in c.get("volumeMounts", []):
                    mp = m.get("mountPath", "").rstrip("/")
                    if path.startswith(mp + "/") and (mount is None or len(mp) > len(mount["mountPath"].rstrip("/"))):
                        mount = m
                if mount is None:
                    problem(where, f"{cw}: {f}={path} is not under any volumeMount")
                    continue
                vol = volumes.get(mount["name"], {})
                if "secret" not in vol:
                    problem(where, f"{cw}: {f}={path} is on volume {mount['name']}, not a Secret")
                    continue
                if mount.get("subPath"):
                    problem(where, f"{cw}: {f} mounted with subPath: renewals would never reach it")
                if not mount.get("readOnly"):
                    problem(where, f"{cw}: the TLS volume {mount['name']} is not readOnly")
                secret = vol["secret"].get("secretName")
                secrets.add(secret)
                key = path[len(mount["mountPath"].rstrip("/")) + 1:]
                items = vol["secret"].get("items")
                if items and key not in {i.get("path") for i in items}:
                    problem(where, f"{cw}: {f}={path}: Secret {secret} projects no {key}")
                cert = certificates.get(secret)
                if cert is not None and key not in ("tls.crt", "tls.key", "ca.crt"):
                    problem(where, f"{cw}: {f}={path}: cert-manager's Secret {secret} has tls.crt, tls.key and ca.crt, not {key}")
            for secret in secrets:
                cert = certificates.get(secret)
                if cert is None:
                    continue  # a Secret made outside (docs/deployment.md)
                names = cert["spec"].get("dnsNames", [])
                if binary in wanted and wanted[binary] not in names:
                    problem(where, f"{cw}: Certificate {cert['metadata']['name']} names {names}, the other side requires {wanted[binary]}")
                usages = set(cert["spec"].get("usages", []))
                if not {"server auth", "client auth"} <= usages:
                    problem(where, f"Certificate {cert['metadata']['name']}: usages {sorted(usages)} lack server auth and client auth")
            grpc_port = container_ports(c).get("grpc")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                pg = c.get(probe, {}).get("grpc")
                if pg is not None and pg.get("port") in (grpc_port, "grpc") and binary == "g4-worker":
                    problem(where, f"{cw}: {probe} is a gRPC probe on the mutual-TLS port {grpc_port}: the kubelet's probe has no certificate")


def check_overlay(name, docs, flags):
    where = f"[{name}]"
    by_kind = {}
    for d in docs:
        for key in ("apiVersion", "kind"):
            if not d.get(key):
                problem(where, f"a document without {key}: {str(d)[:80]}")
        if not d.get("metadata", {}).get("name"):
            problem(where, f"{d.get('kind')} without metadata.name")
        by_kind.setdefault(d.get("kind"), []).append(d)
    expected_api = {"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1",
                    "LeaderWorkerSet": "leaderworkerset.x-k8s.io/v1",
                    "PodMonitor": "monitoring.coreos.com/v1",
                    "PodDisruptionBudget": "policy/v1", "Namespace": "v1",
                    "NetworkPolicy": "networking.k8s.io/v1",
                    "Certificate": "cert-manager.io/v1", "Issuer": "cert-manager.io/v1"}
    for kind, api in expected_api.items():
        for d in by_kind.get(kind, []):
            if d["apiVersion"] != api:
                problem(where, f"{kind} {d['metadata']['name']}: apiVersion {d['apiVersion']}, want {api}")
    for kind in ("Deployment", "Service", "ConfigMap", "LeaderWorkerSet", "PodMonitor",
                 "NetworkPolicy"):
        if kind not in by_kind:
            problem(where, f"no {kind} rendered")
    namespaces = {d["metadata"].get("namespace") for d in docs if d.get("kind") != "Namespace"}
    if len(namespaces) != 1:
        problem(where, f"resources span namespaces {sorted(map(str, namespaces))}")

    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    # Pod templates: (owner, template)
    pods = []
    for d in by_kind.get("Deployment", []) + by_kind.get("LeaderWorkerSet", []):
        for t in pod_specs_paths(d):
            pods.append((f"{d['kind']} {d['metadata']['name']}", d, t))
    for d in by_kind.get("Deployment", []):
        sel = d["spec"].get("selector", {}).get("matchLabels", {})
        if not labels_match(sel, d["spec"]["template"].get("metadata", {}).get("labels", {})):
            problem(where, f"Deployment {d['metadata']['name']}: selector does not match its template labels")

    def env_of(c):
        env = {}
        for ef in c.get("envFrom", []):
            ref = ef.get("configMapRef", {}).get("name")
            if ref is not None:
                if ref not in configmaps:
                    problem(where, f"container {c['name']}: envFrom ConfigMap {ref} not rendered")
                env.update(configmaps.get(ref, {}))
        for e in c.get("env", []):
            vf = e.get("valueFrom", {})
            if "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                if ref.get("key") not in configmaps.get(ref.get("name"), {}):
                    problem(where, f"env {e['name']}: ConfigMap key {ref} not rendered")
                env[e["name"]] = configmaps.get(ref.get("name"), {}).get(ref.get("key"), "")
            else:
                env[e["name"]] = e.get("value", f"<{list(vf)}>")
        return env

    effective = {}  # binary -> {flag: value}
    mounts = {}
    for owner, d, t in pods:
        spec = t.get("spec", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        if "terminationGracePeriodSeconds" not in spec:
            problem(where, f"{owner}: no terminationGracePeriodSeconds")
        for c in spec.get("containers", []):
            cw = f"{owner} container {c['name']}"
            env = env_of(c)
            binary = (c.get("command") or [""])[0]
            if binary not in flags:
                problem(where, f"{cw}: command {c.get('command')} is not g4-coordinator or g4-worker")
                continue
            accepted, source = flags[binary]
            values = {}
            for a in c.get("args", []):
                for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                    if ref not in env:
                        problem(where, f"{cw}: arg {a} references ${ref} which is not in its environment")
                    a = a.replace(f"$({ref})", str(env.get(ref, "")))
                if a.startswith("--"):
                    flag, _, value = a.partition("=")
                    if flag.replace("_", "-") not in accepted:
                        problem(where, f"{cw}: {binary} does not accept {flag} (flags from {source})")
                    values[flag] = value
            effective[binary] = values
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if not p:
                    problem(where, f"{cw}: no {probe}")
                    continue
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in p:
                        port = p[handler].get("port")
                        if handler == "grpc" and not isinstance(port, int):
                            problem(where, f"{cw}: {probe}.grpc.port must be a number, got {port!r}")
                        elif not port_ok(c, port):
                            problem(where, f"{cw}: {probe} port {port!r} is not a container port")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    problem(where, f"{cw}: volumeMount {m['name']} has no volume")
                elif "persistentVolumeClaim" in volumes[m["name"]] or "hostPath" in volumes[m["name"]]:
                    mounts[binary] = m
                    if not m.get("readOnly"):
                        problem(where, f"{cw}: model volume mount is not readOnly")
            if "metrics" not in container_ports(c):
                problem(where, f"{cw}: no container port named metrics")
            # SIGTERM drains for --drain-timeout (after preStop); the grace period must cover
            # both, plus the shutdown after the drain, or the kubelet SIGKILLs mid-drain.
            if "--drain-timeout" not in values:
                problem(where, f"{cw}: no --drain-timeout (SIGTERM drain, docs/resilience.md)")
            else:
                drain = duration_seconds(values["--drain-timeout"])
                pre = prestop_sleep_seconds(c)
                grace = spec.get("terminationGracePeriodSeconds", 30)
                need = drain + pre + (40 if binary == "g4-worker" else 10)
                if drain is None:
                    problem(where, f"{cw}: --drain-timeout={values['--drain-timeout']} is not a duration")
                elif grace < need:
                    problem(where, f"{cw}: terminationGracePeriodSeconds {grace} < preStop {pre} s + "
                                   f"--drain-timeout {drain} s + shutdown ({need} s)")
            if binary == "g4-coordinator" and prestop_sleep_seconds(c) == 0:
                problem(where, f"{cw}: no preStop sleep (endpoints must drop the pod before the drain)")
            if binary == "g4-worker":
                lim = c.get("resources", {}).get("limits", {})
                if str(lim.get("nvidia.com/gpu")) != "1":
                    problem(where, f"{cw}: limits nvidia.com/gpu is {lim.get('nvidia.com/gpu')}, want 1 (one g4-worker per GPU)")
                if not any(m.get("mountPath") == "/dev/shm" for m in c.get("volumeMounts", [])):
                    problem(where, f"{cw}: no /dev/shm mount")
                if values.get("--host") and not any(
                        e["name"] == "POD_IP" and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP"
                        for e in c.get("env", [])):
                    problem(where, f"{cw}: --host is not the pod IP from the downward API")

    # The model directory is the same path in every pod, under the model volume.
    coord, work = effective.get("g4-coordinator", {}), effective.get("g4-worker", {})
    if "g4-coordinator" not in effective or "g4-worker" not in effective:
        problem(where, "need one g4-coordinator and one g4-worker container")
        return
    if set(mounts) != {"g4-coordinator", "g4-worker"}:
        problem(where, f"the model volume is mounted only in {sorted(mounts)}")
    elif mounts["g4-coordinator"]["mountPath"] != mounts["g4-worker"]["mountPath"]:
        problem(where, "the model volume is mounted at different paths on coordinator and workers")
    elif not coord.get("--model", "").startswith(mounts["g4-coordinator"]["mountPath"].rstrip("/") + "/"):
        problem(where, f"--model {coord.get('--model')} is not under the model volume")
    # The workers load only from the model volume (docs/security.md), and the model is in it.
    root = work.get("--model-root", "")
    if not root:
        problem(where, "g4-worker has no --model-root: Load would read any path on the node")
    elif not coord.get("--model", "").startswith(root.rstrip("/") + "/"):
        problem(where, f"--model {coord.get('--model')} is outside the workers' --model-root {root}")

    # Services: selectors match pods, target ports exist; workers dial a Service that publishes
    # not-ready addresses.
    services = {d["metadata"]["name"]: d for d in by_kind.get("Service", [])}
    for sname, s in services.items():
        sel = s["spec"].get("selector", {})
        selected = [(o, t) for o, _, t in pods if labels_match(sel, t.get("metadata", {}).get("labels", {}))]
        if not selected:
            problem(where, f"Service {sname}: selector {sel} matches no pod template")
        for sp in s["spec"].get("ports", []):
            tp = sp.get("targetPort", sp["port"])
            for o, t in selected:
                if not any(port_ok(c, tp) for c in t["spec"]["containers"]):
                    problem(where, f"Service {sname}: targetPort {tp!r} is not a port of {o}")
    host, _, port = work.get("--coordinator", "").partition(":")
    svc = services.get(host.split(".")[0])
    if not svc:
        problem(where, f"g4-worker --coordinator {host} is not a rendered Service")
    else:
        if not svc["spec"].get("publishNotReadyAddresses"):
            problem(where, f"Service {host}: workers register before the coordinator is ready; set publishNotReadyAddresses")
        if not any(str(p["port"]) == port for p in svc["spec"].get("ports", [])):
            problem(where, f"Service {host} has no port {port}")
        # Two planes (docs/security.md): workers dial the internal port, which only the fleet
        # Service exposes.
        if not coord.get("--internal-port"):
            problem(where, "the coordinator has no --internal-port: the Fleet service would share the public port")
        elif port != coord.get("--internal-port"):
            problem(where, f"workers dial port {port}, the coordinator's --internal-port is {coord.get('--internal-port')}")
        for sname, s in services.items():
            if sname == host.split(".")[0]:
                continue
            for sp in s["spec"].get("ports", []):
                if sp.get("targetPort") == "internal" or str(sp.get("targetPort")) == coord.get("--internal-port"):
                    problem(where, f"Service {sname} exposes the internal plane (port {sp['port']})")
        for sp in svc["spec"].get("ports", []):
            if sp.get("targetPort") != "internal" and str(sp.get("targetPort")) != coord.get("--internal-port"):
                problem(where, f"Service {host} (internal) also exposes {sp.get('targetPort')!r}")
    check_network_policies(where, by_kind.get("NetworkPolicy", []), pods)
    check_internal_tls(where, by_kind, pods, effective)
    for flag, portname in (("--port", "grpc"), ("--internal-port", "internal"), ("--http-port", "http"),
                           ("--metrics-port", "metrics")):
        for o, d, t in pods:
            for c in t["spec"]["containers"]:
                if c["command"][0] == "g4-coordinator" and str(container_ports(c).get(portname)) != coord.get(flag):
                    problem(where, f"coordinator {flag}={coord.get(flag)} but container port {portname} is {container_ports(c).get(portname)}")
                if c["command"][0] == "g4-worker" and flag not in ("--http-port", "--internal-port") and str(container_ports(c).get(portname)) != work.get(flag):
                    problem(where, f"worker {flag}={work.get(flag)} but container port {portname} is {container_ports(c).get(portname)}")

    # PodMonitor selects both pods and scrapes a named port they have; PDB selects the LWS.
    for pm in by_kind.get("PodMonitor", []):
        sel = pm["spec"].get("selector", {}).get("matchLabels", {})
        selected = [(o, t) for o, _, t in pods if labels_match(sel, t.get("metadata", {}).get("labels", {}))]
        if len(selected) != len(pods):
            problem(where, f"PodMonitor {pm['metadata']['name']}: selects {len(selected)} of {len(pods)} pod templates")
        for ep in pm["spec"].get("podMetricsEndpoints", []):
            for o, t in selected:
                if not any(ep.get("port") in container_ports(c) for c in t["spec"]["containers"]):
                    problem(where, f"PodMonitor: port {ep.get('port')!r} is not a named port of {o}")
    lws = by_kind.get("LeaderWorkerSet", [{}])[0]
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        if sel.get("leaderworkerset.sigs.k8s.io/name") != lws.get("metadata", {}).get("name"):
            problem(where, f"PodDisruptionBudget {pdb['metadata']['name']}: does not select the LeaderWorkerSet's pods")

    # Parallel degrees: one group = one replica.
    lwt = lws.get("spec", {}).get("leaderWorkerTemplate", {})
    size, groups = lwt.get("size", 1), lws.get("spec", {}).get("replicas", 1)
    tp = int(coord.get("--tensor-parallel-size") or 1)
    ep = int(coord.get("--expert-parallel-size") or 1)
    nrep = int(coord.get("--num-replicas") or 0)
    if size != tp:
        problem(where, f"LeaderWorkerSet size {size} != --tensor-parallel-size {tp}")
    if nrep != groups:
        problem(where, f"LeaderWorkerSet replicas {groups} != --num-replicas {nrep}")
    if ep < 1 or tp % ep:
        problem(where, f"--expert-parallel-size {ep} does not divide the ranks per replica {tp}")
    if lwt.get("restartPolicy") != "RecreateGroupOnPodRestart":
        problem(where, "LeaderWorkerSet restartPolicy should be RecreateGroupOnPodRestart")
    print(f"{where} ok: {len(docs)} objects, TP {tp}, EP {ep}, {groups} replica(s) x {size} GPU(s), "
          f"model {coord.get('--model')}" if not problems else f"{where} checked")


def exported_metrics(repo):
    text = open(os.path.join(repo, "docs/metrics.md")).read()
    names = set()
    for line in text.splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram)", line)
        if m:
            names.add((m.group(1), m.group(2)))
    return names


def check_metric_names(where, text, exported):
    known = {n for n, _ in exported}
    histos = {n for n, t in exported if t == "histogram"}
    used = set(re.findall(r"g4serve_([a-zA-Z0-9_]+)", text))
    if not used:
        problem(where, "uses no g4serve_ metric")
    for u in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", u)
        if u in known and u not in histos:
            continue
        if base in histos and base != u:
            continue
        problem(where, f"g4serve_{u} is not a metric in docs/metrics.md"
                + (" (a histogram: use _bucket/_sum/_count)" if u in histos else ""))
    return used


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rendered", action="append", default=[], help="OVERLAY=FILE from kubectl kustomize")
    ap.add_argument("--rules-out", help="write the PrometheusRule's spec here for promtool")
    args = ap.parse_args()
    repo = args.repo
    rendered = dict(r.split("=", 1) for r in args.rendered)
    flags = accepted_flags(repo)
    for b, (f, src) in flags.items():
        print(f"flags of {b}: {len(f)} from {src}")
    overlays_dir = os.path.join(repo, "deploy/overlays")
    overlays = sorted(os.listdir(overlays_dir))
    for o in overlays:
        if o in rendered:
            with open(rendered[o]) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
        else:
            docs = render(os.path.join(overlays_dir, o))
        check_overlay(o, docs, flags)

    exported = exported_metrics(repo)
    if len(exported) < 20:
        problem("docs/metrics.md", f"found only {len(exported)} metric rows; the table format changed?")
    mon = os.path.join(repo, "deploy/monitoring")
    try:
        with open(os.path.join(mon, "g4serve-dashboard.json")) as f:
            dash = json.load(f)
        exprs = [t.get("expr", "") for p in dash.get("panels", []) for t in p.get("targets", [])]
        if not exprs:
            problem("dashboard", "no panel queries")
        used = check_metric_names("deploy/monitoring/g4serve-dashboard.json", "\n".join(exprs), exported)
        print(f"[dashboard] {len(dash['panels'])} panels, {len(exprs)} queries, {len(used)} metric names")
    except (OSError, ValueError) as e:
        problem("deploy/monitoring/g4serve-dashboard.json", f"does not parse: {e}")
    mondocs = render(mon)
    rules = [d for d in mondocs if d.get("kind") == "PrometheusRule"]
    if not rules:
        problem("deploy/monitoring", "no PrometheusRule")
    else:
        exprs = [r.get("expr", "") for g in rules[0]["spec"]["groups"] for r in g["rules"]]
        used = check_metric_names("deploy/monitoring/prometheusrule.yaml", "\n".join(exprs), exported)
        alerts = [r.get("alert") for g in rules[0]["spec"]["groups"] for r in g["rules"]]
        print(f"[alerts] {len(alerts)} rules: {', '.join(alerts)}")
        if args.rules_out:
            with open(args.rules_out, "w") as f:
                yaml.safe_dump(rules[0]["spec"], f)
    dash_cm = [d for d in mondocs if d.get("kind") == "ConfigMap"]
    if not dash_cm or "g4serve-dashboard.json" not in dash_cm[0].get("data", {}):
        problem("deploy/monitoring", "the dashboard ConfigMap is not generated")

    for p in problems:
        print("FAIL " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
