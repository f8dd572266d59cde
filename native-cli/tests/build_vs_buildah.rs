//! Differential tests of `layerwright build` against buildah (the witness): the same Dockerfiles, built from the
//! same busybox base image, must give the same image config and the same merged file tree, after the documented
//! normalisations below.

use crate::common;
use lw_test_kit::buildah;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use buildah::{file_rows, read_exported, Buildah, Exported, FileRow};
use common::*;
use layerwright::store::Store;
use lw_layer::tar::WriteOptions;
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::Compression;
use serde_json::Value;

/// The base image both builders start from (docker.io/ is how both normalise the short name).
const BASE: &str = "lwtest/busybox:1";
const BASE_FULL: &str = "docker.io/lwtest/busybox:1";

/// One differential case.
struct Case {
    name: &'static str,
    /// The Dockerfile layerwright builds.
    dockerfile: &'static str,
    /// When buildah 1.28 lacks the feature: an equivalent Dockerfile giving the result BuildKit documents for
    /// `dockerfile`, and why it is needed.
    buildah_dockerfile: Option<(&'static str, &'static str)>,
    /// Built first (same on both sides, tagged `lwtest/parent-<name>:1`): for ONBUILD.
    parent: Option<&'static str>,
    /// Extra build flags given to both builders.
    args: &'static [&'static str],
    /// Paths where buildah deviates from BuildKit: (path, the row BuildKit gives, why). Our row is compared with
    /// the documented row instead of buildah's.
    witness_overrides: &'static [(&'static str, &'static str, &'static str)],
    /// A known engine bug this case shows: run only by its own ignored test, never counted as passed.
    bug: Option<&'static str>,
}

const fn case(name: &'static str, dockerfile: &'static str) -> Case {
    Case {
        name,
        dockerfile,
        buildah_dockerfile: None,
        parent: None,
        args: &[],
        witness_overrides: &[],
        bug: None,
    }
}

mod cases;
use cases::{cases, run_cases};

/// /etc/passwd and /etc/group of the base image: `app` has uid 1001 and primary group 1002 (`staff`), so "user only"
/// chown rules (GID = UID number vs. primary group) are told apart; `appgrp` is 1003.
const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:app:/home/app:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\nstaff:x:1002:\nappgrp:x:1003:\n";

fn base_files() -> Vec<(Entry, Vec<u8>)> {
    let mut files: Vec<(Entry, Vec<u8>)> = busybox_files(&[])
        .into_iter()
        .filter(|(e, _)| e.path != "etc/passwd")
        .collect();
    files.push((Entry::file("etc/passwd", 0o644, 0), PASSWD.to_vec()));
    files.push((Entry::file("etc/group", 0o644, 0), GROUP.to_vec()));
    files.push((Entry::file("etc/existing.txt", 0o644, 0), b"old\n".to_vec()));
    files.push((Entry::dir("srv", 0o700), vec![]));
    files.push((Entry::dir("var", 0o755), vec![]));
    files.push((Entry::symlink("var/link-to-srv", "../srv"), vec![]));
    files
}

