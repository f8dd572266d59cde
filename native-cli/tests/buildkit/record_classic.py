#!/usr/bin/env python3
"""Record what Docker 20.10's classic builder (`DOCKER_BUILDKIT=0 docker build`, Debian's docker.io) makes of the
corpus, and whether it agrees with BuildKit's recorded results (expected.json): writes docker-classic.json.

It starts a private dockerd (own data root, exec root and socket under a temporary directory; no bridge, no
iptables), loads the corpus base image as `busybox` (made by buildkit_corpus.rs's export_base), builds every case
with `--network host` and stops the daemon. It builds nothing of Docker's. Usage:

    record_classic.py --base-tar /tmp/base.tar [CASE...]

Per case it keeps: whether the classic builder failed; else the image's config fields BuildKit also writes (the
classic builder adds empty container fields and the daemon's own), the history's empty_layer pattern (its
`created_by` texts are another format: `/bin/sh -c #(nop) ...`), the layer count and the merged file tree in
record.py's rows. `agrees` says which of config, history and tree equal BuildKit's.
"""

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import record

HERE = os.path.dirname(os.path.abspath(__file__))
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
# The container config keys an image config may hold; the classic builder writes them all, empty ones included.
CONFIG_KEYS = ["User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Healthcheck", "ArgsEscaped", "Volumes",
               "WorkingDir", "Labels", "OnBuild", "StopSignal", "Shell"]


def config_subset(c):
    """The non-empty fields of a container config that BuildKit would write."""
    out = {}
    for k in CONFIG_KEYS:
        v = (c or {}).get(k)
        if v in (None, "", [], {}, False):
            continue
        out[k] = v
    return out


def history_pattern(cfg):
    return [bool(h.get("empty_layer")) for h in (cfg.get("history") or [])]


def start_dockerd(tmp):
    for d in ("data", "exec"):
        os.makedirs(os.path.join(tmp, d))
    with open(os.path.join(tmp, "daemon.json"), "w") as f:
        f.write("{}")
    sock = os.path.join(tmp, "docker.sock")
    log = open(os.path.join(tmp, "dockerd.log"), "w")
    p = subprocess.Popen([DOCKERD, "--config-file", os.path.join(tmp, "daemon.json"),
                          "--data-root", os.path.join(tmp, "data"), "--exec-root", os.path.join(tmp, "exec"),
                          "--pidfile", os.path.join(tmp, "dockerd.pid"), "-H", "unix://" + sock,
                          "--iptables=false", "--ip6tables=false", "--bridge=none", "--userland-proxy=false"],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    for _ in range(300):
        if docker(sock, ["version"]).returncode == 0:
            return p, sock
        time.sleep(0.2)
    p.terminate()
    sys.exit("dockerd did not start: see " + os.path.join(tmp, "dockerd.log"))


def docker(sock, args, env=None):
    e = dict(os.environ, DOCKER_CONFIG=os.path.join(os.path.dirname(sock), "client"), **(env or {}))
    e.pop("DOCKER_HOST", None)
    return subprocess.run([DOCKER, "-H", "unix://" + sock] + args, capture_output=True, text=True, env=e)


def build_case(sock, work, name):
    case = os.path.join(HERE, "cases", name)
    ctx = os.path.join(work, "ctx-" + name)
    record.prepare_context(case, ctx)
    args = ["build", "--network", "host", "-q", "-t", "classic/" + name.lower() + ":1", "-f",
            os.path.join(case, "Dockerfile")]
    p = os.path.join(case, "build-args")
    if os.path.exists(p):
        for line in open(p).read().splitlines():
            if line:
                args += ["--build-arg", line]
    p = os.path.join(case, "target")
    if os.path.exists(p):
        args += ["--target", open(p).read().strip()]
    server = None
    if os.path.isdir(os.path.join(case, "http")):
        handler = functools.partial(record.QuietHandler, directory=os.path.join(case, "http"))
        server = http.server.ThreadingHTTPServer(record.HTTP_ADDR, handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = docker(sock, args + [ctx], env={"DOCKER_BUILDKIT": "0"})
    finally:
        if server:
            server.shutdown()
            server.server_close()
    if r.returncode != 0:
        lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
        # The machine's resolver address is no part of the result.
        return dict(error=re.sub(r"lookup (\S+) on \S+: ", r"lookup \1: ", lines[-1]) if lines else "failed")
    out = os.path.join(work, name + ".tar")
    ref = "classic/" + name.lower() + ":1"
    s = docker(sock, ["save", "-o", out, ref])
    if s.returncode != 0 and "empty export" in s.stderr:
        # Docker 20.10 cannot save an image without layers: its config and history come from inspect.
        cfg = json.loads(docker(sock, ["image", "inspect", "--format", "{{json .Config}}", ref]).stdout)
        rows = docker(sock, ["history", "-q", "--no-trunc", ref]).stdout.split()
        return dict(error=None, config=config_subset(cfg), history=[True] * len(rows), layers=0, files={})
    if s.returncode != 0:
        sys.exit("docker save failed: " + s.stderr)
    img = read_docker_archive(out, work, name)
    os.remove(out)
    return img


def read_docker_archive(path, work, name):
    import tarfile
    with tarfile.open(path) as tf:
        man = json.loads(tf.extractfile("manifest.json").read())[0]
        cfg = json.loads(tf.extractfile(man["Config"]).read())
        tree = {}
        for l in man["Layers"]:
            record.apply_layer(tree, tf.extractfile(l).read())
    return dict(error=None, config=config_subset(cfg.get("config")), history=history_pattern(cfg),
                layers=len(man["Layers"]), files=record.rows(tree))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-tar", required=True)
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    names = a.cases or sorted(os.listdir(os.path.join(HERE, "cases")))
    tmp = tempfile.mkdtemp(prefix="lw-classic-")
    dockerd, sock = start_dockerd(tmp)
    out_path = os.path.join(HERE, "docker-classic.json")
    results = json.load(open(out_path)) if os.path.exists(out_path) and a.cases else {}
    try:
        l = docker(sock, ["load", "-i", a.base_tar])
        if l.returncode != 0:
            sys.exit("docker load: " + l.stderr)
        version = docker(sock, ["version", "--format", "{{.Server.Version}}"]).stdout.strip()
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        for name in names:
            if os.path.exists(os.path.join(HERE, "cases", name, "images")):
                # FROM an image another case builds: the classic builder would need it loaded too.
                got = dict(error="not recorded: the case needs an image another case builds")
            else:
                got = build_case(sock, work, name)
            want = json.load(open(os.path.join(HERE, "cases", name, "expected.json")))
            if got["error"] or want["error"]:
                agrees = dict(error=bool(got["error"]) == bool(want["error"]))
            else:
                agrees = dict(config=got["config"] == config_subset(want["config"].get("config")),
                              history=got["history"] == history_pattern(want["config"]),
                              layers=got["layers"] == want["layers"],
                              tree=got["files"] == want["files"])
            got["agrees"] = agrees
            got["docker"] = version
            results[name] = got
            print("%-28s %s" % (name, "error: " + got["error"] if got["error"] else
                                " ".join(k for k, v in agrees.items() if v) or "disagrees"))
    finally:
        dockerd.terminate()
        dockerd.wait()
        subprocess.run(["umount", "-R", os.path.join(tmp, "exec")], capture_output=True)
        subprocess.run(["umount", "-R", os.path.join(tmp, "data")], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    with open(out_path + ".tmp", "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(out_path + ".tmp", out_path)


if __name__ == "__main__":
    sys.exit(main())
