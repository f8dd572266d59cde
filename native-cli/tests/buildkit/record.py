#!/usr/bin/env python3
"""Record BuildKit's results for the corpus under cases/ (expected.json beside each case's Dockerfile).

It uses a BuildKit that is already running and a buildctl binary; it builds neither. buildkitd must allow the
entitlements RUN --network=host and --security=insecure need (`--allow-insecure-entitlement network.host
--allow-insecure-entitlement security.insecure`) and trust the corpus's test CA for ADD over HTTPS (run it with
`SSL_CERT_FILE=tls/ca.pem`, as Go reads it); `git` must be installed for ADD <git URL>, openssh-client for cases
with an `ssh` file. Usage:

    LW_BUILDKIT_BASE_TAR=/tmp/base.tar cargo test -p layerwright --test tests buildkit_corpus::export_base -- --ignored
    record.py --buildctl PATH --addr unix:///PATH/buildkitd.sock --base-tar /tmp/base.tar \
              --commit BUILDKIT_COMMIT [CASE...]

Every case is built reproducibly (build-arg SOURCE_DATE_EPOCH=0, exporter option rewrite-timestamp=true) into an
OCI archive, and the recorded data is what buildkit_corpus.rs compares: the config JSON, the layer count, the
merged file tree (same row format as file_rows() there), and the config and manifest digests. `FROM busybox`
resolves to the base image (made by the test's export_base) through a named context from a local OCI layout.
"""

import argparse
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
# A case's http/ directory is served here while it builds (ADD <url>); buildkit_corpus.rs uses the same address.
HTTP_ADDR = ("127.0.0.1", 48765)
# A case's https/ directory is served here over TLS, with tls/server.pem (signed by tls/ca.pem, which buildkitd must
# trust: start it with SSL_CERT_FILE=tls/ca.pem); `https-auth` lines `PREFIX VALUE` make paths under PREFIX answer
# 401 unless the request's Authorization is VALUE.
HTTPS_ADDR = ("127.0.0.1", 48767)


def copy_tree(s, d):
    """Copy with fixed modes (git keeps only the executable bit): dirs 0755, files 0644 or 0755."""
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    for name in sorted(os.listdir(s)):
        sp, dp = os.path.join(s, name), os.path.join(d, name)
        if os.path.islink(sp):
            os.symlink(os.readlink(sp), dp)
        elif os.path.isdir(sp):
            copy_tree(sp, dp)
        else:
            shutil.copyfile(sp, dp)
            os.chmod(dp, 0o755 if os.stat(sp).st_mode & 0o100 else 0o644)


def prepare_context(case, dest):
    """The same fixed modes as prepare_context() in buildkit_corpus.rs."""
    src = os.path.join(case, "context")

    def copy(s, d):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        for name in sorted(os.listdir(s)):
            sp, dp = os.path.join(s, name), os.path.join(d, name)
            if os.path.islink(sp):
                os.symlink(os.readlink(sp), dp)
            elif os.path.isdir(sp):
                copy(sp, dp)
            else:
                shutil.copyfile(sp, dp)
                os.chmod(dp, 0o755 if os.stat(sp).st_mode & 0o100 else 0o644)

    if os.path.isdir(src):
        copy(src, dest)
    else:
        os.makedirs(dest)
    dirs = os.path.join(case, "dirs")
    if os.path.exists(dirs):
        for line in open(dirs):
            if line.strip():
                os.makedirs(os.path.join(dest, line.strip()), exist_ok=True)
                os.chmod(os.path.join(dest, line.strip()), 0o755)
    modes = os.path.join(case, "modes")
    if os.path.exists(modes):
        for line in open(modes):
            if line.strip():
                p, m = line.rsplit(" ", 1)
                os.chmod(os.path.join(dest, p), int(m, 8))


def case_opts(case):
    opts = []
    p = os.path.join(case, "build-args")
    if os.path.exists(p):
        for line in open(p).read().splitlines():
            if line:
                opts += ["--opt", "build-arg:" + line]
    # `buildkit-opts`: frontend options only BuildKit needs (K=V lines), such as cmdline= to keep its frontend from
    # fetching the image a `# syntax=` line names.
    p = os.path.join(case, "buildkit-opts")
    if os.path.exists(p):
        for line in open(p).read().splitlines():
            if line:
                opts += ["--opt", line]
    p = os.path.join(case, "target")
    if os.path.exists(p):
        opts += ["--opt", "target=" + open(p).read().strip()]
    p = os.path.join(case, "secrets")
    if os.path.exists(p):
        for line in open(p).read().splitlines():
            if line:
                sid, f = line.split("=", 1)
                opts += ["--secret", "id=%s,src=%s" % (sid, os.path.join(case, f))]
    return opts


