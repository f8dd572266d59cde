//! Native RUN execution: the stage's layers unpacked (cached by chain ID), an overlay or copy of them as the
//! container's root, the command run by an OCI runtime (runc/crun) in fresh namespaces, and the changes written
//! back as a deterministic layer.

pub mod binds;
pub mod cachemount;
pub mod console;
pub mod container;
pub mod diff;
pub mod fsutil;
pub mod lifecycle;
pub mod mounts;
pub mod network;
pub mod prune;
pub mod runtime;
pub mod spec;
pub mod sshfwd;
pub mod unpack;

pub use prune::remove_snapshots;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use lw_engine::host::{BlobStore, RunExecutor, RunRequest, RunResult};
use serde_json::{json, Value};

use crate::store::Store;
use mounts::MountKind;
use runtime::{Exit, Runtime};

/// A process-unique suffix for temporary names.
pub(crate) fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{}",
        t & 0xffff_ffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a path (file or tree) when dropped.
pub(crate) struct RemoveOnDrop(pub Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fsutil::remove_tree(&p);
        }
    }
}

/// Unmounts (lazily, so a busy mount cannot make us leak it) when dropped.
pub struct UnmountOnDrop(pub Option<PathBuf>);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if let Ok(c) = CString::new(p.as_os_str().as_bytes()) {
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
}

/// Mount an overlay of `lower` with `upper`/`work` at `target`; false when the kernel or file system refuses.
pub(crate) fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> bool {
    let bad = |p: &Path| {
        p.as_os_str()
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\\'))
    };
    if bad(lower) || bad(upper) || bad(work) {
        return false;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let (Ok(src), Ok(tgt), Ok(fstype), Ok(data)) = (
        CString::new("overlay"),
        CString::new(target.as_os_str().as_bytes()),
        CString::new("overlay"),
        CString::new(opts),
    ) else {
        return false;
    };
    unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr() as *const libc::c_void,
        ) == 0
    }
}

/// The executor `layerwright build` uses: runc/crun when one is installed, else one that fails every RUN step with
/// the reason (so Dockerfiles without RUN still build on hosts without a runtime). The runtime is looked for at the
/// first RUN step: a build without RUN starts no `runc --version` (30-80 ms of a 1 KB COPY rebuild under load).
pub fn executor(
    store: &Store,
    secrets: BTreeMap<String, PathBuf>,
    ssh: BTreeMap<String, PathBuf>,
    runtime: Option<&str>,
) -> Box<dyn RunExecutor> {
    let store = store.clone();
    let runtime = runtime.map(str::to_string);
    Box::new(Lazy::Pending(Box::new(move || -> Box<dyn RunExecutor> {
        match RuncExecutor::with_runtime(&store, runtime.as_deref()) {
            Ok(mut r) => {
                r.secrets = secrets;
                r.ssh = ssh;
                Box::new(r)
            }
            Err(e) => Box::new(Unavailable(e.to_string())),
        }
    })))
}

/// An executor made when the first RUN step needs it.
enum Lazy {
    Pending(Box<dyn FnOnce() -> Box<dyn RunExecutor>>),
    Ready(Box<dyn RunExecutor>),
    /// Only while being made.
    Empty,
}

impl RunExecutor for Lazy {
    fn run(
        &mut self,
        req: &RunRequest,
        store: &mut dyn BlobStore,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, lw_engine::Error> {
        if let Lazy::Pending(_) = self {
            let Lazy::Pending(make) = std::mem::replace(self, Lazy::Empty) else {
                unreachable!("matched above")
            };
            *self = Lazy::Ready(make());
        }
        match self {
            Lazy::Ready(r) => r.run(req, store, output),
            _ => Err(lw_engine::Error::Host(
                "the RUN executor could not be made".into(),
            )),
        }
    }
}

/// A RUN executor that cannot run anything, and says why.
pub struct Unavailable(pub String);

impl RunExecutor for Unavailable {
    fn run(
        &mut self,
        req: &RunRequest,
        _: &mut dyn BlobStore,
        _: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, lw_engine::Error> {
        Err(lw_engine::Error::Host(format!(
            "{}: {}",
            req.location, self.0
        )))
    }
}

/// Parse docker's `--secret id=ID,src=PATH` (also `source=`, `type=file`; `id` defaults to the file name).
pub fn parse_secret_flag(spec: &str) -> Result<(String, PathBuf)> {
    let (mut id, mut src) = (None, None);
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_string()),
            Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
            Some(("type", "file")) => {}
            _ => bail!("--secret {spec:?}: expected id=ID,src=PATH"),
        }
    }
    let src = src.ok_or_else(|| anyhow::anyhow!("--secret {spec:?}: src=PATH is missing"))?;
    let id = match id {
        Some(i) => i,
        None => src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if id.is_empty() {
        bail!("--secret {spec:?}: id is empty");
    }
    Ok((id, src))
}

