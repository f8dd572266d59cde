//! Containers for `layerwright run`: their records under `<root>/containers/<id>/`, a writable overlay layer on
//! the image's unpacked layers (the same snapshots, spec, network and runtime code RUN steps use), the run itself,
//! and the clean-up of containers whose owner died.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use lw_oci::Descriptor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::runtime::{self, Runtime};
use super::{diff, fsutil, mount_overlay, network, prune, spec, unpack, UnmountOnDrop};
use crate::buildhost::StoreBlobs;
use crate::store::{write_atomic, Store};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Exited,
}

/// A bind mount from the host (`-v` / `--mount type=bind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// What we keep of a container (its `container.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image as the user named it, and the manifest it resolved to.
    pub image: String,
    pub manifest: Descriptor,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: String,
    pub binds: Vec<Bind>,
    #[serde(default)]
    pub ports: Vec<network::PortForward>,
    pub auto_remove: bool,
    pub detached: bool,
    pub interactive: bool,
    /// `-t`: the process gets a terminal.
    #[serde(default)]
    pub tty: bool,
    pub created: i64,
    pub started: Option<i64>,
    pub finished: Option<i64>,
    pub state: State,
    pub exit_code: Option<i32>,
    /// The process that owns the running container (the foreground `run`, or the detached monitor).
    pub owner: Option<u32>,
    /// Why the container could not start.
    pub error: Option<String>,
}

impl Record {
    pub fn args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The containers of one store.
pub struct Containers {
    pub dir: PathBuf,
    pub runtime: Runtime,
    root: PathBuf,
}

impl Containers {
    pub fn open(store: &Store) -> Result<Containers> {
        let root = std::path::absolute(store.root())?;
        let dir = root.join("containers");
        fs::create_dir_all(&dir)?;
        // Our own runc state: `prune` cleans the store's tmp, which RUN's state lives in.
        // `ps`, `rm` and `logs` work without one; `start` says what is missing.
        let binary = runtime::find_runtime(None).unwrap_or_else(|_| PathBuf::from("runc"));
        Ok(Containers {
            runtime: Runtime {
                binary,
                state: dir.join(".runc"),
            },
            dir,
            root,
        })
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        let p = self.path(id).join("container.json");
        let b = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&b).with_context(|| format!("{} is not valid", p.display()))
    }