fn write_file(p: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A tar (gzip or plain) whose entries carry their own owners and modes, for ADD's unpacking.
fn archive(c: Compression) -> Vec<u8> {
    let mut w = LayerWriter::new(
        Vec::new(),
        c,
        WriteOptions {
            clamp_mtime: Some(0),
        },
    )
    .unwrap();
    let owned = |e: Entry, uid: u32, gid: u32| Entry { uid, gid, ..e };
    let entries = [
        (owned(Entry::dir("top", 0o750), 0, 0), &b""[..]),
        (
            owned(Entry::file("top/exe", 0o755, 0), 0, 0),
            &b"#!/bin/sh\n"[..],
        ),
        (
            owned(Entry::file("top/file.txt", 0o640, 0), 1000, 1000),
            &b"in archive\n"[..],
        ),
        (Entry::symlink("top/link", "file.txt"), &b""[..]),
        (Entry::file("root.txt", 0o600, 0), &b"root file\n"[..]),
    ];
    for (e, d) in &entries {
        w.tar().append_bytes(e, d).unwrap();
    }
    w.finish().unwrap().0
}

/// The shared build context: every case's Dockerfile is `df/<name>` inside it.
fn make_context(ctx: &Path) {
    write_file(&ctx.join("a.txt"), b"alpha\n", 0o644);
    write_file(&ctx.join("b.txt"), b"bravo\n", 0o644);
    write_file(&ctx.join("run.sh"), b"#!/bin/sh\necho run\n", 0o755);
    write_file(&ctx.join("secret.txt"), b"secret\n", 0o600);
    write_file(&ctx.join("ignored.txt"), b"must not be copied\n", 0o644);
    write_file(&ctx.join(".dockerignore"), b"ignored.txt\n", 0o644);
    let dir = ctx.join("dir");
    write_file(&dir.join("one.txt"), b"one\n", 0o644);
    write_file(&dir.join("sub/two.txt"), b"two\n", 0o644);
    write_file(&dir.join("sub/deeper/three.log"), b"three\n", 0o664);
    set_mode(&dir.join("sub/deeper"), 0o750);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    set_mode(&dir.join("empty"), 0o700);
    std::os::unix::fs::symlink("one.txt", dir.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("abs-link")).unwrap();
    write_file(&dir.join("hard1"), b"hard\n", 0o644);
    std::fs::hard_link(dir.join("hard1"), dir.join("hard2")).unwrap();
    let ex = ctx.join("ex");
    write_file(&ex.join("keep.txt"), b"keep\n", 0o644);
    write_file(&ex.join("drop.log"), b"drop\n", 0o644);
    write_file(&ex.join("sub/keep2.txt"), b"keep2\n", 0o644);
    write_file(&ex.join("sub/drop2.log"), b"drop2\n", 0o644);
    write_file(&ctx.join("arch.tar.gz"), &archive(Compression::Gzip), 0o644);
    write_file(&ctx.join("plain.tar"), &archive(Compression::None), 0o644);
    // What the heredocs of `copy_heredoc` hold, for buildah's equivalent Dockerfile.
    write_file(&ctx.join("heredoc/h1.txt"), b"hello world\n", 0o644);
    write_file(&ctx.join("heredoc/h2.txt"), b"hello $NAME\n", 0o644);
    write_file(&ctx.join("heredoc/h3.sh"), b"#!/bin/sh\necho hi\n", 0o644);
    std::fs::create_dir_all(ctx.join("df")).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Normalisations. Each is one documented difference between buildah and BuildKit that is not ours to judge.

/// buildah stamps every image with its version label (`io.buildah.version`); BuildKit adds no label.
fn drop_buildah_labels(cfg: &mut BTreeMap<String, Value>) {
    if let Some(Value::Object(l)) = cfg.get_mut("Labels") {
        l.remove("io.buildah.version");
    }
}

/// Absent, `null`, `[]`, `{}` and `""` all mean "not set" in a config; writers differ in which they emit.
fn drop_empty(cfg: &mut BTreeMap<String, Value>) {
    cfg.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    });
}

/// WorkingDir "/" is the default: BuildKit writes "/" for scratch, buildah leaves it empty.
fn workdir_root_is_default(cfg: &mut BTreeMap<String, Value>) {
    if cfg.get("WorkingDir").and_then(Value::as_str) == Some("/") {
        cfg.remove("WorkingDir");
    }
}