/// Runs RUN steps with runc (or crun) on the host.
pub struct RuncExecutor {
    /// The store root: snapshots, cache mounts and temporary bundles live under it.
    root: PathBuf,
    tmp: PathBuf,
    pub runtime: Runtime,
    /// Secrets for `--mount=type=secret,id=ID`: id → file on the host.
    pub secrets: BTreeMap<String, PathBuf>,
    /// SSH agents for `--mount=type=ssh,id=ID`: id → the agent's socket on the host.
    pub ssh: BTreeMap<String, PathBuf>,
    /// Kill a step that runs longer than this.
    pub timeout: Option<Duration>,
    /// Try overlayfs for the container root before falling back to a copy.
    pub use_overlay: bool,
}

impl RuncExecutor {
    /// An executor for `store`, with the first OCI runtime that works.
    pub fn new(store: &Store) -> Result<Self> {
        Self::with_runtime(store, None)
    }

    /// An executor with a named runtime (`runc`, `crun` or a path), or the first that works for `None`.
    pub fn with_runtime(store: &Store, runtime: Option<&str>) -> Result<Self> {
        let binary = runtime::find_runtime(runtime)?;
        // The bundle's paths must be absolute: runc reads relative ones from the bundle directory
        // (`--root store` would otherwise fail every RUN).
        let root = std::path::absolute(store.root())?;
        let tmp = std::path::absolute(store.tmp_dir())?;
        Ok(RuncExecutor {
            root,
            runtime: Runtime {
                binary,
                state: tmp.join("runc-state"),
            },
            tmp,
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            timeout: None,
            use_overlay: true,
        })
    }

