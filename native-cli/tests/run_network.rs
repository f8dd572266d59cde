//! RUN networking end to end with runc: `default` reaches the host (its loopback, through slirp4netns's 10.0.2.2)
//! and `none` does not, `build --network host` and `RUN --network` decide the step's network, `--add-host`
//! entries resolve, the network is part of the cache key, and /etc/hosts, /etc/resolv.conf and /etc/hostname are
//! there in every step and in no layer.

use crate::common;
use crate::common::run as run_fixtures;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::make_busybox_image;
use lw_layer::Entry;
use run_fixtures::*;

/// An HTTP server on the host's loopback answering every request with `body`; returns its port.
fn serve(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn spec(df: &str) -> BuildSpec<'_> {
    BuildSpec::new(df)
}

#[test]
fn default_network_reaches_the_host_and_none_does_not() {
    lw_test_kit::require!("runc", "slirp4netns", "/bin/busybox");
    let s = run_setup();
    let port = serve("through slirp\n");
    let df = format!(
        "FROM lwtest/bb:1\nRUN /bin/busybox wget -q -O /got http://10.0.2.2:{port}/ \
         && cat /etc/hosts /etc/resolv.conf /etc/hostname > /seen\n"
    );
    let r = build(&s.store, &s.ctx, &spec(&df)).expect("default network reaches the host");
    let (tree, layers) = image_tree(&s.store, &r.manifest);
    assert_eq!(text(&tree, "got"), "through slirp\n");
    let seen = text(&tree, "seen");
    for want in [
        "127.0.0.1\tlocalhost buildkitsandbox\n",
        "::1\tlocalhost",
        "nameserver ",
        "buildkitsandbox\n",
    ] {
        assert!(seen.contains(want), "{want:?} missing in {seen:?}");
    }
    // The files were in the step, and are in no layer.
    for l in &layers {
        for f in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            assert!(
                !l.contains(&f.to_string()),
                "{f} leaked into a layer: {l:?}"
            );
        }
    }
    // `none`: loopback only, so the same request fails.
    let df = format!(
        "FROM lwtest/bb:1\nRUN --network=none /bin/busybox wget -q -O /got http://10.0.2.2:{port}/\n"
    );
    let e = build(&s.store, &s.ctx, &spec(&df)).unwrap_err();
    assert!(
        e.contains("did not complete successfully: exit code: 1"),
        "{e}"
    );
    // And a build-wide `--network none` is honoured too.
    let df =
        format!("FROM lwtest/bb:1\nRUN /bin/busybox wget -q -O /got2 http://10.0.2.2:{port}/\n");
    let mut sp = spec(&df);
    sp.network = "none";
    let e = build(&s.store, &s.ctx, &sp).unwrap_err();
    assert!(
        e.contains("did not complete successfully: exit code: 1"),
        "{e}"
    );
    assert_eq!(mounts_under(&s.root), Vec::<String>::new());
}

#[test]
fn add_host_entries_resolve_inside_run() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let port = serve("by name\n");
    let df = format!(
        "FROM lwtest/bb:1\nRUN /bin/busybox wget -q -O /got http://lw-mirror.test:{port}/ \
         && /bin/busybox grep lw-other.test /etc/hosts > /line && echo $https_proxy > /proxy\n"
    );
    let mut sp = spec(&df);
    // A proxy build arg reaches RUN's environment without an ARG line (an https one, which wget's http request
    // does not use).
    sp.build_args
        .insert("https_proxy".into(), "http://127.0.0.1:9/".into());
    sp.extra_hosts = vec![
        ("lw-mirror.test".into(), "10.0.2.2".into()),
        ("lw-other.test".into(), "127.0.0.1".into()),
    ];
    let r = build(&s.store, &s.ctx, &sp).expect("add-host names resolve");
    let (tree, _) = image_tree(&s.store, &r.manifest);
    assert_eq!(text(&tree, "got"), "by name\n");
    assert_eq!(text(&tree, "line"), "127.0.0.1\tlw-other.test\n");
    assert_eq!(text(&tree, "proxy"), "http://127.0.0.1:9/\n");
}

