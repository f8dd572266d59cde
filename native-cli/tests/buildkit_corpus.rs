//! The BuildKit corpus: every case under `tests/buildkit/cases/` is built with `layerwright build` and compared with
//! what BuildKit itself produced for it (`expected.json`, recorded by `tests/buildkit/record.py` with a BuildKit
//! binary): the image config (exactly), the layer count and the merged file tree. Cases that still differ for a
//! known reason are listed in `tests/buildkit/known-differences.txt`; a listed case that now matches fails the test
//! so that the list only shrinks.

use crate::common;
mod servers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use layerwright::store::Store;
use lw_layer::{Entry, EntryKind, FileTree};
use lw_test_kit::ssh::Agent;
use serde_json::Value;
use servers::Served;

/// The base image every `FROM busybox` case starts from; the recorder loads the same image into BuildKit.
const BASE: &str = "busybox";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildkit")
}

/// Debian's static busybox with a few applets, two users and some groups (for --chown and RUN's groups).
fn base_files() -> Vec<(Entry, Vec<u8>)> {
    let bb = std::fs::read(BUSYBOX).expect("busybox-static is installed (/bin/busybox)");
    let mut v = vec![
        (Entry::dir("bin", 0o755), vec![]),
        (Entry::file("bin/busybox", 0o755, 0), bb),
    ];
    for applet in [
        "cat", "chmod", "echo", "id", "ln", "ls", "mkdir", "rm", "sh", "touch", "true",
    ] {
        v.push((Entry::symlink(&format!("bin/{applet}"), "busybox"), vec![]));
    }
    v.push((Entry::dir("etc", 0o755), vec![]));
    v.push((
        Entry::file("etc/passwd", 0o644, 0),
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n".to_vec(),
    ));
    v.push((
        Entry::file("etc/group", 0o644, 0),
        b"root:x:0:\nstaff:x:50:\napp:x:1000:\nextra:x:2000:app\n".to_vec(),
    ));
    v.push((Entry::dir("home", 0o755), vec![]));
    v.push((
        Entry {
            uid: 1000,
            gid: 1000,
            ..Entry::dir("home/app", 0o755)
        },
        vec![],
    ));
    v.push((Entry::dir("root", 0o700), vec![]));
    v.push((Entry::dir("tmp", 0o1777), vec![]));
    v
}

/// A store holding the base image; returns its manifest digest.
fn store_with_base(root: &Path) -> String {
    let store = Store::open(root).unwrap();
    make_busybox_image(&store, BASE, &[base_files()])
        .digest
        .to_string()
}

/// Write the base image as an OCI archive to `$LW_BUILDKIT_BASE_TAR`, for the recorder to load into BuildKit.
#[test]
#[ignore = "used by tests/buildkit/record.py"]
fn export_base() {
    let out = std::env::var("LW_BUILDKIT_BASE_TAR").expect("LW_BUILDKIT_BASE_TAR names the output");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    store_with_base(&root);
    lw_ok(&root, &["save", BASE, "-o", &out]);
}