    /// Where unpacked layer stacks are kept between steps and builds.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("run/snapshots")
    }

    /// Where `--mount=type=cache` directories persist.
    pub fn cache_mounts_dir(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }

    /// The step's root: an overlay over the snapshot when it can be mounted (unmounted when the guard drops),
    /// else a copy.
    fn step_rootfs(&self, base: &Path, work: &Path, rootfs: &Path) -> Result<UnmountOnDrop> {
        let mut unmount = UnmountOnDrop(None);
        let mut overlay = false;
        if self.use_overlay {
            for d in ["rootfs", "upper", "work"] {
                fs::create_dir(work.join(d))?;
            }
            overlay = mount_overlay(base, &work.join("upper"), &work.join("work"), rootfs);
            if overlay {
                unmount.0 = Some(rootfs.to_path_buf());
            } else {
                fs::remove_dir(rootfs)?;
            }
        }
        if !overlay {
            fsutil::copy_tree(base, rootfs).context("copying the root file system")?;
        }
        Ok(unmount)
    }

    /// One `--mount` of the step into `mounts` (and a secret's variable into `env`); `false` when the mount is left
    /// out (an optional secret that is not given, or one only in the environment).
    fn add_mount(
        &self,
        step: &StepDirs,
        i: usize,
        m: &mounts::RunMount,
        store: &dyn BlobStore,
        env: &mut Vec<String>,
        mounts: &mut StepMounts,
    ) -> Result<bool> {
        match &m.kind {
            MountKind::Tmpfs { size } => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                mounts.extra.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
            }
            MountKind::Cache {
                id,
                mode,
                uid,
                gid,
                readonly,
                sharing,
            } => {
                // `from=`: the engine resolved the seed of a new cache directory.
                let seed = match step.req.binds.iter().find(|b| b.mount == i) {
                    Some(src) => {
                        let root = step.snapshots.get(&src.layers, &src.diff_ids, store)?;
                        Some(fsutil::resolve_in_root(&root, &src.path)?)
                    }
                    None => None,
                };
                let lease = cachemount::acquire(
                    &self.cache_mounts_dir(),
                    id,
                    *sharing,
                    (*uid, *gid, *mode),
                    seed.as_deref(),
                )
                .with_context(|| format!("{}: cache mount {id}", step.req.location))?;
                let ro = if *readonly { "ro" } else { "rw" };
                mounts.extra.push(json!({"destination": m.target, "type": "bind", "source": lease.dir, "options": ["rbind", ro]}));
                mounts.cache_leases.push(lease);
            }
            MountKind::Secret { .. } => return self.add_secret(step, i, m, env, mounts),
            MountKind::Ssh { id, mode, uid, gid } => {
                let Some(agent) = self.ssh.get(id) else {
                    bail!(
                        "{}: no SSH key {id:?} forwarded from the client",
                        step.req.location
                    );
                };
                // The step's own socket, in its work directory (gone with the step), relayed to the agent.
                let sock = step.work.join(format!("ssh-{i}.sock"));
                let relay = sshfwd::SshRelay::start(&sock, agent, *mode, *uid, *gid)
                    .with_context(|| format!("{}: ssh agent {id}", step.req.location))?;
                mounts.ssh_relays.push(relay);
                mounts.extra.push(json!({"destination": m.target, "type": "bind", "source": sock, "options": ["rbind"]}));
            }
            MountKind::Bind { readonly } => {
                let Some(src) = step.req.binds.iter().find(|b| b.mount == i) else {
                    bail!(
                        "{}: --mount={}: the bind source was not resolved by the build engine",
                        step.req.location,
                        step.req.mounts[i]
                    );
                };
                let source = binds::prepare(
                    step.snapshots,
                    src,
                    *readonly,
                    store,
                    step.work,
                    self.use_overlay,
                    &mut mounts.bind_unmounts,
                )
                .with_context(|| {
                    format!("{}: --mount={}", step.req.location, step.req.mounts[i])
                })?;
                let ro = if *readonly { "ro" } else { "rw" };
                mounts.extra.push(json!({"destination": m.target, "type": "bind", "source": source, "options": ["rbind", ro]}));
            }
        }
        Ok(true)
    }

    /// A `type=secret` mount: the secret's value in an environment variable, or a copy of its file.
    fn add_secret(
        &self,
        step: &StepDirs,
        i: usize,
        m: &mounts::RunMount,
        env: &mut Vec<String>,
        mounts: &mut StepMounts,
    ) -> Result<bool> {
        let MountKind::Secret {
            id,
            required,
            env: var,
            file,
            mode,
            uid,
            gid,
        } = &m.kind
        else {
            unreachable!("add_secret is for secret mounts")
        };
        match self.secrets.get(id) {
            Some(p) => {
                if !p.is_file() {
                    bail!(
                        "{}: secret {id}: {} is not a file",
                        step.req.location,
                        p.display()
                    );
                }
                if let Some(var) = var {
                    let value = fs::read(p)
                        .with_context(|| format!("{}: reading secret {id}", step.req.location))?;
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != var);
                    env.push(format!("{var}={}", String::from_utf8_lossy(&value)));
                }
                if !*file {
                    return Ok(false);
                }
                // A copy with the mount's mode and owner (BuildKit's default 0400 root:root), in the
                // step's own directory, which goes with the step.
                let copy = step.work.join(format!("secret-{i}"));
                fs::copy(p, &copy)
                    .with_context(|| format!("{}: reading secret {id}", step.req.location))?;
                fs::set_permissions(&copy, fs::Permissions::from_mode(*mode & 0o7777))?;
                std::os::unix::fs::chown(&copy, Some(*uid), Some(*gid))?;
                mounts.extra.push(json!({"destination": m.target, "type": "bind", "source": copy, "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
            }
            None if *required => bail!("{}: secret {id} not found", step.req.location),
            None => return Ok(false),
        }
        Ok(true)
    }

    /// Every mount of the step: /etc/hosts, /etc/resolv.conf and /etc/hostname, the `--mount`s, heredoc files.
    fn step_mounts(
        &self,
        step: &StepDirs,
        run_mounts: &[mounts::RunMount],
        mode: network::Mode,
        store: &dyn BlobStore,
        env: &mut Vec<String>,
        workdir: &str,
    ) -> Result<StepMounts> {
        // runc's own mount points (/proc, /dev, /sys) stay in the layer when the image lacked them, as BuildKit
        // leaves them; the other targets' stubs are removed.
        let mut mounts = StepMounts::default();
        // Every step gets these three files, bind-mounted read-only: never in the layer, the image's own unchanged.
        let etc = step.work.join("etc");
        fs::create_dir(&etc)?;
        mounts.extra.extend(network::etc_mounts(
            &etc,
            mode,
            &step.req.extra_hosts,
            &step.req.hostname,
        )?);
        mounts
            .targets
            .extend(["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"].map(String::from));
        for (i, m) in run_mounts.iter().enumerate() {
            if self.add_mount(step, i, m, store, env, &mut mounts)? {
                mounts.targets.push(m.target.clone());
            }
        }
        add_files(
            step.req,
            step.work,
            workdir,
            &mut mounts.extra,
            &mut mounts.targets,
        )?;
        Ok(mounts)
    }

    fn execute(
        &mut self,
        req: &RunRequest,
        store: &mut dyn BlobStore,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult> {
        check_platform(req)?;
        let workdir = if req.workdir.is_empty() {
            "/".to_string()
        } else {
            req.workdir.clone()
        };
        let run_mounts = req
            .mounts
            .iter()
            .map(|m| {
                mounts::parse(m, &workdir).with_context(|| format!("{}: --mount={m}", req.location))
            })
            .collect::<Result<Vec<_>>>()?;
        // From here on Ctrl-C must not kill us half-way: mounts and temporary trees are cleaned up by guards.
        let _signals = runtime::SignalGuard::install();
        // Held while the step runs, so `prune` leaves our snapshots and temporary tree alone.
        let _in_use = prune::RunLock::shared(&self.root)?;
        let snapshots = unpack::Snapshots {
            dir: self.snapshots_dir(),
        };
        let base = snapshots.get(&req.layers, &req.diff_ids, &*store)?;

        fs::create_dir_all(&self.tmp)?;
        prune::reap_dead_steps(&self.tmp, &self.runtime);
        let id = format!("lw-run-{}-{}", std::process::id(), unique_suffix());
        let work = self.tmp.join(&id);
        fs::create_dir(&work)?;
        // Dropped last: after the overlay is unmounted.
        let _remove = RemoveOnDrop(Some(work.clone()));
        let rootfs = work.join("rootfs");
        let unmount = self.step_rootfs(&base, &work, &rootfs)?;
        let mut env = req.env.clone();

        let user = spec::resolve_user(&rootfs, &req.user)
            .with_context(|| format!("{}: USER {}", req.location, req.user))?;
        let before = diff::scan(&rootfs)?;

        let mode = network::Mode::parse(&req.network).with_context(|| req.location.clone())?;
        let step = StepDirs {
            req,
            snapshots: &snapshots,
            work: &work,
        };
        let mut mounts = self.step_mounts(&step, &run_mounts, mode, &*store, &mut env, &workdir)?;
        let (extra, targets) = (
            std::mem::take(&mut mounts.extra),
            std::mem::take(&mut mounts.targets),
        );

        // Dropped before the work directory goes: slirp4netns logs there.
        let net = network::StepNetwork::setup(mode, &work)
            .with_context(|| format!("{}: RUN network {:?}", req.location, req.network))?;
        let bundle = work.join("bundle");
        fs::create_dir(&bundle)?;
        let config = spec::config(&spec::SpecInput {
            rootfs: &rootfs,
            args: &req.args,
            env: &env,
            cwd: &workdir,
            user: &user,
            host_network: mode == network::Mode::Host,
            netns: net.ns_path(),
            mounts: extra,
            hostname: &req.hostname,
            insecure: req.insecure,
        });
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;
        if runtime::interrupted() {
            bail!("{}: interrupted", req.location);
        }

        let exit = self.runtime.run(&bundle, &id, self.timeout, output)?;
        drop(net);
        check_exit(req, exit, self.timeout)?;

        remove_created_mountpoints(&rootfs, &|r| before.contains_key(r), &targets)?;
        let after = diff::scan(&rootfs)?;
        let layer = diff::write_layer(
            &rootfs,
            Some(base.as_path()),
            &before,
            &after,
            req.source_date_epoch,
            store,
        )?;
        drop(unmount);
        Ok(RunResult { layer })
    }
}

/// Refuses a step for a platform this host cannot run without emulation.
fn check_platform(req: &RunRequest) -> Result<()> {
    let host = crate::store::host_platform();
    // An x86_64 kernel runs i386 programs itself (IA32 emulation), as docker does for linux/386 images.
    let native_compat = host.architecture == "amd64" && req.platform.architecture == "386";
    if req.platform.os != host.os
        || (req.platform.architecture != host.architecture && !native_compat)
    {
        bail!(
            "{}: cannot run a {}/{} RUN step on this {}/{} host (no emulation is set up)",
            req.location,
            req.platform.os,
            req.platform.architecture,
            host.os,
            host.architecture
        );
    }
    Ok(())
}

/// Heredoc files are mounted read-only for the step, never stored in the layer.
fn add_files(
    req: &RunRequest,
    work: &Path,
    workdir: &str,
    extra: &mut Vec<Value>,
    targets: &mut Vec<String>,
) -> Result<()> {
    for (i, (path, data)) in req.files.iter().enumerate() {
        let f = work.join(format!("file-{i}"));
        fs::write(&f, data)?;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755))?;
        let dest = if path.starts_with('/') {
            path.clone()
        } else {
            format!("{}/{path}", workdir.trim_end_matches('/'))
        };
        extra.push(
            json!({"destination": dest, "type": "bind", "source": f, "options": ["rbind", "ro"]}),
        );
        targets.push(dest);
    }
    Ok(())
}