def norm(name):
    name = name.lstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/") if name not in (".", "") else ""


def parent(p):
    return p.rsplit("/", 1)[0] if "/" in p else ""


def apply_layer(tree, data):
    """tree: path -> dict(kind, mode, uid, gid, size, data, target, xattrs)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
        for m in tf:
            p = norm(m.name)
            base, d = p.rsplit("/", 1)[-1], parent(p)
            if base == ".wh..wh..opq":
                for k in [k for k in tree if d == "" or k.startswith(d + "/")]:
                    del tree[k]
                continue
            if base.startswith(".wh."):
                victim = (d + "/" if d else "") + base[4:]
                for k in [k for k in tree if k == victim or k.startswith(victim + "/")]:
                    del tree[k]
                continue
            if p == "":
                continue
            old = tree.get(p)
            if old and old["kind"] == "dir" and not m.isdir():
                for k in [k for k in tree if k.startswith(p + "/")]:
                    del tree[k]
            q = parent(p)
            while q and q not in tree:
                tree[q] = dict(kind="dir", mode=0o755, uid=0, gid=0, size=0)
                q = parent(q)
            e = dict(mode=m.mode & 0o7777, uid=m.uid, gid=m.gid, size=0,
                     xattrs=sorted(k[len("SCHILY.xattr."):] for k in m.pax_headers
                                   if k.startswith("SCHILY.xattr.")))
            if m.isdir():
                e["kind"] = "dir"
            elif m.issym():
                e.update(kind="symlink", target=m.linkname)
            elif m.islnk():
                e.update(kind="hardlink", target=norm(m.linkname))
            elif m.ischr() or m.isblk():
                e.update(kind="chardev" if m.ischr() else "blockdev", dev="%d,%d" % (m.devmajor, m.devminor))
            elif m.isfifo():
                e["kind"] = "fifo"
            else:
                e.update(kind="file", size=m.size, data=tf.extractfile(m).read())
            tree[p] = e


def rows(tree):
    nlinks = {}
    for e in tree.values():
        if e["kind"] == "hardlink":
            nlinks[e["target"]] = nlinks.get(e["target"], 1) + 1
    out = {}
    for p, e in tree.items():
        primary = p
        if e["kind"] == "hardlink":
            primary = e["target"]
            e = tree[primary]
        owner = "%d:%d" % (e["uid"], e["gid"])
        k = e["kind"]
        if k == "file":
            row = "file %04o %s size=%d sha256=%s" % (e["mode"], owner, e["size"],
                                                     hashlib.sha256(e["data"]).hexdigest())
        elif k == "dir":
            row = "dir %04o %s" % (e["mode"], owner)
        elif k == "symlink":
            row = "symlink %s -> %s" % (owner, e["target"])
        elif k in ("chardev", "blockdev"):
            row = "%s %04o %s %s" % (k, e["mode"], owner, e["dev"])
        else:
            row = "fifo %04o %s" % (e["mode"], owner)
        if primary in nlinks:
            row += " links=%d" % nlinks[primary]
        for x in e.get("xattrs", []):
            row += " xattr=" + x
        out[p] = row
    return out


def read_oci_tar(path):
    with tarfile.open(path) as tf:
        blobs = {}

        def blob(d):
            if d not in blobs:
                blobs[d] = tf.extractfile("blobs/" + d.replace(":", "/")).read()
            return blobs[d]

        desc = json.loads(tf.extractfile("index.json").read())["manifests"][0]
        doc = json.loads(blob(desc["digest"]))
        while "manifests" in doc:
            desc = doc["manifests"][0]
            doc = json.loads(blob(desc["digest"]))
        tree = {}
        for l in doc.get("layers") or []:
            apply_layer(tree, blob(l["digest"]))
        return dict(
            config=json.loads(blob(doc["config"]["digest"])),
            config_digest=doc["config"]["digest"],
            manifest_digest=desc["digest"],
            layers=len(doc.get("layers") or []),
            files=rows(tree),
        )


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files (a bare git repository is served by git's dumb HTTP protocol), without a log line per request."""

    auth = []

    def log_message(self, *args):
        pass

    def send_head(self):
        path = self.path.split("?", 1)[0].lstrip("/")
        for prefix, value in self.auth:
            if path.startswith(prefix) and self.headers.get("Authorization") != value:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="lw"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
        return super().send_head()