/// Copy a directory of the corpus with fixed modes: directories 0755, files 0644 or 0755 (git keeps only the
/// executable bit).
fn copy_fixed_modes(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dst).unwrap();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let meta = std::fs::symlink_metadata(&s).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s).unwrap(), &d).unwrap();
        } else if meta.is_dir() {
            copy_fixed_modes(&s, &d);
        } else {
            std::fs::copy(&s, &d).unwrap();
            let mode = if meta.permissions().mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            };
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Copy a case's `context/` to `dest` with fixed modes (see [`copy_fixed_modes`]), then the case's `dirs` and
/// `modes` files on top. The recorder does the same.
fn prepare_context(case: &Path, dest: &Path) {
    let src = case.join("context");
    if src.is_dir() {
        copy_fixed_modes(&src, dest);
    } else {
        std::fs::create_dir_all(dest).unwrap();
    }
    // Empty directories of the context (git keeps none): `dirs` lists them, one path a line.
    if let Ok(dirs) = std::fs::read_to_string(case.join("dirs")) {
        use std::os::unix::fs::PermissionsExt;
        for d in dirs.lines().filter(|l| !l.trim().is_empty()) {
            std::fs::create_dir_all(dest.join(d)).unwrap();
            std::fs::set_permissions(dest.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    if let Ok(modes) = std::fs::read_to_string(case.join("modes")) {
        use std::os::unix::fs::PermissionsExt;
        for line in modes.lines().filter(|l| !l.trim().is_empty()) {
            let (p, m) = line.rsplit_once(' ').expect("modes: `path mode` lines");
            let m = u32::from_str_radix(m, 8).expect("modes: octal mode");
            std::fs::set_permissions(dest.join(p), std::fs::Permissions::from_mode(m)).unwrap();
        }
    }
}

/// The build flags a case asks for: `build-args` (K=V lines), `target` (one stage name) and `secrets` (ID=FILE
/// lines, FILE relative to the case).
fn case_flags(case: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(s) = std::fs::read_to_string(case.join("secrets")) {
        for l in s.lines().filter(|l| !l.is_empty()) {
            let (id, file) = l.split_once('=').expect("secrets: ID=FILE lines");
            v.push("--secret".to_string());
            v.push(format!("id={id},src={}", case.join(file).display()));
        }
    }
    if let Ok(s) = std::fs::read_to_string(case.join("build-args")) {
        for l in s.lines().filter(|l| !l.is_empty()) {
            v.push("--build-arg".to_string());
            v.push(l.to_string());
        }
    }
    if let Ok(s) = std::fs::read_to_string(case.join("target")) {
        v.push("--target".to_string());
        v.push(s.trim().to_string());
    }
    v
}

/// What a build produced, in the recorded form.
#[derive(Debug)]
struct Image {
    config: Value,
    config_digest: String,
    manifest_digest: String,
    layers: usize,
    files: BTreeMap<String, String>,
}

fn read_json(p: &Path) -> Value {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Read the single image of an extracted OCI layout.
fn read_layout(dir: &Path) -> Result<Image, String> {
    let blob = |d: &str| dir.join("blobs").join(d.replace(':', "/"));
    let mut desc = read_json(&dir.join("index.json"))["manifests"][0].clone();
    let mut doc = read_json(&blob(desc["digest"].as_str().unwrap()));
    while doc.get("manifests").is_some() {
        desc = doc["manifests"][0].clone();
        doc = read_json(&blob(desc["digest"].as_str().unwrap()));
    }
    let config_digest = doc["config"]["digest"].as_str().unwrap().to_string();
    let mut tree = FileTree::with_data(u64::MAX);
    // BuildKit writes `"layers": null` for an image without layers.
    let empty = Vec::new();
    let layers = doc["layers"].as_array().unwrap_or(&empty);
    for (i, l) in layers.iter().enumerate() {
        let mt = l["mediaType"].as_str().unwrap();
        let c = lw_oci::media::layer_compression(mt).ok_or(format!("media type {mt}"))?;
        let f = std::fs::File::open(blob(l["digest"].as_str().unwrap())).unwrap();
        let r = lw_layer::compress::decoder(std::io::BufReader::new(f), c).unwrap();
        tree.apply_layer(i, r)
            .map_err(|e| format!("layer {i}: {e}"))?;
    }
    Ok(Image {
        config: read_json(&blob(&config_digest)),
        config_digest,
        manifest_digest: desc["digest"].as_str().unwrap().to_string(),
        layers: layers.len(),
        files: file_rows(&tree),
    })
}

/// The merged tree as `path → row` (the recorder writes the same rows): `file MODE UID:GID size=N sha256=HEX`,
/// `dir MODE UID:GID`, `symlink UID:GID -> TARGET`; a file with hard links adds ` links=N`.
fn file_rows(tree: &FileTree) -> BTreeMap<String, String> {
    let mut nlinks: BTreeMap<String, usize> = BTreeMap::new();
    for (_, n) in tree.iter() {
        if let EntryKind::Hardlink(t) = &n.entry.kind {
            *nlinks.entry(t.clone()).or_insert(1) += 1;
        }
    }
    let mut rows = BTreeMap::new();
    for (p, n) in tree.iter() {
        let (node, primary) = match &n.entry.kind {
            EntryKind::Hardlink(t) => (tree.get(t).unwrap_or(n), t.as_str()),
            _ => (n, p.as_str()),
        };
        let e = &node.entry;
        let owner = format!("{}:{}", e.uid, e.gid);
        let mut row = match &e.kind {
            EntryKind::File | EntryKind::Hardlink(_) => {
                let sha = lw_oci::Digest::sha256_of(node.data.as_deref().unwrap_or_default());
                format!(
                    "file {:04o} {owner} size={} sha256={}",
                    e.mode,
                    e.size,
                    sha.encoded()
                )
            }
            EntryKind::Dir => format!("dir {:04o} {owner}", e.mode),
            EntryKind::Symlink(t) => format!("symlink {owner} -> {t}"),
            EntryKind::CharDevice { major, minor } => {
                format!("chardev {:04o} {owner} {major},{minor}", e.mode)
            }
            EntryKind::BlockDevice { major, minor } => {
                format!("blockdev {:04o} {owner} {major},{minor}", e.mode)
            }
            EntryKind::Fifo => format!("fifo {:04o} {owner}", e.mode),
        };
        if let Some(k) = nlinks.get(primary) {
            row.push_str(&format!(" links={k}"));
        }
        for k in e.xattrs.keys() {
            row.push_str(&format!(" xattr={k}"));
        }
        rows.insert(p.clone(), row);
    }
    rows
}

/// The differences between BuildKit's recorded result and ours, one line each.
fn compare(name: &str, want: &Value, got: Result<Image, String>) -> Vec<String> {
    let mut out = Vec::new();
    let want_error = want["error"].as_str();
    let got = match (got, want_error) {
        (Err(_), Some(_)) => return out,
        (Err(e), None) => return vec![format!("{name}: BuildKit built it, we failed: {e}")],
        (Ok(_), Some(e)) => return vec![format!("{name}: BuildKit failed ({e}), we built it")],
        (Ok(g), None) => g,
    };
    if want["layers"].as_u64() != Some(got.layers as u64) {
        out.push(format!(
            "{name}: layers: BuildKit {}, ours {}",
            want["layers"], got.layers
        ));
    }
    // Deliberate divergence (README): where the image spec wants a string or an array BuildKit may write null (an
    // image without layers or history); we write `[]` for rootfs.diff_ids and leave `created`/`history` out.
    let mut wc = want["config"].clone();
    if wc["rootfs"]["diff_ids"].is_null() {
        wc["rootfs"]["diff_ids"] = Value::Array(vec![]);
    }
    for k in ["created", "history"] {
        if wc.get(k).is_some_and(Value::is_null) {
            wc.as_object_mut().unwrap().remove(k);
        }
    }
    let (wc, gc) = (&wc, &got.config);
    let keys: BTreeSet<&String> = wc
        .as_object()
        .unwrap()
        .keys()
        .chain(gc.as_object().unwrap().keys())
        .collect();
    for k in keys {
        // A key missing on one side differs from a null on the other: compare as options.
        let (w, g) = (wc.get(k.as_str()), gc.get(k.as_str()));
        match (w, g) {
            (Some(Value::Object(wo)), Some(Value::Object(go))) if k == "config" => {
                let sub: BTreeSet<&String> = wo.keys().chain(go.keys()).collect();
                for s in sub {
                    if wo.get(s) != go.get(s) {
                        out.push(format!(
                            "{name}: config.{s}: BuildKit {}, ours {}",
                            show(wo.get(s)),
                            show(go.get(s))
                        ));
                    }
                }
            }
            (Some(Value::Array(wa)), Some(Value::Array(ga))) if k == "history" => {
                for i in 0..wa.len().max(ga.len()) {
                    if wa.get(i) != ga.get(i) {
                        out.push(format!(
                            "{name}: history[{i}]: BuildKit {}, ours {}",
                            show(wa.get(i)),
                            show(ga.get(i))
                        ));
                    }
                }
            }
            _ if w != g => out.push(format!(
                "{name}: {k}: BuildKit {}, ours {}",
                show(w),
                show(g)
            )),
            _ => {}
        }
    }
    let wf: BTreeMap<String, String> = serde_json::from_value(want["files"].clone()).unwrap();
    for p in wf.keys().chain(got.files.keys()).collect::<BTreeSet<_>>() {
        if wf.get(p) != got.files.get(p) {
            out.push(format!(
                "{name}: /{p}: BuildKit {:?}, ours {:?}",
                wf.get(p),
                got.files.get(p)
            ));
        }
    }
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

/// `case: reason` lines.
fn known_differences() -> BTreeMap<String, String> {
    let s = std::fs::read_to_string(corpus_dir().join("known-differences.txt")).unwrap_or_default();
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (c, r) = l
                .split_once(':')
                .expect("known-differences: `case: reason`");
            (c.trim().to_string(), r.trim().to_string())
        })
        .collect()
}

struct Outcome {
    diffs: Vec<String>,
    /// BuildKit refused the case (both builders must).
    error_case: bool,
    same_config_digest: bool,
    same_manifest_digest: bool,
}

/// The base image as an archive (`save`), once per work directory.
fn base_tar(root: &Path, work: &Path) -> PathBuf {
    let tar = work.join("base.tar");
    if !tar.exists() {
        lw_ok(root, &["save", BASE, "-o", tar.to_str().unwrap()]);
    }
    tar
}

/// The `--build-context` flags of a case's `contexts.list` (record.py reads the same file): `NAME=dir:PATH` (a
/// directory of the case, copied with fixed modes), `NAME=oci-layout:base` (the base image as an OCI layout) or
/// `NAME=docker-image:REF` (REF at [`servers::REGISTRY_ADDR`], which serves the base image).
fn named_contexts(root: &Path, work: &Path, case: &Path) -> Vec<String> {
    let Ok(list) = std::fs::read_to_string(case.join("contexts.list")) else {
        return vec![];
    };
    let case_name = case.file_name().unwrap().to_str().unwrap();
    let mut v = Vec::new();
    for l in list.lines().filter(|l| !l.trim().is_empty()) {
        let (name, spec) = l.split_once('=').expect("contexts.list: NAME=KIND:VALUE");
        let value = match spec.split_once(':') {
            Some(("dir", p)) => {
                let d = work.join(format!("named-{case_name}-{name}"));
                if !d.exists() {
                    copy_fixed_modes(&case.join(p), &d);
                }
                d.display().to_string()
            }
            Some(("docker-image", r)) => format!("docker-image://{r}"),
            Some(("oci-layout", "base")) => {
                let layout = work.join("base-layout");
                if !layout.exists() {
                    std::fs::create_dir_all(&layout).unwrap();
                    run_ok(
                        Command::new("tar")
                            .arg("-xf")
                            .arg(base_tar(root, work))
                            .arg("-C")
                            .arg(&layout),
                    );
                }
                let digest = read_json(&layout.join("index.json"))["manifests"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .to_string();
                format!("oci-layout://{}@{digest}", layout.display())
            }
            _ => panic!("{case_name}: contexts.list: unknown {spec}"),
        };
        v.push("--build-context".to_string());
        v.push(format!("{name}={value}"));
    }
    v
}

/// Build a case's Dockerfile as `tag`, after the images its `images` file names (`NAME=CASE` lines: `FROM NAME` is
/// the image CASE builds, for a base image's ONBUILD triggers); the output of `layerwright build`.
fn build_tagged(root: &Path, work: &Path, case: &Path, tag: &str) -> std::process::Output {
    let name = case.file_name().unwrap().to_str().unwrap();
    if let Ok(images) = std::fs::read_to_string(case.join("images")) {
        for l in images.lines().filter(|l| !l.trim().is_empty()) {
            let (image, from) = l.split_once('=').expect("images: NAME=CASE lines");
            let o = build_tagged(root, work, &case.with_file_name(from), image);
            if !o.status.success() {
                return o;
            }
        }
    }
    let ctx = work.join(format!("ctx-{name}"));
    if !ctx.exists() {
        prepare_context(case, &ctx);
    }
    let df = case.join("Dockerfile");
    let mut args: Vec<String> = ["build", "-t", tag, "--progress", "plain", "-f"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(df.to_str().unwrap().into());
    args.extend(case_flags(case));
    args.extend(named_contexts(root, work, case));
    let registry = std::fs::read_to_string(case.join("contexts.list"))
        .is_ok_and(|l| l.contains("=docker-image:"))
        .then(|| servers::Registry::start(&work.join("registry-store"), &base_tar(root, work)));
    let agent = std::fs::read_to_string(case.join("ssh")).ok().map(|ids| {
        let a = Agent::start(&work.join(format!("ssh-{name}")), true);
        for id in ids.split_whitespace() {
            args.push("--ssh".into());
            args.push(format!("{id}={}", a.sock.display()));
        }
        a
    });
    args.push(ctx.to_str().unwrap().into());
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let served = case
        .join("http")
        .is_dir()
        .then(|| Served::start(case.join("http"), servers::HTTP_ADDR, false, vec![]));
    // `https/` over TLS with the corpus's test CA (trusted through SSL_CERT_FILE), `https-auth` rules.
    let served_tls = case.join("https").is_dir().then(|| {
        let auth = std::fs::read_to_string(case.join("https-auth"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect();
        Served::start(case.join("https"), servers::HTTPS_ADDR, true, auth)
    });
    // `sshd`: a repository of the case served by git over SSH to the agent's key.
    let sshd = std::fs::read_to_string(case.join("sshd")).ok().map(|repo| {
        let agent = agent
            .as_ref()
            .expect("a case with `sshd` has an `ssh` file");
        servers::Sshd::start(
            &work.join(format!("sshd-{name}")),
            &case.join(repo.trim()),
            agent,
        )
    });
    // The test CA, as Go's SSL_CERT_FILE; git gets it too (see README).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_layerwright"));
    cmd.arg("--root")
        .arg(root)
        .args(&a)
        .env("SSL_CERT_FILE", servers::ca_file());
    if let Some(s) = &sshd {
        cmd.env("GIT_SSH_COMMAND", &s.ssh_command);
    }
    let o = cmd.output().expect("run layerwright");
    drop(sshd);
    drop((served, served_tls, agent, registry));
    o
}

/// Build a case with `layerwright build` and read the image back, or the build's last words.
fn build_image(root: &Path, work: &Path, case: &Path) -> Result<Image, String> {
    let name = case.file_name().unwrap().to_str().unwrap();
    let tag = format!("corpus/{name}:1");
    let o = build_tagged(root, work, case, &tag);
    if o.status.success() {
        let tar = work.join(format!("{name}.tar"));
        lw_ok(root, &["save", &tag, "-o", tar.to_str().unwrap()]);
        let dir = work.join(format!("out-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        lw_test_kit::process::untar(&tar, &dir);
        read_layout(&dir)
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or(""),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn build_case(root: &Path, work: &Path, case: &Path) -> Outcome {
    let name = case.file_name().unwrap().to_str().unwrap();
    let want = read_json(&case.join("expected.json"));
    let got = build_image(root, work, case);
    let (same_config_digest, same_manifest_digest) = match &got {
        Ok(g) => (
            want["config_digest"].as_str() == Some(g.config_digest.as_str()),
            want["manifest_digest"].as_str() == Some(g.manifest_digest.as_str()),
        ),
        Err(_) => (false, false),
    };
    Outcome {
        error_case: want["error"].is_string(),
        diffs: compare(name, &want, got),
        same_config_digest,
        same_manifest_digest,
    }
}

#[test]
fn buildkit_corpus() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let base = store_with_base(&root);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    cases.sort();
    // LW_BUILDKIT_CASE=NAME[,NAME...] runs only those cases.
    if let Ok(only) = std::env::var("LW_BUILDKIT_CASE") {
        cases.retain(|c| only.split(',').any(|o| c.ends_with(o)));
    }
    // Every case was recorded over this very base image (Debian's busybox-static): another busybox would make
    // every FROM busybox case differ, so say so once.
    for case in &cases {
        let want = read_json(&case.join("expected.json"));
        assert_eq!(
            want["base_manifest"].as_str(),
            Some(base.as_str()),
            "{}: recorded over another base image (is /bin/busybox the busybox-static it was recorded with?)",
            case.display()
        );
    }
    let known = known_differences();
    let (mut equal, mut same_cfg, mut same_man, mut known_count) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut other_cfg = Vec::new();
    let mut errors = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let o = build_case(&root, tmp.path(), case);
        same_cfg += usize::from(o.same_config_digest);
        errors += usize::from(o.error_case);
        if !o.same_config_digest && !o.error_case {
            other_cfg.push(name.clone());
        }
        same_man += usize::from(o.same_manifest_digest);
        match (o.diffs.is_empty(), known.get(&name)) {
            (true, None) => equal += 1,
            (true, Some(_)) => {
                equal += 1;
                failures.push(format!(
                    "{name}: equal to BuildKit now: remove it from known-differences.txt"
                ));
            }
            (false, Some(reason)) => {
                known_count += 1;
                eprintln!("known difference {name} ({reason}):");
                for d in &o.diffs {
                    eprintln!("  {d}");
                }
            }
            (false, None) => failures.extend(o.diffs),
        }
    }
    for k in known.keys() {
        if !cases.iter().any(|c| c.ends_with(k)) && std::env::var("LW_BUILDKIT_CASE").is_err() {
            failures.push(format!("known-differences.txt names {k}, which is no case"));
        }
    }
    println!(
        "buildkit corpus: {equal}/{} equal, {known_count} known differences; {errors} error cases; of the {} images, \
         identical config digest: {same_cfg}, identical manifest digest: {same_man}\nother config digest: {}",
        cases.len(),
        cases.len() - errors,
        other_cfg.join(" ")
    );
    assert!(!cases.is_empty(), "no recorded cases");
    assert!(
        failures.is_empty(),
        "differences from BuildKit:\n{}",
        failures.join("\n")
    );
}

/// The container-config fields of an image config that BuildKit writes (record_classic.py's `config_subset`): the
/// classic builder adds empty ones.
fn config_subset(c: &Value) -> Value {
    const KEYS: [&str; 13] = [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Healthcheck",
        "ArgsEscaped",
        "Volumes",
        "WorkingDir",
        "Labels",
        "OnBuild",
        "StopSignal",
        "Shell",
    ];
    let mut out = serde_json::Map::new();
    for k in KEYS {
        match c.get(k) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(Value::Object(o)) if o.is_empty() => {}
            Some(v) => {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Docker 20.10's classic builder (`DOCKER_BUILDKIT=0`, recorded by record_classic.py in docker-classic.json) as a
/// second oracle, only where it agrees with BuildKit: for each case it built, every aspect on which it agrees
/// with BuildKit (config fields, history's empty layers, layer count, file tree) must equal ours.
#[test]
fn classic_builder_where_it_agrees_with_buildkit() {
    let data = read_json(&corpus_dir().join("docker-classic.json"));
    let cases = data
        .as_object()
        .expect("docker-classic.json: an object by case");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    store_with_base(&root);
    let (mut compared, mut failures) = (0, Vec::new());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, rec) in cases {
        let agrees = rec["agrees"].as_object().expect("agrees");
        for (k, v) in agrees {
            *counts.entry(k.as_str()).or_default() += usize::from(v.as_bool() == Some(true));
        }
        let agree = |k: &str| agrees.get(k).and_then(Value::as_bool) == Some(true);
        if !["config", "history", "layers", "tree"]
            .iter()
            .any(|k| agree(k))
        {
            continue;
        }
        compared += 1;
        let case = corpus_dir().join("cases").join(name);
        let got = match build_image(&root, tmp.path(), &case) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!(
                    "{name}: the classic builder built it, we failed: {e}"
                ));
                continue;
            }
        };
        if agree("config") && config_subset(&got.config["config"]) != rec["config"] {
            failures.push(format!(
                "{name}: config: classic {}, ours {}",
                rec["config"],
                config_subset(&got.config["config"])
            ));
        }
        let pattern: Vec<Value> = got.config["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| Value::Bool(e["empty_layer"].as_bool() == Some(true)))
                    .collect()
            })
            .unwrap_or_default();
        if agree("history") && Value::Array(pattern) != rec["history"] {
            failures.push(format!(
                "{name}: history's empty layers differ from the classic builder's"
            ));
        }
        if agree("layers") && rec["layers"].as_u64() != Some(got.layers as u64) {
            failures.push(format!(
                "{name}: layers: classic {}, ours {}",
                rec["layers"], got.layers
            ));
        }
        let files: BTreeMap<String, String> = serde_json::from_value(rec["files"].clone()).unwrap();
        if agree("tree") && files != got.files {
            failures.push(format!(
                "{name}: file tree differs from the classic builder's"
            ));
        }
    }
    println!(
        "docker classic builder: {} cases recorded; agreeing with BuildKit: {counts:?}; cases compared \
         with ours on those aspects: {compared}",
        cases.len()
    );
    assert!(
        compared > 0,
        "no case where the classic builder agrees with BuildKit"
    );
    assert!(
        failures.is_empty(),
        "differences from Docker's classic builder:\n{}",
        failures.join("\n")
    );
}
