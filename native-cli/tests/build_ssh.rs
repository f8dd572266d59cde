//! `build --ssh` end to end with runc: the agent the flag names answers `ssh-add -l` inside a RUN step (a socket
//! given as is, and a key file loaded into an agent of the CLI's own), and the refusals (a required mount without
//! an agent, `default` without SSH_AUTH_SOCK). The BuildKit corpus checks the socket's path, mode and owner.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use layerwright::store::Store;
use lw_layer::Entry;
use lw_test_kit::ssh::Agent;

/// A base image with busybox and the host's `ssh-add` with the libraries it loads (from `ldd`).
fn ssh_base(store: &Store) {
    let mut files = vec![
        (Entry::dir("bin", 0o755), vec![]),
        (
            Entry::file("bin/busybox", 0o755, 0),
            std::fs::read(BUSYBOX).unwrap(),
        ),
        (Entry::symlink("bin/sh", "busybox"), vec![]),
        (
            Entry::file("bin/ssh-add", 0o755, 0),
            std::fs::read("/usr/bin/ssh-add").expect("openssh-client is installed"),
        ),
    ];
    let ldd = run_ok(Command::new("ldd").arg("/usr/bin/ssh-add"));
    let mut dirs = std::collections::BTreeSet::new();
    for line in ldd.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
        let Some(path) = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(str::to_string)
        else {
            continue;
        };
        let rel = path.trim_start_matches('/').to_string();
        let mut d = Path::new(&rel).parent();
        while let Some(p) = d.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.to_string_lossy().into_owned());
            d = p.parent();
        }
        files.push((Entry::file(&rel, 0o755, 0), std::fs::read(&path).unwrap()));
    }
    for d in dirs {
        files.push((Entry::dir(&d, 0o755), vec![]));
    }
    make_busybox_image(store, "lwtest/ssh:1", &[files]);
}

#[test]
fn the_forwarded_agent_answers_inside_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    ssh_base(&Store::open(&root).unwrap());
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    let agent = Agent::start(tmp.path(), true);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lwtest/ssh:1\nRUN --mount=type=ssh ssh-add -l && echo sock=$SSH_AUTH_SOCK\n\
         RUN --mount=type=ssh,id=k,target=/k.sock,uid=1000,mode=0600 SSH_AUTH_SOCK=/k.sock ssh-add -l\n",
    )
    .unwrap();
    // A socket for `default`, and the same agent under another id.
    let flag_default = format!("default={}", agent.sock.display());
    let flag_k = format!("k={}", agent.sock.display());
    let c = ctx.to_str().unwrap();
    let o = lw(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "--ssh",
            &flag_default,
            "--ssh",
            &flag_k,
            c,
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    let fp = agent.fingerprint();
    assert_eq!(out.matches(&fp).count(), 2, "{out}");
    assert!(out.contains("sock=/run/buildkit/ssh_agent.0"), "{out}");

    // `--ssh default` takes $SSH_AUTH_SOCK; without it, docker's message.
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress",
            "plain",
            "--no-cache",
        ])
        .args(["--ssh", "default", "--ssh", &flag_k, c])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--ssh",
            "default",
            c,
        ])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("make sure SSH_AUTH_SOCK is set"),
        "{err}"
    );
}

#[test]
fn a_key_file_is_loaded_into_an_agent_of_our_own() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    ssh_base(&Store::open(&root).unwrap());
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    // The agent is not given the key: only the key file reaches the build.
    let agent = Agent::start(tmp.path(), false);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lwtest/ssh:1\nRUN --mount=type=ssh,id=deploy,required ssh-add -l\n",
    )
    .unwrap();
    let flag = format!("deploy={}", agent.key.display());
    // The CLI's agent lives under $TMPDIR, and is gone with the build.
    let tmpdir = tmp.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "build",
            "--progress",
            "plain",
        ])
        .args(["--ssh", &flag, ctx.to_str().unwrap()])
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains(&agent.fingerprint()), "{out}");
    let left: Vec<_> = std::fs::read_dir(&tmpdir).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn a_required_mount_without_an_agent_fails_with_buildkits_message() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    ssh_base(&Store::open(&root).unwrap());
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM lwtest/ssh:1\nRUN --mount=type=ssh,required=true ssh-add -l\n",
    )
    .unwrap();
    let o = lw(&root, &["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("Dockerfile:2")
            && err.contains("no SSH key \"default\" forwarded from the client"),
        "{err}"
    );
}