/// buildah stores an EXPOSE range as one key ("7000-7002/udp"); BuildKit expands it into one port per number, as
/// docker's nat.ParsePortSpecs does.
fn expand_port_ranges(cfg: &mut BTreeMap<String, Value>) {
    let Some(Value::Object(ports)) = cfg.get_mut("ExposedPorts") else {
        return;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in ports.iter() {
        let (num, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        match num
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        {
            Some((a, b)) => {
                for p in a..=b {
                    out.insert(format!("{p}/{proto}"), v.clone());
                }
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    *ports = out;
}

/// buildah ignores SHELL for the shell forms of CMD and ENTRYPOINT (it always writes ["/bin/sh", "-c", CMD]); the
/// reference says SHELL applies to them. With a SHELL set, buildah's /bin/sh -c prefix becomes that shell.
fn shell_forms_use_shell(cfg: &mut BTreeMap<String, Value>, shell: Option<&Value>) {
    let Some(Value::Array(shell)) = shell else {
        return;
    };
    for key in ["Cmd", "Entrypoint"] {
        if let Some(Value::Array(argv)) = cfg.get_mut(key) {
            if argv.len() == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
                let mut v = shell.clone();
                v.push(argv[2].clone());
                *argv = v;
            }
        }
    }
}

/// buildah creates VOLUME directories in the image (empty, 0755, root); BuildKit's VOLUME only writes config. Such
/// directories are dropped from buildah's tree when we do not have them.
fn drop_volume_dirs(
    theirs: &mut BTreeMap<String, FileRow>,
    ours: &BTreeMap<String, FileRow>,
    volumes: Option<&Value>,
) {
    let Some(Value::Object(vols)) = volumes else {
        return;
    };
    for v in vols.keys() {
        let p = v.trim_start_matches('/');
        let is_bare_dir = theirs
            .get(p)
            .is_some_and(|r| r.kind == "dir" && r.mode == 0o755 && r.uid == 0 && r.gid == 0);
        if is_bare_dir
            && !ours.contains_key(p)
            && !theirs.keys().any(|k| k.starts_with(&format!("{p}/")))
        {
            theirs.remove(p);
        }
    }
}

/// buildah's RUN (chroot isolation) leaves the stubs it bind-mounts over in the layer: empty /dev, /proc, /sys,
/// /run and empty /etc/hostname, /etc/hosts, /etc/resolv.conf. BuildKit removes its mount stubs after the step.
/// Empty stubs are dropped from buildah's tree when we do not have them.
fn drop_run_mount_stubs(theirs: &mut BTreeMap<String, FileRow>, ours: &BTreeMap<String, FileRow>) {
    for p in ["dev", "proc", "sys", "run"] {
        let empty = !theirs.keys().any(|k| k.starts_with(&format!("{p}/")));
        if empty && !ours.contains_key(p) && theirs.get(p).is_some_and(|r| r.kind == "dir") {
            theirs.remove(p);
        }
    }
    for p in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        if !ours.contains_key(p)
            && theirs
                .get(p)
                .is_some_and(|r| r.kind == "file" && r.size == 0)
        {
            theirs.remove(p);
        }
    }
}

/// A RUN that hard-links a file of a lower layer: overlay-style differs (ours, BuildKit's overlay snapshotter) copy
/// the target up and store it plus a link; buildah's naive differ stores only the new name, as a plain file. Same
/// contents either way, so for RUN cases a link group that buildah lacks is not compared, all else being equal.
fn links_to_lower_files(ours: &mut BTreeMap<String, FileRow>, theirs: &BTreeMap<String, FileRow>) {
    for (p, r) in ours.iter_mut() {
        if let Some(t) = theirs.get(p) {
            if !r.links.is_empty()
                && t.links.is_empty()
                && (FileRow {
                    links: vec![],
                    ..r.clone()
                }) == *t
            {
                r.links.clear();
            }
        }
    }
}

/// The config fields compared; Docker-only ones (Healthcheck, Shell, OnBuild) only come from buildah's
/// `--format docker` build (its OCI configs drop them), and are compared against our config (which keeps them, as
/// BuildKit does).
const OCI_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
];
const DOCKER_FIELDS: &[&str] = &["Healthcheck", "Shell", "OnBuild"];

fn fields(config: &Value, names: &[&str]) -> BTreeMap<String, Value> {
    let c = &config["config"];
    let mut m: BTreeMap<String, Value> = names
        .iter()
        .filter_map(|n| c.get(*n).map(|v| (n.to_string(), v.clone())))
        .collect();
    drop_buildah_labels(&mut m);
    workdir_root_is_default(&mut m);
    drop_empty(&mut m);
    m
}

// ---------------------------------------------------------------------------------------------------------------
// Running both builders.

struct Harness {
    // Dropped first: buildah removes its own storage before the temporary directory goes.
    buildah: Buildah,
    tmp: tempfile::TempDir,
    root: PathBuf,
    ctx: PathBuf,
}

impl Harness {
    fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let store = Store::open(&root).unwrap();
        make_busybox_image(&store, BASE, &[base_files()]);
        drop(store);
        let base_tar = tmp.path().join("base.tar");
        lw_ok(&root, &["save", BASE, "-o", base_tar.to_str().unwrap()]);
        let buildah = Buildah::new(&tmp.path().join("buildah"));
        buildah.load_oci_archive(&base_tar, BASE_FULL);
        let ctx = tmp.path().join("ctx");
        make_context(&ctx);
        Harness {
            buildah,
            tmp,
            root,
            ctx,
        }
    }

    fn df(&self, name: &str, text: &str) -> PathBuf {
        let p = self.ctx.join("df").join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Build with layerwright and export through `save`; Err carries the build's output.
    fn lw_engine(
        &self,
        name: &str,
        df: &Path,
        tag: &str,
        args: &[&str],
    ) -> Result<Exported, String> {
        let mut a = vec![
            "build",
            "-t",
            tag,
            "--progress",
            "plain",
            "-f",
            df.to_str().unwrap(),
        ];
        a.extend_from_slice(args);
        a.push(self.ctx.to_str().unwrap());
        let o = lw(&self.root, &a);
        if !o.status.success() {
            return Err(format!(
                "layerwright build failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let tar = self.tmp.path().join(format!("lw-{name}.tar"));
        lw_ok(&self.root, &["save", tag, "-o", tar.to_str().unwrap()]);
        let dir = self.tmp.path().join(format!("lw-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        lw_test_kit::process::untar(&tar, &dir);
        read_exported(&dir).map_err(|e| format!("layerwright's image: {e}"))
    }

    /// Build with buildah in `format` (oci or docker) and export as a `dir:` directory.
    fn bh_build(
        &self,
        name: &str,
        df: &Path,
        tag: &str,
        format: &str,
        args: &[&str],
    ) -> Result<Exported, String> {
        let o = self.buildah.bud(&self.ctx, df, tag, format, args);
        if !o.status.success() {
            return Err(format!(
                "buildah bud failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        let dir = self.tmp.path().join(format!("bh-{format}-{name}"));
        self.buildah.push_dir(tag, &dir);
        read_exported(&dir).map_err(|e| format!("buildah's image: {e}"))
    }

    /// Run one case; returns the differences (empty when equal).
    fn run(&self, c: &Case) -> Vec<String> {
        let mut diffs = Vec::new();
        if let Some(parent) = c.parent {
            let tag = format!("lwtest/parent-{}:1", c.name);
            let df = self.df(&format!("{}.parent", c.name), parent);
            if let Err(e) = self.lw_engine(&format!("{}.parent", c.name), &df, &tag, &[]) {
                return vec![format!("parent: {e}")];
            }
            // Docker format keeps ONBUILD in buildah's image.
            let o = self
                .buildah
                .bud(&self.ctx, &df, &format!("docker.io/{tag}"), "docker", &[]);
            if !o.status.success() {
                return vec![format!(
                    "parent: buildah: {}",
                    String::from_utf8_lossy(&o.stderr)
                )];
            }
        }
        let tag = format!("lwtest/case-{}:1", c.name.replace('_', "-"));
        let lw_df = self.df(c.name, c.dockerfile);
        let bh_df = match c.buildah_dockerfile {
            Some((text, _)) => self.df(&format!("{}.buildah", c.name), text),
            None => lw_df.clone(),
        };
        let ours = match self.lw_engine(c.name, &lw_df, &tag, c.args) {
            Ok(x) => x,
            Err(e) => return vec![e],
        };
        let bh_tag = format!("docker.io/{tag}");
        let oci = match self.bh_build(c.name, &bh_df, &bh_tag, "oci", c.args) {
            Ok(x) => x,
            Err(e) => return vec![e],
        };
        let docker = match self.bh_build(c.name, &bh_df, &bh_tag, "docker", c.args) {
            Ok(x) => x,
            Err(e) => return vec![e],
        };
        let theirs_docker = fields(&docker.config, DOCKER_FIELDS);
        let mut theirs_oci = fields(&oci.config, OCI_FIELDS);
        expand_port_ranges(&mut theirs_oci);
        shell_forms_use_shell(&mut theirs_oci, theirs_docker.get("Shell"));
        compare_config(&fields(&ours.config, OCI_FIELDS), &theirs_oci, &mut diffs);
        compare_config(
            &fields(&ours.config, DOCKER_FIELDS),
            &theirs_docker,
            &mut diffs,
        );
        let mut ours_rows = file_rows(&ours.tree);
        let mut theirs_rows = file_rows(&oci.tree);
        drop_volume_dirs(&mut theirs_rows, &ours_rows, theirs_oci.get("Volumes"));
        drop_run_mount_stubs(&mut theirs_rows, &ours_rows);
        if c.dockerfile.contains("\nRUN ") || c.parent.is_some_and(|p| p.contains(" RUN ")) {
            links_to_lower_files(&mut ours_rows, &theirs_rows);
        }
        compare_trees(&ours_rows, &theirs_rows, c.witness_overrides, &mut diffs);
        diffs
    }
}

fn compare_config(
    ours: &BTreeMap<String, Value>,
    theirs: &BTreeMap<String, Value>,
    diffs: &mut Vec<String>,
) {
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for k in keys {
        let (a, b) = (ours.get(k), theirs.get(k));
        if a != b {
            let show = |v: Option<&Value>| v.map_or("<unset>".to_string(), |v| v.to_string());
            diffs.push(format!(
                "config {k}: layerwright {} | buildah {}",
                show(a),
                show(b)
            ));
        }
    }
}

fn compare_trees(
    ours: &BTreeMap<String, FileRow>,
    theirs: &BTreeMap<String, FileRow>,
    overrides: &[(&str, &str, &str)],
    diffs: &mut Vec<String>,
) {
    let show = |v: Option<&FileRow>| v.map_or("<absent>".to_string(), |v| v.to_string());
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for k in keys {
        let (a, b) = (ours.get(k), theirs.get(k));
        if let Some((_, want, why)) = overrides.iter().find(|(p, _, _)| p == k) {
            // Documented row instead of the witness's.
            if show(a) != *want {
                diffs.push(format!(
                    "/{k}: layerwright {} | documented {want} ({why})",
                    show(a)
                ));
            }
            continue;
        }
        if a != b {
            diffs.push(format!(
                "/{k}: layerwright {} | buildah {}",
                show(a),
                show(b)
            ));
        }
    }
}

/// Run cases, print a table, and fail listing every difference. Cases with a known engine bug are listed but left
/// to their own regression tests unless `with_bugs`.
fn run_suite(title: &str, cases: &[Case], with_bugs: bool) {
    let h = Harness::new();
    let mut table = String::new();
    let mut failures = String::new();
    let (mut passed, mut ran, mut bugs) = (0, 0, 0);
    for c in cases {
        if let (Some(bug), false) = (c.bug, with_bugs) {
            bugs += 1;
            let _ = writeln!(
                table,
                "BUG   {:<34} engine bug (ignored test): {bug}",
                c.name
            );
            continue;
        }
        ran += 1;
        let diffs = h.run(c);
        let verdict = if diffs.is_empty() { "PASS" } else { "FAIL" };
        let mut note = c
            .buildah_dockerfile
            .map_or(String::new(), |(_, why)| why.to_string());
        for (p, _, why) in c.witness_overrides {
            note.push_str(&format!("/{p}: {why}"));
        }
        let _ = writeln!(table, "{verdict}  {:<34} {note}", c.name);
        if diffs.is_empty() {
            passed += 1;
        } else {
            let _ = writeln!(failures, "--- {} ---\n{}", c.name, c.dockerfile);
            for d in &diffs {
                let _ = writeln!(failures, "  {d}");
            }
        }
    }
    println!(
        "{title}: layerwright build vs buildah\n{table}{title}: {passed}/{ran} passed ({bugs} more run as their own regression tests)"
    );
    assert!(
        failures.is_empty(),
        "{title}: cases differ from buildah:\n{failures}"
    );
}

/// Run one named case of `cases()` or `run_cases()` (for the ignored engine-bug tests).
fn run_one(name: &str) {
    let c: Vec<Case> = cases()
        .into_iter()
        .chain(run_cases())
        .filter(|c| c.name == name)
        .collect();
    assert_eq!(c.len(), 1, "no case {name}");
    run_suite(name, &c, true);
}

#[test]
fn build_matches_buildah_without_run() {
    lw_test_kit::require!("buildah", "/bin/busybox");
    run_suite("build_vs_buildah", &cases(), false);
}

#[test]
fn build_matches_buildah_with_run() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_suite("build_vs_buildah RUN", &run_cases(), false);
}

#[test]
fn regression_copy_dir_onto_existing_dir() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("copy_dir_onto_existing_dir");
}

#[test]
fn regression_copy_through_dest_symlink() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("copy_through_dest_symlink");
}

#[test]
fn regression_workdir_owned_by_user() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("workdir_owned_by_user");
}

#[test]
fn regression_copy_hardlinks_separate_sources() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("copy_hardlinks_separate_sources");
}

#[test]
fn regression_copy_from_stage_hardlinks() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("copy_from_stage_hardlinks");
}

#[test]
fn regression_run_mount_bind() {
    lw_test_kit::require!("buildah", "runc", "/bin/busybox");
    run_one("run_mount_bind");
}