    pub fn save(&self, r: &Record) -> Result<()> {
        write_atomic(
            &self.path(&r.id).join("container.json"),
            &serde_json::to_vec_pretty(r)?,
        )
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !e.path().join("container.json").is_file() {
                continue;
            }
            if let Ok(r) = self.load(&name) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// A container by full ID, unique ID prefix or name.
    pub fn find(&self, key: &str) -> Result<Record> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.id == key || r.name == key) {
            return Ok(r.clone());
        }
        let hits: Vec<&Record> = all
            .iter()
            .filter(|r| !key.is_empty() && r.id.starts_with(key))
            .collect();
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => bail!("No such container: {key}"),
            _ => bail!("multiple containers match {key:?}: give more of the ID"),
        }
    }

    /// Make a new container's directory and record (state `created`).
    pub fn create(&self, mut r: Record) -> Result<Record> {
        if self.list()?.iter().any(|o| o.name == r.name) {
            bail!("the container name {:?} is already in use", r.name);
        }
        let dir = self.path(&r.id);
        fs::create_dir(&dir)?;
        for d in ["upper", "work", "rootfs"] {
            fs::create_dir(dir.join(d))?;
        }
        r.state = State::Created;
        self.save(&r)?;
        Ok(r)
    }

    /// Containers starting or running whose owner is gone (a killed `run`): kill what is left, unmount, mark
    /// exited (or remove, for `--rm`).
    pub fn reap_stale(&self) -> Result<()> {
        for mut r in self.list()? {
            // A starting container has its owner recorded before anything is mounted.
            if r.state == State::Exited || r.owner.is_none_or(pid_alive) {
                continue;
            }
            self.runtime.kill(&r.id, "KILL");
            self.runtime.delete(&r.id);
            drop(UnmountOnDrop(Some(self.path(&r.id).join("rootfs"))));
            if r.auto_remove {
                self.remove_dir(&r.id)?;
                continue;
            }
            r.state = State::Exited;
            r.exit_code = Some(r.exit_code.unwrap_or(137));
            r.finished = Some(now());
            r.owner = None;
            self.save(&r)?;
        }
        Ok(())
    }

    /// Remove a container that is not running: unmount (in case) and delete its directory.
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.path(id);
        drop(UnmountOnDrop(Some(dir.join("rootfs"))));
        self.runtime.delete(id);
        fsutil::remove_tree(&dir).with_context(|| format!("removing {}", dir.display()))
    }

    /// Wait until `id` is no longer running (or `limit` passes); the record then.
    pub fn wait_exit(&self, id: &str, limit: Duration) -> Result<Record> {
        let start = std::time::Instant::now();
        loop {
            let r = match self.load(id) {
                Ok(r) => r,
                // Removed by its owner (`--rm`).
                Err(_) if !self.path(id).exists() => bail!("container {id} was removed"),
                Err(e) => return Err(e),
            };
            if r.state != State::Running || start.elapsed() > limit {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The unpacked image under the container (made again from the image's blobs if it was pruned).
    pub fn base(&self, store: &Store, r: &Record) -> Result<PathBuf> {
        let img = store.resolve(&r.manifest, None)?;
        let snapshots = unpack::Snapshots {
            dir: self.root.join("run/snapshots"),
        };
        snapshots.get(
            &img.manifest.layers,
            &img.config.rootfs.diff_ids,
            &StoreBlobs { store },
        )
    }

    /// Mount the container's root (image layers + its writable layer) at `<dir>/rootfs`; unmounted when the
    /// guard drops.
    pub fn mount(&self, store: &Store, r: &Record) -> Result<UnmountOnDrop> {
        let base = self.base(store, r)?;
        let dir = self.path(&r.id);
        let rootfs = dir.join("rootfs");
        if !mount_overlay(&base, &dir.join("upper"), &dir.join("work"), &rootfs) {
            bail!(
                "cannot mount an overlay at {} (containers need overlayfs on the store's file system)",
                rootfs.display()
            );
        }
        Ok(UnmountOnDrop(Some(rootfs)))
    }
}

pub fn pid_alive(pid: u32) -> bool {
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// docker's exit codes for a command that cannot be run: 127 when it is not found, 126 when it cannot be executed.
pub fn check_command(
    rootfs: &Path,
    args: &[String],
    env: &[String],
    cwd: &str,
) -> Result<(), (i32, String)> {
    let Some(cmd) = args.first() else {
        return Err((125, "no command specified".into()));
    };
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let check = |path: &str| -> Result<bool, (i32, String)> {
        let host = fsutil::resolve_in_root(rootfs, path).map_err(|e| (127, e.to_string()))?;
        Ok(executable(&host))
    };
    if cmd.contains('/') {
        let full = if cmd.starts_with('/') {
            cmd.clone()
        } else {
            format!("{}/{cmd}", cwd.trim_end_matches('/'))
        };
        let host = fsutil::resolve_in_root(rootfs, &full).map_err(|e| (127, e.to_string()))?;
        if !host.exists() {
            return Err((
                127,
                format!("exec: \"{cmd}\": stat {cmd}: no such file or directory"),
            ));
        }
        if !check(&full)? {
            return Err((126, format!("exec: \"{cmd}\": permission denied")));
        }
        return Ok(());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        if check(&format!("{}/{cmd}", dir.trim_end_matches('/')))? {
            return Ok(());
        }
    }
    Err((
        127,
        format!("exec: \"{cmd}\": executable file not found in $PATH"),
    ))
}

/// Paths (relative to the root, with their parents) of the mount points that already exist in `rootfs`.
fn existing(rootfs: &Path, targets: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for t in targets {
        let Ok(host) = fsutil::resolve_in_root(rootfs, t) else {
            continue;
        };
        let Ok(rel) = host.strip_prefix(rootfs) else {
            continue;
        };
        let mut rel = rel.to_string_lossy().into_owned();
        while !rel.is_empty() {
            if fs::symlink_metadata(rootfs.join(&rel)).is_ok() {
                out.insert(rel.clone());
            }
            rel = lw_layer::path::parent(&rel).to_string();
        }
    }
    out
}

/// Run container `id` to its end with `stdio` as the process's stdin/stdout/stderr; returns its exit code. Used by
/// the foreground `run` and by the detached monitor alike. The root is mounted only while it runs.
pub fn start(store: &Store, cs: &Containers, id: &str, stdio: [Stdio; 3]) -> Result<i32> {
    let _signals = runtime::SignalGuard::install();
    let _in_use = prune::RunLock::shared(&cs.root)?;
    let mut r = cs.load(id)?;
    r.owner = Some(std::process::id());
    cs.save(&r)?;
    let dir = cs.path(id);
    let rootfs = dir.join("rootfs");
    // Whatever fails, the container ends as exited (or removed, with --rm) and nothing stays mounted.
    let result = runtime::find_runtime(None)
        .and_then(|_| cs.mount(store, &r))
        .map_err(|e| (125, format!("{e:#}")))
        .and_then(|unmount| {
            let res = run_mounted(store, cs, &mut r, &dir, &rootfs, stdio);
            drop(unmount);
            res
        });
    let code = match result {
        Ok(c) => c,
        Err((c, msg)) => {
            r.error = Some(msg.clone());
            eprintln!("layerwright: {msg}");
            c
        }
    };
    r.state = State::Exited;
    r.exit_code = Some(code);
    r.finished = Some(now());
    r.owner = None;
    if r.auto_remove {
        cs.remove_dir(id)?;
    } else {
        cs.save(&r)?;
    }
    Ok(code)
}

fn run_mounted(
    _store: &Store,
    cs: &Containers,
    r: &mut Record,
    dir: &Path,
    rootfs: &Path,
    stdio: [Stdio; 3],
) -> Result<i32, (i32, String)> {
    let args = r.args();
    let user = spec::resolve_user(rootfs, &r.user).map_err(e125)?;
    let cwd = working_dir(rootfs, &r.cwd).map_err(e125)?;
    check_command(rootfs, &args, &r.env, &cwd)?;
    let mode = network::Mode::parse(if r.network == "bridge" {
        "default"
    } else {
        &r.network
    })
    .map_err(e125)?;
    // docker's host name is the short container ID.
    let hostname = &r.id[..12];
    let (mounts, targets) = container_mounts(dir, r, mode, hostname)?;
    let had = existing(rootfs, &targets);
    let net = network::StepNetwork::setup_with_ports(mode, dir, &r.ports).map_err(e125)?;
    let config = spec::config(&spec::SpecInput {
        rootfs,
        args: &args,
        env: &r.env,
        cwd: &cwd,
        user: &user,
        host_network: mode == network::Mode::Host,
        netns: net.ns_path(),
        mounts,
        hostname,
        insecure: false,
    });
    let bundle = write_bundle(dir, config, r)?;
    if runtime::interrupted() {
        return Err((130, "interrupted".into()));
    }
    let id = r.id.clone();
    // With a terminal, our stdin goes to it only for `-i` in the foreground (a detached one has no stdin).
    let tty = r.tty.then_some(r.interactive && !r.detached);
    // `running` once runc has started it: from then on `stop` and `rm -f` can signal it.
    let mut mark_running = |_pid: u32| {
        r.state = State::Running;
        r.owner = Some(std::process::id());
        r.started = Some(now());
        let _ = cs.save(r);
    };
    let code = cs
        .runtime
        .run_passthrough(
            &bundle,
            &id,
            stdio,
            tty,
            Duration::from_secs(10),
            &mut mark_running,
        )
        .map_err(e125)?;
    drop(net);
    // Mount points the runtime made are not the container's changes.
    let _ = super::remove_created_mountpoints(rootfs, &|p| had.contains(p), &targets);
    Ok(code)
}

/// run's own failures exit with 125, as docker's do.
fn e125(e: anyhow::Error) -> (i32, String) {
    (125, format!("{e:#}"))
}

/// The container's working directory (`/` when unset), made when missing as docker does.
fn working_dir(rootfs: &Path, cwd: &str) -> Result<String> {
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    let host_cwd = fsutil::resolve_in_root(rootfs, cwd)?;
    if !host_cwd.exists() {
        fs::create_dir_all(&host_cwd)
            .with_context(|| format!("creating the working directory {cwd}"))?;
    }
    Ok(cwd.to_string())
}

/// The container's mounts (the runtime's own, its `/etc` files naming `hostname`, and the binds) and every mount
/// target, whose mount points are removed afterwards when the runtime made them.
fn container_mounts(
    dir: &Path,
    r: &Record,
    mode: network::Mode,
    hostname: &str,
) -> Result<(Vec<Value>, Vec<String>), (i32, String)> {
    let mut targets: Vec<String> = [
        "/proc",
        "/dev",
        "/sys",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/hostname",
    ]
    .map(String::from)
    .to_vec();
    let mut mounts: Vec<Value> = Vec::new();
    let etc = dir.join("etc");
    let _ = fsutil::remove_tree(&etc);
    fs::create_dir(&etc).map_err(|e| e125(e.into()))?;
    mounts.extend(network::etc_mounts(&etc, mode, &[], "").map_err(e125)?);
    let hosts = fs::read_to_string(etc.join("hosts")).unwrap_or_default();
    let hosts = hosts.replacen(network::HOSTNAME, hostname, 1);
    let _ = fs::write(etc.join("hosts"), hosts);
    let _ = fs::write(etc.join("hostname"), format!("{hostname}\n"));
    for b in &r.binds {
        if !b.target.starts_with('/') {
            return Err((
                125,
                format!("invalid mount target {:?}: not an absolute path", b.target),
            ));
        }
        let ro = if b.readonly { "ro" } else { "rw" };
        mounts.push(json!({"destination": b.target, "type": "bind", "source": b.source, "options": ["rbind", ro]}));
        targets.push(b.target.clone());
    }
    Ok((mounts, targets))
}

/// The OCI bundle directory with `config` (a terminal and `TERM` for `-t`) as its config.json.
fn write_bundle(dir: &Path, mut config: Value, r: &Record) -> Result<PathBuf, (i32, String)> {
    let bundle = dir.join("bundle");
    let _ = fsutil::remove_tree(&bundle);
    fs::create_dir(&bundle).map_err(|e| e125(e.into()))?;
    if r.tty {
        config["process"]["terminal"] = json!(true);
        if !r.env.iter().any(|e| e.starts_with("TERM=")) {
            if let Some(env) = config["process"]["env"].as_array_mut() {
                env.push(json!("TERM=xterm"));
            }
        }
    }
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&config).map_err(|e| e125(e.into()))?,
    )
    .map_err(|e| e125(e.into()))?;
    Ok(bundle)
}

/// A fresh 64-hex-digit container ID.
pub fn new_id() -> Result<String> {
    let mut b = [0u8; 32];
    let mut f = fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The container's changes as two scans: the image (`before`) and the container's root (`after`), where paths its
/// writable layer did not touch carry the image's metadata (the overlay reports other devices and inodes). The
/// root is mounted while the guard (when any) lives; a running container's is already mounted.
pub fn change_scans(
    store: &Store,
    cs: &Containers,
    r: &Record,
) -> Result<(PathBuf, Option<UnmountOnDrop>, diff::Scan, diff::Scan)> {
    let dir = cs.path(&r.id);
    let rootfs = dir.join("rootfs");
    let guard = if r.state == State::Running {
        None
    } else {
        Some(cs.mount(store, r)?)
    };
    let before = diff::scan(&cs.base(store, r)?)?;
    let upper = dir.join("upper");
    let mut after = diff::scan(&rootfs)?;
    for (p, m) in after.iter_mut() {
        if fs::symlink_metadata(upper.join(p)).is_err() {
            if let Some(b) = before.get(p) {
                *m = b.clone();
            }
        }
    }
    Ok((rootfs, guard, before, after))
}

/// docker's `diff` lines (the change set's, shared with the tab's VM containers).
pub fn diff_lines(before: &diff::Scan, after: &diff::Scan) -> Vec<String> {
    lw_layer::diff::diff_lines(before, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_not_found_or_not_executable() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::write(r.join("bin/tool"), "x").unwrap();
        fs::set_permissions(r.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(r.join("bin/data"), "x").unwrap();
        std::os::unix::fs::symlink("/bin/tool", r.join("bin/link")).unwrap();
        let env = vec!["PATH=/sbin:/bin".to_string()];
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_command(r, &a(&["tool"]), &env, "/").is_ok());
        assert!(check_command(r, &a(&["link"]), &env, "/").is_ok());
        assert!(check_command(r, &a(&["/bin/tool"]), &env, "/").is_ok());
        assert!(check_command(r, &a(&["./tool"]), &env, "/bin").is_ok());
        assert_eq!(
            check_command(r, &a(&["data"]), &env, "/").unwrap_err().0,
            127
        );
        assert_eq!(
            check_command(r, &a(&["/bin/data"]), &env, "/")
                .unwrap_err()
                .0,
            126
        );
        assert_eq!(
            check_command(r, &a(&["/bin/none"]), &env, "/")
                .unwrap_err()
                .0,
            127
        );
        assert_eq!(
            check_command(r, &a(&["/bin"]), &env, "/").unwrap_err().0,
            126
        );
        assert_eq!(check_command(r, &[], &env, "/").unwrap_err().0, 125);
    }
}