/// A step that did not exit 0 fails the build with BuildKit's wording.
fn check_exit(req: &RunRequest, exit: Exit, timeout: Option<std::time::Duration>) -> Result<()> {
    let cmd = req.args.join(" ");
    match exit {
        Exit::Code(0) => {}
        Exit::Code(c) => bail!(
            "{}: process {cmd:?} did not complete successfully: exit code: {c}",
            req.location
        ),
        Exit::Interrupted => bail!("{}: process {cmd:?} was interrupted", req.location),
        Exit::TimedOut => bail!(
            "{}: process {cmd:?} timed out after {:?}",
            req.location,
            timeout.unwrap_or_default()
        ),
    }
    Ok(())
}

/// The mounts of one step: runtime spec entries, their targets, and the guards that must outlive the step (cache
/// leases; bind sources' overlays, unmounted before the work directory is removed).
#[derive(Default)]
struct StepMounts {
    extra: Vec<Value>,
    targets: Vec<String>,
    cache_leases: Vec<cachemount::CacheLease>,
    bind_unmounts: Vec<UnmountOnDrop>,
    ssh_relays: Vec<sshfwd::SshRelay>,
}

/// Where a step's mounts come from: the request, the snapshots and the step's work directory.
struct StepDirs<'a> {
    req: &'a RunRequest,
    snapshots: &'a unpack::Snapshots,
    work: &'a Path,
}

