//! `layerwright run` and the container commands end to end on busybox images: exit codes, the config's and the
//! flags' environment, working directory, user, binds, entrypoint, --rm, -it through a pty, -p, detached
//! containers with exec, logs, stop, rm and ps, diff and commit; and the same output as `podman run` for a few images.

use crate::common;
use crate::common::run as run_fixtures;
use lw_test_kit::docker;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{busybox_files, lw, lw_ok, make_busybox_image, run_ok, Podman};
use lw_layer::Entry;
use run_fixtures::*;

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Removes (forcefully) every container of the store when dropped, so a failing test leaves none running.
struct Cleanup<'a>(&'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = out(&lw(self.0, &["ps", "-aq", "--no-trunc"]));
        for id in ids.lines() {
            let _ = lw(self.0, &["rm", "-f", id]);
        }
    }
}

/// Nothing of the store's containers is mounted, and runc knows none of them.
fn assert_clean(root: &Path) {
    assert_eq!(mounts_under(root), Vec::<String>::new());
    let state = root.join("containers/.runc");
    if state.is_dir() {
        let o = run_ok(
            Command::new("runc")
                .arg("--root")
                .arg(&state)
                .args(["list", "-q"]),
        );
        assert_eq!(o.trim(), "", "runc still has containers");
    }
}

