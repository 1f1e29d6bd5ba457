"""Checks that the rendered Kubernetes manifests agree with the host and its image.

Schema validation (kubernetes-validate) says the manifests are well-formed; this says they are
right for voice-host: every variable they set is one the host reads, the probes and ports are the
ones the host serves, the pod outlives its drain, the autoscaler's metric exists, and the host
started with the manifest's configuration is healthy, ready, serves admin on the admin port only
and exits 0 on SIGTERM within the grace period. Run by scripts/check-deploy.sh:

    python3 check_deploy.py RENDERED.yaml HOST_BINARY DOCKERFILE PLUGIN_DIR
    python3 check_deploy.py --railway railway.json HOST_BINARY
"""

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def setting(config, host, name):
    """A numeric setting of the ConfigMap, or the host's default for it."""
    value = config.get(name, host_default(host, name))
    if value is None or not value.isdigit():
        sys.exit(f"check-deploy: {name}={value!r} is not a number")
    return int(value)


def one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"check-deploy: expected one {kind}, found {len(found)}")
    return found[0]


@functools.cache
def help_text(host):
    return subprocess.run([host, "--help"], capture_output=True, text=True, check=True).stdout


def host_variables(host):
    """Names of the environment variables the host reads, from its own --help."""
    section = help_text(host).split("Environment", 1)[1]
    return set(re.findall(r"^\s{2}([A-Z][A-Z0-9_]+)\s", section, re.M))


def host_default(host, name):
    m = re.search(rf"^\s{{2}}{name}\s.*\[default: ([^\]]+)\]", help_text(host), re.M)
    return m.group(1) if m else None