/// The runtime makes mount points that the image did not have (`/proc`, a cache target...); they are not the
/// step's output, so remove them (and parents it made) when they are still empty.
pub(crate) fn remove_created_mountpoints(
    rootfs: &Path,
    existed: &dyn Fn(&str) -> bool,
    targets: &[String],
) -> Result<()> {
    let mut rels: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        let host = fsutil::resolve_in_root(rootfs, t)?;
        let Ok(rel) = host.strip_prefix(rootfs) else {
            continue;
        };
        let mut rel = rel.to_string_lossy().into_owned();
        while !rel.is_empty() && !existed(&rel) {
            rels.insert(rel.clone());
            rel = lw_layer::path::parent(&rel).to_string();
        }
    }
    // Deepest first, so a parent is empty when we reach it.
    let mut list: Vec<String> = rels.into_iter().collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.matches('/').count()));
    for rel in list {
        let p = rootfs.join(&rel);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(&p);
            }
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(&p);
            }
            _ => {}
        }
    }
    Ok(())
}

impl RunExecutor for RuncExecutor {
    fn run(
        &mut self,
        req: &RunRequest,
        store: &mut dyn BlobStore,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, lw_engine::Error> {
        self.execute(req, store, output)
            .map_err(|e| lw_engine::Error::Host(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How `layerwright build` plugs the executor into the engine's host.
    #[allow(dead_code)]
    fn wiring(store: &Store) {
        let mut runner = executor(store, BTreeMap::new(), BTreeMap::new(), None);
        let _run: Option<&mut dyn RunExecutor> = Some(&mut *runner);
    }

    #[test]
    fn secret_flags() {
        assert_eq!(
            parse_secret_flag("id=tok,src=/a/b").unwrap(),
            ("tok".into(), PathBuf::from("/a/b"))
        );
        assert_eq!(
            parse_secret_flag("source=/a/key.pem").unwrap(),
            ("key.pem".into(), PathBuf::from("/a/key.pem"))
        );
        assert!(parse_secret_flag("id=tok").is_err());
        assert!(parse_secret_flag("id=tok,env=X").is_err());
    }
}