#[test]
fn foreground_runs_use_the_config_and_the_flags() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    // The image's CMD is `sh`; with stdin closed it exits 0.
    let o = lw(root, &["run", "--rm", "lwtest/bb:1"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    // Exit codes pass through; docker's 127 and 126 for a command not found / not executable; 125 for ours.
    assert_eq!(
        code(&lw(
            root,
            &["run", "--rm", "lwtest/bb:1", "sh", "-c", "exit 42"]
        )),
        42
    );
    let o = lw(root, &["run", "--rm", "lwtest/bb:1", "nosuchcmd"]);
    assert_eq!(code(&o), 127);
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    assert_eq!(
        code(&lw(root, &["run", "--rm", "lwtest/bb:1", "/etc/motd"])),
        126
    );
    assert_eq!(
        code(&lw(root, &["run", "--rm", "lwtest/nope:1", "true"])),
        125
    );
    assert_eq!(
        code(&lw(
            root,
            &["run", "--rm", "--network", "bogus", "lwtest/bb:1", "true"]
        )),
        125
    );
    // stdout and stderr stay apart.
    let o = lw(
        root,
        &[
            "run",
            "--rm",
            "lwtest/bb:1",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(
        (
            out(&o).as_str(),
            String::from_utf8_lossy(&o.stderr).as_ref()
        ),
        ("out\n", "err\n")
    );
    // Env: the image's PATH, -e K=V, -e K from our environment, --env-file.
    let envf = s.tmp.path().join("env.list");
    std::fs::write(&envf, "# comment\nFROMFILE=f1\nA=file\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .env("LW_PASSED", "passed")
        .args(["run", "--rm", "--env-file"])
        .arg(&envf)
        .args([
            "-e",
            "A=flag",
            "-e",
            "LW_PASSED",
            "-e",
            "LW_UNSET_VAR",
            "lwtest/bb:1",
        ])
        .args([
            "sh",
            "-c",
            "echo $PATH $A $FROMFILE $LW_PASSED ${LW_UNSET_VAR-unset}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out(&o),
        "/bin flag f1 passed unset\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // -w (made when missing), -u, host name.
    assert_eq!(
        lw_ok(
            root,
            &["run", "--rm", "-w", "/opt/dir", "lwtest/bb:1", "ls"]
        ),
        "old1\n"
    );
    assert_eq!(
        lw_ok(
            root,
            &[
                "run",
                "--rm",
                "-w",
                "/new/dir",
                "lwtest/bb:1",
                "sh",
                "-c",
                "pwd"
            ]
        ),
        "/new/dir\n"
    );
    assert_eq!(
        lw_ok(
            root,
            &["run", "--rm", "-u", "123:45", "lwtest/bb:1", "id", "-u"]
        ),
        "123\n"
    );
    assert_eq!(
        lw_ok(
            root,
            &["run", "--rm", "-u", "123:45", "lwtest/bb:1", "id", "-g"]
        ),
        "45\n"
    );
    // --entrypoint replaces the image's, and drops its CMD.
    assert_eq!(
        lw_ok(
            root,
            &[
                "run",
                "--rm",
                "--entrypoint",
                "echo",
                "lwtest/bb:1",
                "a",
                "b"
            ]
        ),
        "a b\n"
    );
    assert_eq!(
        lw_ok(
            root,
            &["run", "--rm", "--entrypoint", "echo", "lwtest/bb:1"]
        ),
        "\n"
    );
    // -v and --mount: writes reach the host; read-only stays read-only.
    let vol = s.tmp.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("in"), "from host\n").unwrap();
    let v = format!("{}:/data", vol.display());
    assert_eq!(
        lw_ok(
            root,
            &[
                "run",
                "--rm",
                "-v",
                &v,
                "lwtest/bb:1",
                "sh",
                "-c",
                "cat /data/in; echo back > /data/out"
            ]
        ),
        "from host\n"
    );
    assert_eq!(std::fs::read_to_string(vol.join("out")).unwrap(), "back\n");
    let ro = format!("type=bind,source={},target=/ro,readonly", vol.display());
    let o = lw(
        root,
        &[
            "run",
            "--rm",
            "--mount",
            &ro,
            "lwtest/bb:1",
            "sh",
            "-c",
            "echo x > /ro/new",
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(!vol.join("new").exists());
    let o = lw(
        root,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/ro:ro", vol.display()),
            "lwtest/bb:1",
            "cat",
            "/ro/out",
        ],
    );
    assert_eq!(out(&o), "back\n");
    // --network none has only loopback.
    assert_eq!(
        lw_ok(
            root,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "lwtest/bb:1",
                "sh",
                "-c",
                "ls /sys/class/net"
            ]
        ),
        "lo\n"
    );
    // --rm left nothing; a run without it is listed as exited.
    assert_eq!(lw_ok(root, &["ps", "-aq"]), "");
    lw_ok(root, &["run", "--name", "kept", "lwtest/bb:1", "true"]);
    let ps = lw_ok(root, &["ps", "-a"]);
    assert!(ps.contains("kept") && ps.contains("Exited (0)"), "{ps}");
    assert_eq!(
        lw_ok(root, &["ps"]).lines().count(),
        1,
        "only the header: nothing runs"
    );
    assert_eq!(
        code(&lw(root, &["run", "--name", "kept", "lwtest/bb:1", "true"])),
        125
    );
    lw_ok(root, &["rm", "kept"]);
    assert_eq!(lw_ok(root, &["ps", "-aq"]), "");
    assert_clean(root);
}

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn detached_containers_log_stop_and_go() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    let id = lw_ok(
        root,
        &[
            "run",
            "-d",
            "--name",
            "ticker",
            "lwtest/bb:1",
            "sh",
            "-c",
            "echo started; trap 'echo got TERM; exit 3' TERM; while true; do sleep 0.1; done",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    wait_for(
        || lw_ok(root, &["logs", "ticker"]).contains("started"),
        "the log",
    );
    let ps = lw_ok(root, &["ps"]);
    assert!(ps.contains(&id[..12]) && ps.contains("Up "), "{ps}");
    assert_eq!(lw_ok(root, &["ps", "-q"]), format!("{}\n", &id[..12]));
    // exec: in the running container, with its settings or the flags'; exit codes as run's.
    assert_eq!(
        lw_ok(
            root,
            &[
                "exec",
                "-e",
                "X=1",
                "-u",
                "5",
                "-w",
                "/tmp",
                "ticker",
                "sh",
                "-c",
                "echo $X $PATH; id -u; pwd; ls /proc/1/cmdline"
            ]
        ),
        "1 /bin\n5\n/tmp\n/proc/1/cmdline\n"
    );
    assert_eq!(
        code(&lw(root, &["exec", "ticker", "sh", "-c", "exit 4"])),
        4
    );
    assert_eq!(code(&lw(root, &["exec", "ticker", "nosuch"])), 127);
    let mut c = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(["exec", "-i", "ticker", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(b"piped in\n").unwrap();
    }
    assert_eq!(out(&c.wait_with_output().unwrap()), "piped in\n");
    // A running container is not removed without -f; it is mounted while it runs.
    assert_ne!(code(&lw(root, &["rm", "ticker"])), 0);
    assert_eq!(mounts_under(root).len(), 1, "{:?}", mounts_under(root));
    // stop: SIGTERM first, which the trap turns into exit 3.
    lw_ok(root, &["stop", "-t", "10", &id[..8]]);
    assert_eq!(lw_ok(root, &["logs", "ticker"]), "started\ngot TERM\n");
    assert!(lw_ok(root, &["ps", "-a"]).contains("Exited (3)"));
    assert_eq!(code(&lw(root, &["exec", "ticker", "true"])), 125);
    assert_clean(root);
    lw_ok(root, &["rm", "ticker"]);
    assert!(!root.join("containers").join(&id).exists());

    // A process that ignores SIGTERM is killed after -t; `logs -f` ends with the container.
    let id = lw_ok(
        root,
        &[
            "run",
            "-d",
            "lwtest/bb:1",
            "sh",
            "-c",
            "trap '' TERM; echo a; sleep 1; echo b; while true; do sleep 0.1; done",
        ],
    );
    let id = id.trim();
    let follower = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(["logs", "-f", id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        || lw_ok(root, &["logs", id]).contains('b'),
        "the second line",
    );
    let t = Instant::now();
    lw_ok(root, &["stop", "-t", "1", id]);
    assert!(t.elapsed() >= Duration::from_secs(1));
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(out(&followed), "a\nb\n");
    assert!(lw_ok(root, &["ps", "-a"]).contains("Exited (137)"));
    // rm -f of a running one; --rm of a detached one removes it when it ends.
    let id2 = lw_ok(root, &["run", "-d", "lwtest/bb:1", "sleep", "1000"]);
    lw_ok(root, &["rm", "-f", id2.trim()]);
    let id3 = lw_ok(
        root,
        &["run", "-d", "--rm", "lwtest/bb:1", "sh", "-c", "sleep 0.2"],
    );
    wait_for(
        || !root.join("containers").join(id3.trim()).exists(),
        "--rm",
    );
    lw_ok(root, &["rm", id]);
    assert_eq!(lw_ok(root, &["ps", "-aq"]), "");
    assert_clean(root);
}

#[test]
fn a_killed_run_is_cleaned_up_by_the_next_command() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(["run", "--name", "victim", "lwtest/bb:1", "sleep", "1000"])
        .spawn()
        .unwrap();
    wait_for(|| lw_ok(root, &["ps"]).contains("victim"), "the container");
    child.kill().unwrap();
    child.wait().unwrap();
    // The next command finds its owner gone: the container is killed, unmounted, and marked exited.
    let ps = lw_ok(root, &["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert_clean(root);
    lw_ok(root, &["rm", "victim"]);
    // SIGTERM to a foreground run reaches its container (which exits with 143) and cleans up.
    let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args([
            "run",
            "--rm",
            "--name",
            "polite",
            "lwtest/bb:1",
            "sh",
            "-c",
            "trap 'exit 143' TERM; while true; do sleep 0.1; done",
        ])
        .spawn()
        .unwrap();
    wait_for(|| lw_ok(root, &["ps"]).contains("polite"), "the container");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(143));
    assert_eq!(lw_ok(root, &["ps", "-aq"]), "");
    assert_clean(root);
}

#[test]
fn diff_and_commit_turn_the_writable_layer_into_an_image() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    lw_ok(
        root,
        &["run", "--name", "changer", "-e", "K=v", "lwtest/bb:1", "sh", "-c",
          "echo new > /added; echo changed > /etc/base.txt; rm /etc/motd; mkdir -p /d/e; echo f > /d/e/f"],
    );
    let d = lw_ok(root, &["diff", "changer"]);
    assert_eq!(
        d,
        "A /added\nA /d\nA /d/e\nA /d/e/f\nC /etc\nC /etc/base.txt\nD /etc/motd\n",
    );
    let id = lw_ok(
        root,
        &["commit", "-m", "my change", "changer", "lwtest/committed:1"],
    );
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // The new image has the changes; its CMD is the container's command, its env the container's.
    let o = lw_ok(
        root,
        &[
            "run",
            "--rm",
            "lwtest/committed:1",
            "sh",
            "-c",
            "cat /added /etc/base.txt /d/e/f; ls /etc; echo $K",
        ],
    );
    assert_eq!(
        o,
        "new\nchanged\nf\nbase.txt\ngroup\nhostname\nhosts\npasswd\nresolv.conf\nv\n"
    );
    let hist = lw_ok(root, &["history", "--no-trunc", "lwtest/committed:1"]);
    assert!(hist.contains("my change"), "{hist}");
    // A container with no changes commits to an image with the same layers.
    lw_ok(root, &["run", "--name", "same", "lwtest/bb:1", "true"]);
    assert_eq!(lw_ok(root, &["diff", "same"]), "");
    // The image stays while containers use it: rmi needs -f, and prune keeps its blobs; the snapshots are made
    // again from them.
    assert_ne!(code(&lw(root, &["rmi", "lwtest/bb:1"])), 0);
    lw_ok(root, &["rmi", "-f", "lwtest/bb:1"]);
    lw_ok(root, &["prune", "-a"]);
    lw_ok(root, &["builder", "prune"]);
    assert_eq!(lw_ok(root, &["diff", "changer"]), d);
    lw_ok(root, &["commit", "same", "lwtest/same:1"]);
    assert_eq!(
        lw_ok(
            root,
            &["run", "--rm", "lwtest/same:1", "cat", "/etc/base.txt"]
        ),
        "base\n"
    );
    lw_ok(root, &["rm", "changer", "same"]);
    assert_clean(root);
}

#[test]
fn podman_run_prints_the_same() {
    lw_test_kit::require!("podman", "runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    // A second image with ENTRYPOINT, WORKDIR and USER in its config.
    let mut l = busybox_files(&[("srv/www/index.html", b"hello\n")]);
    l.push((Entry::symlink("bin/id", "busybox"), vec![]));
    l.push((Entry::symlink("bin/pwd", "busybox"), vec![]));
    make_busybox_image(&s.store, "lwtest/plain:1", &[l]);
    let cases: &[&[&str]] = &[
        &[
            "lwtest/bb:1",
            "sh",
            "-c",
            "echo $PATH; cat /etc/base.txt; ls /opt/dir",
        ],
        &[
            "-e",
            "X=1",
            "-w",
            "/opt",
            "lwtest/bb:1",
            "sh",
            "-c",
            "echo $X; pwd",
        ],
        &[
            "-w",
            "/srv/www",
            "lwtest/plain:1",
            "sh",
            "-c",
            "pwd; cat index.html",
        ],
        &[
            "--entrypoint",
            "cat",
            "lwtest/plain:1",
            "/srv/www/index.html",
        ],
    ];
    let pod = Podman::new(&s.tmp.path().join("podman"));
    let mut tars = Vec::new();
    for name in ["lwtest/bb:1", "lwtest/plain:1"] {
        let m = layerwright::names::resolve(&s.store, name)
            .unwrap()
            .descriptor;
        let tar = save(&s.store, &m, name, s.tmp.path());
        pod.load(&tar);
        tars.push(tar);
    }
    // The user's groups follow docker, which lists the primary group among the supplementary ones (`id` prints
    // `groups=0(root)`, as in `docker run alpine id`); podman leaves it out. So `id` is compared with Docker 20.10.
    if let Some(d) = docker::Dockerd::shared() {
        d.docker_ok(&["load", "-i", tars[0].to_str().unwrap()]);
        let theirs = d.docker_ok(&["run", "--rm", "--network", "none", "lwtest/bb:1", "id"]);
        let ours = lw_ok(root, &["run", "--rm", "lwtest/bb:1", "id"]);
        assert_eq!(ours, theirs, "id: ours and docker run's");
        d.docker_ok(&["rmi", "lwtest/bb:1"]);
    }
    for c in cases {
        let ours = lw_ok(root, &[&["run", "--rm"][..], c].concat());
        let theirs = run_ok(
            pod.cmd()
                .args(["run", "--rm", "--network", "none"])
                .args(*c),
        );
        assert_eq!(ours, theirs, "{c:?}");
    }
    assert_clean(root);
}

#[test]
fn published_ports_reach_the_container_on_loopback() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let www = s.tmp.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "served from the container\n").unwrap();
    let id = lw_ok(
        root,
        &[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "-v",
            &format!("{}:/www:ro", www.display()),
            "lwtest/bb:1",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    );
    let id = id.trim();
    assert!(lw_ok(root, &["ps"]).contains(&format!("127.0.0.1:{port}->80/tcp")));
    let get = || -> Option<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        c.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let mut got = None;
    wait_for(
        || {
            got = get().filter(|b| b.contains("200 OK"));
            got.is_some()
        },
        "the published port",
    );
    assert!(got
        .unwrap()
        .ends_with("\r\n\r\nserved from the container\n"));
    lw_ok(root, &["rm", "-f", id]);
    // The forward went with the container.
    assert!(get().is_none());

    // `-P`: every EXPOSE port on a free loopback port, which `ps` shows.
    std::fs::write(s.ctx.join("Dockerfile"), "FROM lwtest/bb:1\nEXPOSE 80\n").unwrap();
    lw_ok(
        root,
        &[
            "build",
            "-q",
            "-t",
            "lwtest/exposed:1",
            s.ctx.to_str().unwrap(),
        ],
    );
    let www = format!("{}:/www:ro", www.display());
    let args = ["run", "-d", "-P", "-v", &www, "lwtest/exposed:1"];
    let httpd = ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"];
    let id = lw_ok(root, &[&args[..], &httpd[..]].concat());
    let ps = lw_ok(root, &["ps"]);
    let port: u16 = ps
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split("->80/tcp").next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no published port in {ps}"));
    let get = || -> Option<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        c.read_to_string(&mut body).ok()?;
        Some(body)
    };
    wait_for(
        || get().is_some_and(|b| b.ends_with("\r\n\r\nserved from the container\n")),
        "the port -P published",
    );
    lw_ok(root, &["rm", "-f", id.trim()]);
    assert_clean(root);
}

#[test]
fn run_it_gives_the_container_a_terminal() {
    lw_test_kit::require!("runc", "/bin/busybox");
    let s = run_setup();
    let root = &s.root;
    let _cleanup = Cleanup(root);
    // The console has our terminal's size, and `\n` is translated once (the container's side, as docker's
    // console does), whatever the timing: runc's foreground mode sometimes translated it twice (`\r\r\n`).
    let (code, got) = through_pty(
        root,
        &["run", "-it", "--rm", "lwtest/bb:1", "sh"],
        "test -t 0 && echo IS-A-TTY; stty size; echo TERM=$TERM; exit 7\r",
    );
    assert_eq!(code, 7, "{got}");
    assert!(got.contains("IS-A-TTY\r\n"), "{got:?}");
    assert!(got.contains("\r\n30 100\r\n"), "{got:?}");
    assert!(got.contains("TERM=xterm\r\n"), "{got:?}");
    assert!(!got.contains("\r\r"), "{got:?}");
    assert_clean(root);
    // exec -it: a terminal of its own in a running container, relayed the same way.
    lw_ok(
        root,
        &["run", "-d", "--name", "idle", "lwtest/bb:1", "sleep", "300"],
    );
    let (code, got) = through_pty(
        root,
        &["exec", "-it", "idle", "sh"],
        "test -t 0 && echo IS-A-TTY; stty size; echo TERM=$TERM; exit 5\r",
    );
    assert_eq!(code, 5, "{got}");
    assert!(got.contains("IS-A-TTY\r\n"), "{got:?}");
    assert!(got.contains("\r\n30 100\r\n"), "{got:?}");
    assert!(!got.contains("\r\r"), "{got:?}");
    lw_ok(root, &["rm", "-f", "idle"]);
    assert_clean(root);
}

/// Runs layerwright with `args` on a pty of our own (30 rows, 100 columns), as a terminal would, typing `input`;
/// returns its exit code and what it wrote up to `TERM=xterm` or the end.
fn through_pty(root: &Path, args: &[&str], input: &str) -> (i32, String) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0);
    use std::os::fd::FromRawFd;
    let slave_file = unsafe { std::fs::File::from_raw_fd(slave) };
    let mut child = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(slave_file.try_clone().unwrap())
        .stdout(slave_file.try_clone().unwrap())
        .stderr(slave_file)
        .spawn()
        .unwrap();
    let mut m = unsafe { std::fs::File::from_raw_fd(master) };
    use std::io::{Read, Write};
    m.write_all(input.as_bytes()).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the child and its descendants closed the slave.
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("TERM=xterm\r\n") {
                break;
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    let st = child.wait().unwrap();
    (st.code().unwrap_or(-1), reader.join().unwrap())
}
