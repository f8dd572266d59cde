//! A private Docker daemon for interop tests: Debian's docker.io (Docker 20.10) started as root with its own data
//! root, exec root, socket and configuration file (never /etc/docker, never /var/lib/docker), no bridge and no
//! iptables, so containers run with `--network none` (or host).
//!
//! [`Dockerd::shared`] hands every test of a binary the same daemon and stops it when the last test holding it
//! is done; [`Dockerd::start`] takes extra daemon flags (e.g. `--insecure-registry 127.0.0.1:PORT`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The Docker 20.10 client from Debian's docker.io; a newer client elsewhere on `$PATH` is never used.
pub const DOCKER: &str = "/usr/bin/docker";
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// A running dockerd, stopped (and its mounts undone) on drop.
pub struct Dockerd {
    child: Mutex<Child>,
    dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub driver: &'static str,
}

static SHARED: Mutex<Weak<Dockerd>> = Mutex::new(Weak::new());

/// Why this machine cannot run the daemon at all (not installed, not root), if it cannot.
pub fn unavailable() -> Option<String> {
    for tool in [DOCKER, DOCKERD] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} is missing (Debian package docker.io)"));
        }
    }
    if !crate::policy::is_root() {
        return Some("dockerd needs root".to_string());
    }
    None
}

impl Dockerd {
    /// The daemon every test of this binary shares (started on first use, stopped when the last user drops it),
    /// or `None` when the machine cannot run it (the kit's policy: a failure under `cargo xtask test`, a skip line
    /// under `cargo test`). A daemon that is installed but does not start always fails the test, with its log.
    pub fn shared() -> Option<Arc<Dockerd>> {
        if let Some(why) = unavailable() {
            crate::policy::cannot_run(&why);
            return None;
        }
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = slot.upgrade() {
            return Some(d);
        }
        let d = Arc::new(Dockerd::start(&[]).unwrap_or_else(|e| panic!("{e}")));
        eprintln!(
            "dockerd {} ({}) at {}",
            d.docker_ok(&["version", "--format", "{{.Server.Version}}"])
                .trim(),
            d.driver,
            d.socket.display()
        );
        *slot = Arc::downgrade(&d);
        Some(d)
    }

    /// Start a private daemon with `extra` daemon flags; overlay2 first, vfs when overlay2 cannot run here.
    /// The error names the cause and carries the daemon's log.
    pub fn start(extra: &[&str]) -> Result<Dockerd, String> {
        match Self::start_with("overlay2", extra) {
            Ok(d) => Ok(d),
            Err(overlay) => Self::start_with("vfs", extra)
                .map_err(|vfs| format!("{overlay}\n\nand with vfs: {vfs}")),
        }
    }

    fn start_with(driver: &'static str, extra: &[&str]) -> Result<Dockerd, String> {
        let dir = tempfile::Builder::new()
            .prefix("lw-dockerd-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let p = dir.path();
        for d in ["data", "exec"] {
            std::fs::create_dir(p.join(d)).map_err(|e| e.to_string())?;
        }
        // An empty configuration file keeps /etc/docker/daemon.json out.
        std::fs::write(p.join("daemon.json"), "{}").map_err(|e| e.to_string())?;
        let socket = p.join("docker.sock");
        let log = std::fs::File::create(p.join("dockerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg(format!("--storage-driver={driver}"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--userland-proxy=false",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {DOCKERD}: {e}"))?;
        let d = Dockerd {
            child: Mutex::new(child),
            dir,
            socket,
            driver,
        };
        d.wait_ready()?;
        Ok(d)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.lock().unwrap().try_wait().ok().flatten() {
                return Err(format!(
                    "dockerd ({}) exited with {st} before answering:\n{}",
                    self.driver,
                    self.log()
                ));
            }
            let o = self.docker(&["version", "--format", "{{.Server.Version}}"]);
            if o.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "dockerd ({}) did not answer `docker version` within 60 s: {}\n{}",
                    self.driver,
                    String::from_utf8_lossy(&o.stderr),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemon's log so far (its last 8 KiB).
    pub fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let cut = s.len().saturating_sub(8192);
        let cut = (cut..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[cut..].to_string()
    }

    /// `docker -H unix://SOCK`; add the subcommand and its arguments.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", self.dir.path().join("client"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        c
    }

    /// Run `docker ARGS` and return its output.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run docker")
    }

    /// Run `docker ARGS`, require success (the daemon log is shown when it fails); returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}\n{}\n--- dockerd log ---\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout),
            self.log()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The directory everything of this daemon lives under.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containers and its containerd; SIGKILL only when it hangs.
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        // A containerd left by a killed dockerd.
        let cpid = self.dir.path().join("exec/containerd/containerd.pid");
        if let Ok(p) = std::fs::read_to_string(&cpid) {
            let p = p.trim();
            // Only if that pid is still our containerd (its command line names our exec root).
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let ours =
                String::from_utf8_lossy(&cmdline).contains(&*self.dir.path().to_string_lossy());
            if !p.is_empty() && ours {
                let _ = Command::new("kill").args(["-KILL", p]).status();
            }
        }
        for m in crate::process::mount_points_under(self.dir.path()) {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
    }
}
