//! The container commands: run, ps, logs, stop, rm, diff, commit (docker's flags), over `run::container`.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use layerwright::buildhost::StoreBlobs;
use layerwright::names;
use layerwright::run::container::{self, Bind, Containers, Record, State};
use layerwright::run::diff;
use layerwright::run::lifecycle::{self, merge_env, RunOptions, Started};
use layerwright::store::Store;
use lw_oci::media;

#[derive(Args)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines; # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" clears it)
    #[arg(long)]
    entrypoint: Option<String>,
    /// Network: default (private, outbound through slirp4netns; also `bridge`), none or host
    #[arg(long, default_value = "default")]
    network: String,
    /// Bind mount a volume: HOST:CONTAINER[:ro|rw]
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volume: Vec<String>,
    /// Attach a mount: type=bind,source=HOST,target=CONTAINER[,readonly]
    #[arg(long = "mount", value_name = "SPEC")]
    mount: Vec<String>,
    /// Publish a container's port: [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] (IP defaults to 127.0.0.1)
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER")]
    publish: Vec<String>,
    /// Publish every port the image exposes on a free loopback port
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// The image, then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    image_and_command: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    container: String,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args)]
pub struct DiffArgs {
    container: String,
}

#[derive(Args)]
pub struct CommitArgs {
    /// Commit message
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Author (e.g. "Jane <jane@example.org>")
    #[arg(short = 'a', long)]
    author: Option<String>,
    container: String,
    /// REPOSITORY[:TAG] for the new image
    repository: Option<String>,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take it from this environment)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Working directory inside the container (default: the container's)
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: name|uid[:group|gid]; default: the container's)
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// The container, then the command and its arguments
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    container_and_command: Vec<String>,
}

#[derive(Args)]
pub struct MonitorArgs {
    id: String,
}

fn open(root: &Path) -> Result<(Store, Containers)> {
    let store = Store::open(root)?;
    let cs = Containers::open(&store)?;
    cs.reap_stale()?;
    Ok((store, cs))
}

fn parse_env_line(line: &str, out: &mut Vec<String>) {
    match line.split_once('=') {
        Some(_) => out.push(line.to_string()),
        None => {
            // docker: a bare KEY takes this environment's value, and is skipped when unset.
            if let Ok(v) = std::env::var(line) {
                out.push(format!("{line}={v}"));
            }
        }
    }
}

fn parse_volume(spec: &str) -> Result<Bind> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opt) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => bail!("-v {spec:?}: expected HOST:CONTAINER[:ro|rw]"),
    };
    if !src.starts_with('/') {
        bail!("-v {spec:?}: the host path must be absolute (named volumes are not supported)");
    }
    let readonly = match opt {
        "" | "rw" => false,
        "ro" => true,
        o => bail!("-v {spec:?}: unknown option {o:?} (use ro or rw)"),
    };
    // docker makes a missing host directory for -v.
    fs::create_dir_all(src).with_context(|| format!("-v {spec:?}: creating {src}"))?;
    Ok(Bind {
        source: PathBuf::from(src),
        target: dst.to_string(),
        readonly,
    })
}

fn parse_mount(spec: &str) -> Result<Bind> {
    let (mut src, mut dst, mut ro, mut ty) = (None, None, false, "volume");
    for f in spec.split(',') {
        match f.split_once('=') {
            Some(("type", t)) => ty = if t == "bind" { "bind" } else { t },
            Some(("source" | "src", v)) => src = Some(v),
            Some(("target" | "destination" | "dst", v)) => dst = Some(v),
            Some(("readonly" | "ro", v)) => ro = v == "true" || v == "1",
            None if f == "readonly" || f == "ro" => ro = true,
            _ => bail!("--mount {spec:?}: unknown field {f:?}"),
        }
    }
    if ty != "bind" {
        bail!("--mount {spec:?}: only type=bind is supported");
    }
    let src = src.ok_or_else(|| anyhow!("--mount {spec:?}: source= is missing"))?;
    let dst = dst.ok_or_else(|| anyhow!("--mount {spec:?}: target= is missing"))?;
    let source = std::path::absolute(src)?;
    if !source.exists() {
        bail!(
            "--mount {spec:?}: bind source path does not exist: {}",
            source.display()
        );
    }
    Ok(Bind {
        source,
        target: dst.to_string(),
        readonly: ro,
    })
}

