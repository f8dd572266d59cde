//! Full disk: every writing command runs with its store on a small tmpfs (mounted by the test, as root) that is
//! filled up first. Each fails with a clear error naming the store (or, for `save`, the file it writes) and "no
//! space left", leaves the store as it was (the same names, every blob whole, no temporary file), and succeeds
//! once the space is freed. `push` fills serve's store instead, as that is where a push writes.

use crate::common;
use crate::common::kills;
use crate::common::serve as serve_fixtures;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{busybox_files, make_busybox_image};
use kills::{temporaries, text_context, verify, Cli, Lcg};
use layerwright::store::Store;
use serve_fixtures::Served;

/// Size of each tmpfs, in MB: room for the images and a little more, so the filler decides what is free.
const TMPFS_MB: u64 = 64;

/// A tmpfs mounted at `dir`, unmounted (lazily, so a busy one cannot stay) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={TMPFS_MB}m,mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A file that takes every free byte of the file system it is on; `leave` frees some again.
struct Filler(PathBuf);

impl Filler {
    fn fill(dir: &Path) -> Filler {
        let p = dir.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        for size in [1 << 20, 4096] {
            let buf = vec![0xa5u8; size];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
        Filler(p)
    }

    /// Free about `bytes` (0: nothing).
    fn leave(&self, bytes: u64) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.0)
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(bytes)).unwrap();
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every name of a store and its manifest digest.
fn names(root: &Path) -> BTreeMap<String, String> {
    Store::open(root)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .map(|r| (r.name.unwrap_or_default(), r.descriptor.digest.to_string()))
        .collect()
}

/// Each case starts from the same store: the base image, and what rmi and prune act on.
fn reset(cli: &Cli, root: &Path, ctx: &Path, dst_host: &str, what: &str) {
    for n in names(root).keys() {
        let n = n.strip_prefix("docker.io/").unwrap_or(n);
        if !n.is_empty() && n != "fd/base:1" {
            cli.ok(&["rmi", "-f", n]);
        }
    }
    cli.ok(&["prune"]);
    cli.ok(&["tag", "fd/base:1", "fd/gone:1"]);
    if what == "prune" {
        cli.ok(&["build", "-q", ctx.to_str().unwrap()]);
    }
    if what == "build COPY" {
        // A layer no other image has: 2 MB that do not compress.
        let mut rng = Lcg(99);
        let noise: Vec<u8> = (0..2 << 20).map(|_| rng.below(256) as u8).collect();
        std::fs::write(ctx.join("noise.bin"), noise).unwrap();
    }
    if what == "push" {
        // serve's store is the one that fills; the image's blobs are there already, only its manifest is new.
        cli.ok(&["push", "fd/base:1", &format!("{dst_host}/fd/other:1")]);
    }
}

