//! podman and buildah's shared configuration: containers/storage and containers.conf private to a directory
//! (never /etc), and podman run with it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// podman with storage, run root and configuration private to `dir`.
pub struct Podman {
    pub dir: PathBuf,
}

/// A containers/storage + containers.conf configuration private to `dir` (root, runroot, vfs, runc with
/// cgroupfs, file events, no network, ulimits within the caller's hard limits), shared by the podman and buildah
/// fixtures. Tests never touch /etc.
pub fn write_containers_config(dir: &Path) {
    let dir = dir.to_path_buf();
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::create_dir_all(dir.join("runroot")).unwrap();
    // Facts for this kind of machine: crun fails on hybrid cgroups, so runc with cgroupfs; no journald; root
    // lacks CAP_SYS_RESOURCE, so ulimits stay at the caller's hard limit.
    let limit = |flag: &str| {
        let o = Command::new("bash")
            .args(["-c", &format!("ulimit -H{flag}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .replace("unlimited", "-1")
    };
    // Processes: podman's own processes run under a lower effective ceiling than `ulimit -Hu` shows here, so
    // stay at pid_max-sized 32768 or the hard limit, whichever is lower.
    let nofile = limit("n");
    let nproc = limit("u")
        .parse::<i64>()
        .map(|h| if h < 0 { 32768 } else { h.min(32768) })
        .unwrap_or(1024);
    std::fs::write(
        dir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\nnetns = \"none\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{}\"\nruntime = \"runc\"\ntmp_dir = \"{}\"\n",
            dir.join("events.log").display(),
            // Podman's default /run/libpod is shared by every instance; tests run in parallel.
            dir.join("libpod-tmp").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("storage.conf"),
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.join("root").display(),
            dir.join("runroot").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
}

/// `program` (podman or buildah) with the configuration [`write_containers_config`] wrote in `dir` and storage
/// (vfs) private to `dir`.
pub fn private_cmd(program: &str, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .arg("--storage-driver")
        .arg("vfs");
    c
}

impl Podman {
    pub fn new(dir: &Path) -> Podman {
        write_containers_config(dir);
        Podman {
            dir: dir.to_path_buf(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = private_cmd("podman", &self.dir);
        c.arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("file")
            .arg("--runtime")
            .arg("runc");
        c
    }
}

impl Podman {
    /// `podman load -i TAR`, required to succeed; returns what podman said (the names it loaded).
    pub fn load(&self, tar: &Path) -> String {
        crate::process::run_ok(self.cmd().arg("load").arg("-i").arg(tar))
    }

    /// `podman run --rm --network none IMAGE [CMD...]` (`args` = image and command), required to succeed; stdout.
    pub fn run(&self, args: &[&str]) -> String {
        crate::process::run_ok(
            self.cmd()
                .args(["run", "--rm", "--network", "none"])
                .args(args),
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // vfs layers may hold read-only dirs; podman knows how to remove its own storage.
        let _ = self.cmd().args(["system", "reset", "--force"]).output();
    }
}