/// The run options from the flags (environment files read, bind sources checked) and the image they name.
fn run_options(store: &Store, a: &RunArgs) -> Result<(lw_oci::Descriptor, RunOptions)> {
    let image = &a.image_and_command[0];
    let found = names::resolve(store, image)?;
    let mut env = Vec::new();
    for f in &a.env_file {
        let text = fs::read_to_string(f).with_context(|| format!("--env-file {}", f.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if !line.is_empty() && !line.starts_with('#') {
                parse_env_line(line, &mut env);
            }
        }
    }
    for e in &a.env {
        parse_env_line(e, &mut env);
    }
    let mut binds = Vec::new();
    for v in &a.volume {
        binds.push(parse_volume(v)?);
    }
    for m in &a.mount {
        binds.push(parse_mount(m)?);
    }
    let mut ports = a
        .publish
        .iter()
        .map(|p| lifecycle::parse_publish(p))
        .collect::<Result<Vec<_>>>()?;
    if a.publish_all {
        let exposed = lifecycle::exposed_ports(store, &found.descriptor)?;
        let more = lifecycle::publish_all(&exposed, &ports)?;
        ports.extend(more);
    }
    let o = RunOptions {
        image: image.clone(),
        command: a.image_and_command[1..].to_vec(),
        entrypoint: a.entrypoint.clone(),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        network: a.network.clone(),
        binds,
        ports,
        name: a.name.clone(),
        auto_remove: a.rm,
        detach: a.detach,
        interactive: a.interactive,
        tty: a.tty,
    };
    Ok((found.descriptor, o))
}

/// `run`: the container's exit code; 125 for our own errors.
pub fn run(root: &Path, a: RunArgs) -> Result<u8> {
    let (store, cs) = open(root)?;
    let (manifest, o) = run_options(&store, &a)?;
    let r = cs.create(lifecycle::make_record(&store, &manifest, &o)?)?;
    if !a.detach {
        let stdin = if a.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let code = container::start(
            &store,
            &cs,
            &r.id,
            [stdin, Stdio::inherit(), Stdio::inherit()],
        )?;
        return Ok(code.clamp(0, 255) as u8);
    }
    // Detached: a monitor process of our own owns the container and writes its output to the log.
    match lifecycle::start_detached(&std::env::current_exe()?, root, &cs, &r.id)? {
        Started::Ok => {
            println!("{}", r.id);
            Ok(0)
        }
        Started::Failed(code, e) => {
            eprintln!("Error: {e}");
            Ok(code.clamp(0, 255) as u8)
        }
    }
}

/// `exec`: the command's exit code; 125 for exec's own errors, 126/127 as `run`.
pub fn exec(root: &Path, a: ExecArgs) -> Result<u8> {
    let (_store, cs) = open(root)?;
    let r = cs.find(&a.container_and_command[0])?;
    if r.state != State::Running {
        bail!("container {} is not running", r.name);
    }
    let args = a.container_and_command[1..].to_vec();
    let rootfs = cs.path(&r.id).join("rootfs");
    let user = layerwright::run::spec::resolve_user(&rootfs, a.user.as_ref().unwrap_or(&r.user))?;
    let cwd = a.workdir.clone().unwrap_or_else(|| {
        if r.cwd.is_empty() {
            "/".into()
        } else {
            r.cwd.clone()
        }
    });
    let mut env = Vec::new();
    for e in &a.env {
        parse_env_line(e, &mut env);
    }
    if let Err((code, msg)) =
        container::check_command(&rootfs, &args, &merge_env(&r.env, &env), &cwd)
    {
        eprintln!("Error: {msg}");
        return Ok(code as u8);
    }
    let stdin = if a.interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let p = layerwright::run::runtime::ExecProcess {
        args: &args,
        env: &env,
        cwd: &cwd,
        user: (user.uid, user.gid),
        tty: a.tty,
        interactive: a.interactive,
    };
    let code = cs.runtime.exec(&r.id, &p, stdin)?;
    Ok(code.clamp(0, 255) as u8)
}

/// The hidden `container-monitor ID`: runs a detached container to its end.
pub fn monitor(root: &Path, a: MonitorArgs) -> Result<()> {
    let store = Store::open(root)?;
    let cs = Containers::open(&store)?;
    container::start(
        &store,
        &cs,
        &a.id,
        [Stdio::null(), Stdio::inherit(), Stdio::inherit()],
    )?;
    Ok(())
}

fn ago(secs: i64) -> String {
    let d = (container::now() - secs).max(0);
    match d {
        0..=1 => "Less than a second".into(),
        2..=59 => format!("{d} seconds"),
        60..=3599 => format!("{} minutes", d / 60),
        3600..=172_799 => format!("{} hours", d / 3600),
        _ => format!("{} days", d / 86400),
    }
}

fn status(r: &Record) -> String {
    match r.state {
        State::Created => "Created".into(),
        State::Running => format!("Up {}", ago(r.started.unwrap_or(r.created))),
        State::Exited => format!(
            "Exited ({}) {} ago",
            r.exit_code.unwrap_or(0),
            ago(r.finished.unwrap_or(r.created))
        ),
    }
}

pub fn ps(root: &Path, a: PsArgs) -> Result<()> {
    let (_store, cs) = open(root)?;
    let mut list = cs.list()?;
    list.retain(|r| a.all || r.state == State::Running);
    // Newest first, as docker lists.
    list.reverse();
    if a.quiet {
        for r in &list {
            println!("{}", if a.no_trunc { &r.id } else { &r.id[..12] });
        }
        return Ok(());
    }
    let mut rows = vec![[
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "PORTS".into(),
        "NAMES".into(),
    ]];
    for r in &list {
        let mut cmd = r.args().join(" ");
        if !a.no_trunc && cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        rows.push([
            if a.no_trunc {
                r.id.clone()
            } else {
                r.id[..12].to_string()
            },
            r.image.clone(),
            format!("\"{cmd}\""),
            format!("{} ago", ago(r.created)),
            status(r),
            r.ports
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p.host_ip, p.host_port, p.container_port, p.proto
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            r.name.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i == 6 {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(())
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<()> {
    let (_store, cs) = open(root)?;
    let r = cs.find(&a.container)?;
    let path = cs.path(&r.id).join("container.log");
    if !path.is_file() {
        bail!(
            "container {} has no logs: only detached (-d) containers keep their output",
            r.name
        );
    }
    let mut f = fs::File::open(&path)?;
    let mut out = std::io::stdout().lock();
    let mut pos = 0u64;
    loop {
        f.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        pos += buf.len() as u64;
        out.write_all(&buf)?;
        out.flush()?;
        if !a.follow {
            return Ok(());
        }
        let running = cs
            .load(&r.id)
            .map(|c| c.state == State::Running)
            .unwrap_or(false);
        if !running && buf.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stop(root: &Path, a: StopArgs) -> Result<()> {
    let (_store, cs) = open(root)?;
    for c in &a.containers {
        let r = cs.find(c)?;
        lifecycle::stop(&cs, &r, Duration::from_secs(a.time))?;
        println!("{c}");
    }
    Ok(())
}

pub fn rm(root: &Path, a: RmArgs) -> Result<()> {
    let (_store, cs) = open(root)?;
    for c in &a.containers {
        let r = cs.find(c)?;
        lifecycle::remove(&cs, &r, a.force)?;
        println!("{c}");
    }
    Ok(())
}

pub fn diff(root: &Path, a: DiffArgs) -> Result<()> {
    let (store, cs) = open(root)?;
    let r = cs.find(&a.container)?;
    let (_rootfs, _guard, before, after) = container::change_scans(&store, &cs, &r)?;
    for l in container::diff_lines(&before, &after) {
        println!("{l}");
    }
    Ok(())
}

pub fn commit(root: &Path, a: CommitArgs) -> Result<()> {
    let (store, cs) = open(root)?;
    let r = cs.find(&a.container)?;
    let _lease = store.lease()?;
    let (rootfs, guard, before, after) = container::change_scans(&store, &cs, &r)?;
    let mut blobs = StoreBlobs { store: &store };
    let layer = diff::write_layer(&rootfs, None, &before, &after, None, &mut blobs)?;
    drop(guard);
    let img = store.resolve(&r.manifest, None)?;
    let mut config = img.config.clone();
    let created = lw_oci::config::rfc3339_from_epoch(container::now());
    config.created = Some(created.clone());
    if a.author.is_some() {
        config.author = a.author.clone();
    }
    // docker keeps the container's settings in the committed image.
    config.config.env = Some(r.env.clone());
    config.config.entrypoint = (!r.entrypoint.is_empty()).then(|| r.entrypoint.clone());
    config.config.cmd = (!r.cmd.is_empty()).then(|| r.cmd.clone());
    let mut layers = img.manifest.layers.clone();
    config.history.push(lw_oci::History {
        created: Some(created),
        created_by: Some(r.args().join(" ")),
        author: a.author.clone(),
        comment: a.message.clone(),
        empty_layer: layer.is_none(),
    });
    if let Some((desc, diff_id)) = layer {
        layers.push(desc);
        config.rootfs.diff_ids.push(diff_id);
    }
    let cfg = store.put_bytes(media::OCI_CONFIG, &lw_oci::to_canonical_json(&config))?;
    let manifest = store.put_bytes(
        media::OCI_MANIFEST,
        &lw_oci::to_canonical_json(&lw_oci::Manifest::oci(cfg.clone(), layers)),
    )?;
    match &a.repository {
        Some(name) => store.set_tag(&names::normalize(name)?, &manifest)?,
        None => store.add_untagged(&manifest)?,
    }
    println!("{}", cfg.digest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_flags() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("made");
        let b = parse_volume(&format!("{}:/data:ro", dir.display())).unwrap();
        assert!(dir.is_dir(), "-v makes a missing host directory");
        assert_eq!((b.target.as_str(), b.readonly), ("/data", true));
        assert!(parse_volume("rel:/data").is_err());
        assert!(parse_volume("/x:/y:zz").is_err());
        let m = parse_mount(&format!("type=bind,src={},dst=/m,readonly", dir.display())).unwrap();
        assert_eq!(
            (m.source, m.target.as_str(), m.readonly),
            (dir.clone(), "/m", true)
        );
        let m = parse_mount(&format!("type=bind,source={},target=/m", dir.display())).unwrap();
        assert!(!m.readonly);
        assert!(parse_mount("type=volume,target=/m").is_err());
        assert!(parse_mount(&format!(
            "type=bind,source={}/missing,target=/m",
            dir.display()
        ))
        .is_err());
        assert!(parse_mount("type=bind,target=/m").is_err());
    }
}