/// Run `args` with `room` bytes free on the file system of `full_root`: it must fail naming `names_it` and "no
/// space left" (only prune may succeed), leave the store's names as they were, a store that verifies and no
/// temporary file (nor a partial `out`), then succeed once the space is freed. What it said.
fn on_full_disk(
    cli: &Cli,
    what: &str,
    args: &[&str],
    room: u64,
    (full_root, disk_dir): (&Path, &Path),
    names_it: &str,
    out: &Path,
) -> String {
    let before = names(full_root);
    let filler = Filler::fill(disk_dir);
    filler.leave(room);
    let o = cli.cmd(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let after = names(full_root);
    let c = verify(full_root);
    assert!(
        c.problems.is_empty(),
        "{what} on a full disk: {:?}",
        c.problems
    );
    let left = temporaries(full_root);
    let said = if o.status.success() {
        // Only prune may succeed: it frees space rather than taking it.
        assert_eq!(what, "prune", "{what} succeeded on a full disk");
        format!("{what}: succeeded (it frees space), store verifies")
    } else {
        assert!(
            stderr.to_lowercase().contains("no space left") && stderr.contains(names_it),
            "{what} on a full disk: the error should name {names_it} and say \"no space left\": {stderr}"
        );
        assert_eq!(
            before, after,
            "{what} on a full disk changed the store's names"
        );
        assert!(left.is_empty(), "{what} on a full disk left {left:?}");
        assert!(!out.exists(), "{what} left a partial {}", out.display());
        format!(
            "{what}: \"{}\"",
            stderr.lines().last().unwrap_or_default().trim()
        )
    };
    filler.remove();
    cli.ok(args);
    assert!(
        verify(full_root).problems.is_empty(),
        "{what}: after space was freed"
    );
    let _ = std::fs::remove_file(out);
    said
}

#[test]
fn every_writing_command_on_a_full_disk_fails_clearly_and_leaves_the_store_as_it_was() {
    lw_test_kit::require!(root: "mounting a tmpfs", "runc", "/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"));
    let served_disk = Tmpfs::mount(&tmp.path().join("served-disk"));
    let root = disk.0.join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "fd/base:1", &[busybox_files(&[])]);
    let ctx = text_context(tmp.path(), 11, "FROM fd/base:1\nCOPY . /data/\n");
    let run_ctx = tmp.path().join("runctx");
    std::fs::create_dir_all(&run_ctx).unwrap();
    std::fs::write(
        run_ctx.join("Dockerfile"),
        "FROM fd/base:1\nRUN /bin/busybox dd if=/dev/urandom of=/data bs=1M count=8\n",
    )
    .unwrap();
    // Sources outside the small file systems: a server holding the image, an archive of it.
    let src = Served::start(&tmp.path().join("src"), |_| {});
    let dst_root = served_disk.0.join("served");
    let dst = Served::start(&dst_root, |c| {
        c.upload_idle = std::time::Duration::from_secs(1)
    });
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    cli.login(&src.host(), &src.token);
    cli.login(&dst.host(), &dst.token);
    let (ctx_s, run_ctx_s) = (ctx.to_str().unwrap(), run_ctx.to_str().unwrap());
    cli.ok(&["build", "-q", "-t", "fd/built:1", ctx_s]);
    cli.ok(&["push", "fd/built:1", &format!("{}/fd/src:1", src.host())]);
    let saved = tmp.path().join("saved.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "fd/built:1"]);
    cli.ok(&["rmi", "fd/built:1"]);
    cli.ok(&["prune"]);
    // What each command needs in place, and how much room it gets (a megabyte, or none for index-only writes).
    let out = disk.0.join("out.tar");
    let (src_ref, dst_ref) = (
        format!("{}/fd/src:1", src.host()),
        format!("{}/fd/pushed:1", dst.host()),
    );
    let copy_dst = format!("{}/fd/copied:1", src.host());
    let saved_s = saved.to_str().unwrap();
    let out_s = out.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>, u64)> = vec![
        ("pull", vec!["pull", &src_ref], 1 << 20),
        (
            "build COPY",
            vec!["build", "-q", "-t", "fd/copy:1", ctx_s],
            1 << 20,
        ),
        (
            "build RUN",
            vec![
                "build",
                "-q",
                "--network",
                "none",
                "-t",
                "fd/run:1",
                run_ctx_s,
            ],
            1 << 20,
        ),
        ("save", vec!["save", "-o", out_s, "fd/base:1"], 256 << 10),
        ("copy", vec!["copy", &src_ref, &copy_dst], 1 << 20),
        ("load", vec!["load", "-i", saved_s], 1 << 20),
        ("tag", vec!["tag", "fd/base:1", "fd/tagged:1"], 0),
        ("rmi", vec!["rmi", "fd/gone:1"], 0),
        ("prune", vec!["prune"], 0),
        ("push", vec!["push", "fd/base:1", &dst_ref], 0),
    ];
    let mut report = Vec::new();
    for (what, args, room) in cases {
        reset(&cli, &root, &ctx, &dst.host(), what);
        let (full_root, disk_dir) = if what == "push" {
            (dst_root.clone(), served_disk.0.clone())
        } else {
            (root.clone(), disk.0.clone())
        };
        // The store (or file) the command could not write; for a push, the registry, whose store is full.
        let names_it = match what {
            "save" => out_s.to_string(),
            "push" => "the registry has no space left".to_string(),
            _ => root.display().to_string(),
        };
        report.push(on_full_disk(
            &cli,
            what,
            &args,
            room,
            (&full_root, &disk_dir),
            &names_it,
            &out,
        ));
        let _ = std::fs::remove_file(&out);
    }
    for r in &report {
        println!("full disk: {r}");
    }
    drop(src);
    drop(dst);
    drop(served_disk);
    drop(disk);
}