def serve_tls(case):
    """The case's https/ directory over TLS at HTTPS_ADDR, with its https-auth rules."""
    import ssl
    auth = []
    p = os.path.join(case, "https-auth")
    if os.path.exists(p):
        auth = [tuple(l.split(" ", 1)) for l in open(p).read().splitlines() if l.strip()]
    handler = functools.partial(type("AuthHandler", (QuietHandler,), {"auth": auth}),
                                directory=os.path.join(case, "https"))
    server = http.server.ThreadingHTTPServer(HTTPS_ADDR, handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(HERE, "tls", "server.pem"), os.path.join(HERE, "tls", "server.key"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_agent(d):
    """An ssh-agent (openssh-client) on a socket under d, holding a new ed25519 key: (process, socket)."""
    os.makedirs(d)
    sock, key = os.path.join(d, "agent.sock"), os.path.join(d, "id")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    import socket
    while True:  # the socket file appears at bind(), before the agent listens
        try:
            c = socket.socket(socket.AF_UNIX)
            c.connect(sock)
            c.close()
            break
        except OSError:
            pass
    subprocess.run(["ssh-add", "-q", key], check=True, env=dict(os.environ, SSH_AUTH_SOCK=sock))
    return proc, sock, key


# A case's `sshd` file names a bare repository of the case; it is served by git over SSH at this address (an sshd
# of our own, openssh-server; buildkit_corpus.rs does the same) to the key of the case's agent only.
SSHD_PORT = 48769


def start_sshd(d, repo, pubkey):
    """sshd on 127.0.0.1:SSHD_PORT whose one authorized key may only run git-upload-pack on repo."""
    os.makedirs(d)
    os.makedirs("/run/sshd", exist_ok=True)
    # A copy with the refs/ directory git needs to call it a repository (git keeps no empty directory).
    shutil.copytree(repo, os.path.join(d, "repo.git"))
    repo = os.path.join(d, "repo.git")
    os.makedirs(os.path.join(repo, "refs", "heads"), exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, "host")], check=True)
    with open(os.path.join(d, "authorized_keys"), "w") as f:
        f.write('command="git-upload-pack \'%s\'",restrict %s' % (repo, open(pubkey).read()))
    conf = os.path.join(d, "sshd_config")
    with open(conf, "w") as f:
        f.write("ListenAddress 127.0.0.1:%d\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\nStrictModes no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                "PermitRootLogin prohibit-password\n"
                % (SSHD_PORT, os.path.join(d, "host"), os.path.join(d, "authorized_keys"), os.path.join(d, "pid")))
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf], stderr=subprocess.DEVNULL)
    import socket
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", SSHD_PORT), timeout=1).close()
            break
        except OSError:
            import time
            time.sleep(0.01)
    return proc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--buildctl", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--base-tar", required=True)
    ap.add_argument("--commit", required=True, help="the BuildKit commit the binaries were built from")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bk-record-")
    layout = os.path.join(work, "base")
    os.makedirs(layout)
    subprocess.run(["tar", "-xf", a.base_tar, "-C", layout], check=True)
    base_digest = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]["digest"]
    cases_dir = os.path.join(HERE, "cases")
    names = a.cases or sorted(os.listdir(cases_dir))

    def build(name, out, work_ids):
        """Build one case into the OCI archive `out`; returns buildctl's completed process."""
        case = os.path.join(cases_dir, name)
        ctx = os.path.join(work, "ctx-%s-%d" % (name, len(work_ids)))
        work_ids.append(ctx)
        prepare_context(case, ctx)
        cmd = [a.buildctl, "--addr", a.addr, "build", "--frontend", "dockerfile.v0",
               "--local", "context=" + ctx, "--local", "dockerfile=" + case,
               "--opt", "filename=Dockerfile", "--opt", "build-arg:SOURCE_DATE_EPOCH=0",
               "--oci-layout", "base=" + layout,
               "--opt", "context:busybox=oci-layout://base@" + base_digest,
               # RUN --network=host and --security=insecure need these entitlements (buildkitd must run with
               # --allow-insecure-entitlement network.host --allow-insecure-entitlement security.insecure).
               "--allow", "network.host", "--allow", "security.insecure",
               "--output", "type=oci,dest=%s,rewrite-timestamp=true" % out] + case_opts(case)
        # `images`: NAME=CASE lines; FROM NAME is the image CASE builds (for a base image's ONBUILD triggers).
        p = os.path.join(case, "images")
        if os.path.exists(p):
            for line in open(p).read().splitlines():
                if not line.strip():
                    continue
                iname, icase = line.split("=", 1)
                itar = os.path.join(work, "img-%s-%d.tar" % (icase, len(work_ids)))
                r = build(icase, itar, work_ids)
                if r.returncode != 0:
                    return r
                idir = os.path.join(work, "img-%s-%d" % (icase, len(work_ids)))
                os.makedirs(idir)
                subprocess.run(["tar", "-xf", itar, "-C", idir], check=True)
                idig = json.load(open(os.path.join(idir, "index.json")))["manifests"][0]["digest"]
                cmd += ["--oci-layout", "%s=%s" % (iname, idir),
                        "--opt", "context:%s=oci-layout://%s@%s" % (iname, iname, idig)]
        # `ssh`: agent ids (one a line) forwarded to RUN --mount=type=ssh, all to one ssh-agent holding a new key.
        agent = None
        p = os.path.join(case, "ssh")
        if os.path.exists(p):
            agent = start_agent(os.path.join(work, "ssh-%s-%d" % (name, len(work_ids))))
            for sid in open(p).read().split():
                cmd += ["--ssh", "%s=%s" % (sid, agent[1])]
        sshd = None
        p = os.path.join(case, "sshd")
        if os.path.exists(p):
            sshd = start_sshd(os.path.join(work, "sshd-%s-%d" % (name, len(work_ids))),
                              os.path.join(case, open(p).read().strip()), agent[2] + ".pub")
        # `contexts.list`: named build contexts, NAME=dir:PATH (a directory of the case, a local context),
        # NAME=oci-layout:base (the base image's OCI layout) or NAME=docker-image:REF (REF at the loopback registry
        # 127.0.0.1:48768, which must serve the base image: `layerwright --root S load -i BASE_TAR`, then
        # `layerwright --root S serve --addr 127.0.0.1:48768`; buildkitd.toml: [registry."127.0.0.1:48768"] http=true).
        p = os.path.join(case, "contexts.list")
        if os.path.exists(p):
            for line in open(p).read().splitlines():
                if not line.strip():
                    continue
                cname, spec = line.split("=", 1)
                kind, val = spec.split(":", 1)
                if kind == "dir":
                    cdir = os.path.join(work, "named-%s-%s-%d" % (name, cname, len(work_ids)))
                    copy_tree(os.path.join(case, val), cdir)
                    cmd += ["--local", "%s=%s" % (cname, cdir), "--opt", "context:%s=local:%s" % (cname, cname)]
                elif kind == "docker-image":
                    # A registry at 127.0.0.1:48768 serving the base image (layerwright serve over a store holding
                    # it, started by the caller; buildkitd's config must mark that registry http).
                    cmd += ["--opt", "context:%s=docker-image://%s" % (cname, val)]
                elif kind == "oci-layout" and val == "base":
                    cmd += ["--opt", "context:%s=oci-layout://base@%s" % (cname, base_digest)]
                else:
                    raise SystemExit("%s: contexts.list: unknown %s" % (name, spec))
        server = None
        if os.path.isdir(os.path.join(case, "http")):
            handler = functools.partial(QuietHandler, directory=os.path.join(case, "http"))
            server = http.server.ThreadingHTTPServer(HTTP_ADDR, handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        tls_server = serve_tls(case) if os.path.isdir(os.path.join(case, "https")) else None
        try:
            return subprocess.run(cmd, capture_output=True, text=True)
        finally:
            for srv in (server, tls_server):
                if srv:
                    srv.shutdown()
                    srv.server_close()
            for proc in (agent[0] if agent else None, sshd):
                if proc:
                    proc.kill()
                    proc.wait()

    for name in names:
        case = os.path.join(cases_dir, name)
        out = os.path.join(work, name + ".tar")
        p = build(name, out, [])
        if p.returncode == 0:
            rec = read_oci_tar(out)
            rec["error"] = None
        else:
            lines = [l for l in p.stderr.splitlines() if "ERROR" in l or "error:" in l]
            msg = lines[-1] if lines else p.stderr.strip().splitlines()[-1]
            # BuildKit names its snapshot refs with random ids: leave them out so a re-recording is stable.
            rec = dict(error=re.sub(r"ref [^ ]+::[^ :]+", "ref REF", msg))
        rec["buildkit"] = a.commit
        rec["base_manifest"] = base_digest
        with open(os.path.join(case, "expected.json.tmp"), "w") as f:
            json.dump(rec, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(os.path.join(case, "expected.json.tmp"), os.path.join(case, "expected.json"))
        print("%-28s %s" % (name, "error: " + rec["error"] if rec["error"] else
                            "%d layers, config %s" % (rec["layers"], rec["config_digest"][:19])))
    shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