def dockerfile_facts(path):
    text = open(path).read()
    runtime = text.rsplit("\nFROM ", 1)[1]
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"^ENV (.+)$", runtime, re.M))))
    user = re.search(r"^USER (\d+)", runtime, re.M)
    return env, int(user.group(1)) if user else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def static_checks(docs, host, dockerfile):
    deployment = one(docs, "Deployment")
    config = one(docs, "ConfigMap")["data"]
    service = one(docs, "Service")
    ingress = one(docs, "Ingress")
    hpa = one(docs, "HorizontalPodAutoscaler")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    known = host_variables(host)
    for name in list(config) + [e["name"] for e in container.get("env", [])]:
        check(name in known, f"{name} is set by the manifests but the host does not read it")
    for e in container.get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        check(ref is None or ref.get("optional") is True,
              f"{e['name']}: a missing secret key must not stop the pod (optional: true)")

    grace = pod["terminationGracePeriodSeconds"]
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain_s = setting(config, host, "DRAIN_TIMEOUT_MS") / 1000
    check(grace > pause + drain_s,
          f"terminationGracePeriodSeconds {grace} must exceed preStop {pause} s + drain {drain_s} s")

    port = setting(config, host, "PORT")
    check(ports.get("http") == port, f"container port `http` {ports.get('http')} != PORT {port}")
    for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")]:
        got = container[probe]["httpGet"]
        check(got["path"] == path and got["port"] == "http", f"{probe} must GET {path} on http")
    admin_port = int(config["ADMIN_BIND"].rsplit(":", 1)[1])
    check(ports.get("admin") == admin_port, "container port `admin` must be ADMIN_BIND's port")
    exposed = {p["targetPort"] for p in service["spec"]["ports"]}
    check(exposed == {"http"}, f"the Service must expose `http` only (admin stays inside), has {exposed}")
    backends = {p["backend"]["service"]["port"]["name"]
                for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    check(backends == {"http"}, "the Ingress must route to the Service's `http` port")

    session_s = setting(config, host, "MAX_SESSION_MS") / 1000
    notes = ingress["metadata"].get("annotations", {})
    for key in ["proxy-read-timeout", "proxy-send-timeout"]:
        value = int(notes.get(f"nginx.ingress.kubernetes.io/{key}", "60"))
        check(value >= session_s, f"ingress {key} {value} s cuts sessions shorter than {session_s} s")

    target = float(hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"])
    check(target < setting(config, host, "MAX_SESSIONS"),
          "the HPA must add replicas before pods reach MAX_SESSIONS")

    image_env, image_user = dockerfile_facts(dockerfile)
    check(int(image_env.get("PORT", 0)) == port, "the image's PORT differs from the manifests'")
    sc = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == image_user,
          f"runAsUser must be the image's USER {image_user}")
    check(sc.get("readOnlyRootFilesystem") is True, "the root filesystem must be read-only")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    check(image_env.get("XDG_CACHE_HOME") in mounts,
          "the plug-in cache (XDG_CACHE_HOME) needs a writable volume on a read-only root")
    return config, hpa, grace - pause


def live_check(config, hpa, host, plugin_dir, exit_within_s):
    """Starts the host with the manifests' configuration and probes it like the kubelet."""
    port, admin_port = free_port(), free_port()
    token = "deploy-check-admin-token-0123456789abcdef"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    # The image's models are at /srv/models; here the host reads the installed ones.
    models = os.environ.get("MODELS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "voice-host", "models")
    env.update(config)
    cache = tempfile.mkdtemp(prefix="voice-host-deploy-check-")
    # An emptyDir volume is created world-writable: the host must still keep its compiled
    # plug-ins there (in a private directory of its own inside).
    os.chmod(cache, 0o777)
    env.update({"PORT": str(port), "ADMIN_BIND": f"127.0.0.1:{admin_port}", "ADMIN_TOKEN": token,
                "PLUGIN_DIR": plugin_dir, "XDG_CACHE_HOME": cache, "MODELS_DIR": models})
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([host], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while get(f"{base}/healthz")[0] != 200:
            if proc.poll() is not None:
                sys.exit("check-deploy: the host refused the manifests' configuration:\n"
                         + proc.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                sys.exit("check-deploy: the host never answered /healthz")
            time.sleep(0.2)
        status, body = get(f"{base}/readyz")
        check(status == 200, f"/readyz with the manifests' configuration: {status} {body}")
        status, body = get(f"{base}/metrics")
        metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
        check(re.search(rf"^{metric}\b", body, re.M) is not None,
              f"the HPA scales on {metric}, which /metrics does not have")
        check(get(f"http://127.0.0.1:{admin_port}/admin/plugins", token)[0] == 200,
              "/admin/plugins must answer on the admin port")
        check(get(f"{base}/admin/plugins", token)[0] == 404,
              "/admin/plugins must not answer on the public port")
        compiled = [f for _, _, files in os.walk(cache) for f in files if f != "cache.key"]
        check(compiled, "the host kept no compiled plug-in in the cache volume")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=exit_within_s)
            check(code == 0, f"the host exited {code} on SIGTERM")
        except subprocess.TimeoutExpired:
            check(False, f"the host was still running {exit_within_s} s after SIGTERM (killed)")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(cache, ignore_errors=True)


def railway_checks(path, host):
    """railway.json: builds this Dockerfile, gates on readiness, outlives the default drain."""
    deploy = json.load(open(path))["deploy"]
    check(deploy["healthcheckPath"] == "/readyz", "railway.json must gate deploys on /readyz")
    drain_s = int(host_default(host, "DRAIN_TIMEOUT_MS")) / 1000
    check(isinstance(deploy["drainingSeconds"], int) and deploy["drainingSeconds"] > drain_s,
          f"railway.json drainingSeconds must be a number above the drain ({drain_s} s)")


def main():
    if sys.argv[1] == "--railway":
        railway_checks(sys.argv[2], sys.argv[3])
        report()
    rendered, host, dockerfile, plugin_dir = sys.argv[1:5]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    config, hpa, exit_within_s = static_checks(docs, host, dockerfile)
    live_check(config, hpa, host, plugin_dir, exit_within_s)
    report()


def report():
    for f in failures:
        print(f"check-deploy: {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