#[test]
fn build_network_host_is_honoured_and_the_run_flag_wins() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let port = serve("host loopback\n");
    // 127.0.0.1 is the host's only when the step shares the host's network.
    let df =
        format!("FROM lwtest/bb:1\nRUN /bin/busybox wget -q -O /got http://127.0.0.1:{port}/\n");
    let mut sp = spec(&df);
    sp.network = "host";
    let r = build(&s.store, &s.ctx, &sp).expect("build --network host is used by RUN");
    let (tree, _) = image_tree(&s.store, &r.manifest);
    assert_eq!(text(&tree, "got"), "host loopback\n");
    // Without it the step's own loopback has no server.
    let e = build(&s.store, &s.ctx, &spec(&df)).unwrap_err();
    assert!(e.contains("exit code: 1"), "{e}");
    // RUN --network=host wins over the build's default, RUN --network=none over the build's host.
    let df2 = format!(
        "FROM lwtest/bb:1\nRUN --network=host /bin/busybox wget -q -O /got http://127.0.0.1:{port}/\n"
    );
    build(&s.store, &s.ctx, &spec(&df2)).expect("RUN --network=host");
    let df3 = format!(
        "FROM lwtest/bb:1\nRUN --network=none /bin/busybox wget -q -O /got3 http://127.0.0.1:{port}/\n"
    );
    let mut sp = spec(&df3);
    sp.network = "host";
    let e = build(&s.store, &s.ctx, &sp).unwrap_err();
    assert!(e.contains("exit code: 1"), "RUN --network=none wins: {e}");
}

#[test]
fn the_cache_misses_when_only_the_network_changes() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let df = "FROM lwtest/bb:1\nRUN cat /proc/sys/kernel/random/uuid > /id\n";
    let id = |network: &str, hosts: &[(&str, &str)]| {
        let mut sp = spec(df);
        sp.network = match network {
            "none" => "none",
            "host" => "host",
            _ => "default",
        };
        sp.extra_hosts = hosts
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let r = build(&s.store, &s.ctx, &sp).unwrap();
        text(&image_tree(&s.store, &r.manifest).0, "id")
    };
    let none = id("none", &[]);
    assert_eq!(id("none", &[]), none, "same network: a cache hit");
    let host = id("host", &[]);
    assert_ne!(host, none, "none -> host must run again");
    let default = id("default", &[]);
    assert!(default != none && default != host);
    let with_host = id("default", &[("a.test", "127.0.0.1")]);
    assert_ne!(
        with_host, default,
        "--add-host changes /etc/hosts, so the key"
    );
    assert_eq!(id("host", &[]), host);
}

#[test]
fn an_images_own_etc_files_stay_as_they_were() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let mut files = common::busybox_files(&[
        ("etc/hosts", b"10.9.9.9 mine\n"),
        ("etc/hostname", b"myimage\n"),
    ]);
    files.push((Entry::symlink("bin/grep", "busybox"), vec![]));
    make_busybox_image(&s.store, "lwtest/own:1", &[files]);
    let df = "FROM lwtest/own:1\nRUN cat /etc/hosts /etc/hostname > /seen; \
              (echo 1.1.1.1 x >> /etc/hosts) 2>/dev/null || echo read-only > /ro\n";
    let r = build(&s.store, &s.ctx, &spec(df)).unwrap();
    let (tree, layers) = image_tree(&s.store, &r.manifest);
    let seen = text(&tree, "seen");
    assert!(
        seen.contains("localhost buildkitsandbox") && !seen.contains("mine"),
        "{seen}"
    );
    assert_eq!(text(&tree, "ro"), "read-only\n");
    assert_eq!(text(&tree, "etc/hosts"), "10.9.9.9 mine\n");
    assert_eq!(text(&tree, "etc/hostname"), "myimage\n");
    assert_eq!(layers.len(), 2);
    // runc's mount points stay when the image lacks them, as BuildKit leaves them; the /etc files never do.
    assert_eq!(layers[1], ["dev", "proc", "ro", "seen", "sys"]);
}

#[test]
fn without_slirp4netns_default_fails_naming_it_and_host_still_works() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    std::fs::write(s.ctx.join("Dockerfile"), "FROM lwtest/bb:1\nRUN true\n").unwrap();
    // runc is in /usr/sbin, slirp4netns in /usr/bin.
    let build = |network: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_layerwright"))
            .env("PATH", "/usr/sbin:/sbin")
            .arg("--root")
            .arg(&s.root)
            .args(["build", "-q", "--network", network])
            .arg(&s.ctx)
            .output()
            .unwrap()
    };
    let o = build("default");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("Dockerfile:2")
            && err.contains("slirp4netns")
            && err.contains("--network host"),
        "{err}"
    );
    assert_eq!(mounts_under(&s.root), Vec::<String>::new());
    let o = build("host");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_relative_root_runs_steps() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    std::fs::write(
        s.ctx.join("Dockerfile"),
        "FROM lwtest/bb:1\nRUN echo ok > /ok\n",
    )
    .unwrap();
    // runc reads relative bundle paths from the bundle directory, so the executor makes them absolute.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .current_dir(s.tmp.path())
        .args(["--root", "store", "build", "-q", "ctx"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
