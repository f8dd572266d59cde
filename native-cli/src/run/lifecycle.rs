//! A container's life as `layerwright run` and serve's container API both drive it: its record made from run
//! options and the image's config, ports to publish, the detached start under a monitor process, stop and
//! removal. One code path, so a container started from the tab is the CLI's container (`ps`, `logs`, `rm` see it).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use lw_oci::Descriptor;

use super::container::{self, Bind, Containers, Record, State};
use super::network::PortForward;
use crate::store::Store;

/// What `run` is asked for, after flag parsing (environment files read, bind sources checked).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image as the user named it (shown by `ps`).
    pub image: String,
    /// The command after the image (replaces the image's CMD when not empty).
    pub command: Vec<String>,
    /// `--entrypoint`: `Some("")` clears the image's.
    pub entrypoint: Option<String>,
    /// `KEY=VALUE` entries put over the image's Env.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub network: String,
    pub binds: Vec<Bind>,
    pub ports: Vec<PortForward>,
    pub name: Option<String>,
    pub auto_remove: bool,
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
}

/// Put `overrides` (KEY=VALUE) over `base`, keeping order.
pub fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = base.to_vec();
    for o in overrides {
        let k = key(o);
        match out.iter_mut().find(|e| key(e) == k) {
            Some(e) => *e = o.clone(),
            None => out.push(o.clone()),
        }
    }
    out
}

/// docker's rule for container names.
pub fn check_name(n: &str) -> Result<()> {
    let ok = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!("invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

/// The container's record from the options and the image (`manifest`, already resolved in `store`).
pub fn make_record(store: &Store, manifest: &Descriptor, o: &RunOptions) -> Result<Record> {
    let img = store.resolve(manifest, None)?;
    let cfg = &img.config.config;
    let given = o.command.clone();
    let (entrypoint, cmd) = match &o.entrypoint {
        // docker: a new entrypoint drops the image's CMD.
        Some(e) if e.is_empty() => (vec![], given),
        Some(e) => (vec![e.clone()], given),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            if given.is_empty() {
                cfg.cmd.clone().unwrap_or_default()
            } else {
                given
            },
        ),
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        bail!("no command specified");
    }
    if let Some(n) = &o.name {
        check_name(n)?;
    }
    if o.tty && o.detach {
        bail!("-t with -d is not supported yet");
    }
    let id = container::new_id()?;
    Ok(Record {
        name: o
            .name
            .clone()
            .unwrap_or_else(|| format!("lw_{}", &id[..12])),
        image: o.image.clone(),
        manifest: manifest.clone(),
        entrypoint,
        cmd,
        env: merge_env(&cfg.env.clone().unwrap_or_default(), &o.env),
        cwd: o
            .workdir
            .clone()
            .or(cfg.working_dir.clone())
            .unwrap_or_default(),
        user: o.user.clone().or(cfg.user.clone()).unwrap_or_default(),
        network: o.network.clone(),
        binds: o.binds.clone(),
        ports: o.ports.clone(),
        auto_remove: o.auto_remove,
        detached: o.detach,
        interactive: o.interactive,
        tty: o.tty,
        created: container::now(),
        started: None,
        finished: None,
        state: State::Created,
        exit_code: None,
        owner: None,
        error: None,
        id,
    })
}

/// The ports the image's config exposes (`EXPOSE`), as `(port, proto)`.
pub fn exposed_ports(store: &Store, manifest: &Descriptor) -> Result<Vec<(u16, String)>> {
    let img = store.resolve(manifest, None)?;
    let mut out = Vec::new();
    for k in img
        .config
        .config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
    {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        if let Ok(p) = port.parse::<u16>() {
            out.push((p, proto.to_string()));
        }
    }
    Ok(out)
}

/// A port the kernel calls free on `ip` now (it may be taken again before slirp4netns binds it; docker has the
/// same race for `-p CONTAINER`).
pub fn free_port(ip: IpAddr, proto: &str) -> Result<u16> {
    let port = if proto == "udp" {
        std::net::UdpSocket::bind((ip, 0))?.local_addr()?.port()
    } else {
        TcpListener::bind((ip, 0))?.local_addr()?.port()
    };
    Ok(port)
}

/// docker's `-p` forms: `[IP:]HOST:CONTAINER[/proto]`, and `CONTAINER[/proto]` or host port 0 for a free host
/// port (on loopback unless an address is given).
pub fn parse_publish(spec: &str) -> Result<PortForward> {
    let (rest, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let mut p = if rest.contains(':') {
        PortForward::parse(spec)?
    } else {
        PortForward {
            proto: proto.to_string(),
            host_ip: Ipv4Addr::LOCALHOST.to_string(),
            host_port: 0,
            container_port: rest.parse().map_err(|_| {
                anyhow!("-p {spec:?}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]")
            })?,
        }
    };
    if !matches!(p.proto.as_str(), "tcp" | "udp") {
        bail!("-p {spec:?}: the protocol must be tcp or udp");
    }
    if p.host_port == 0 {
        let ip: IpAddr = p.host_ip.parse()?;
        p.host_port = free_port(ip, &p.proto)?;
    }
    Ok(p)
}

/// docker's `-P`: every exposed port of the image on a free loopback port, unless `-p` already publishes it.
pub fn publish_all(exposed: &[(u16, String)], given: &[PortForward]) -> Result<Vec<PortForward>> {
    let mut out = Vec::new();
    for (port, proto) in exposed {
        if given
            .iter()
            .any(|g| g.container_port == *port && &g.proto == proto)
        {
            continue;
        }
        out.push(parse_publish(&format!("{port}/{proto}"))?);
    }
    Ok(out)
}

/// How a detached start ended before `run -d` returns.
pub enum Started {
    /// Running (or already exited without an error, or removed with `--rm`).
    Ok,
    /// It could not start: the exit code (125, 126, 127) and why.
    Failed(i32, String),
}

/// Start container `id` (created) under its own monitor process (`exe --root ROOT container-monitor ID`, in a
/// session of its own, writing the output to `<id>/container.log`), and wait until it runs or has failed.
pub fn start_detached(exe: &Path, root: &Path, cs: &Containers, id: &str) -> Result<Started> {
    let log = cs.path(id).join("container.log");
    let out = fs::File::create(&log)?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(std::path::absolute(root)?)
        .args(["container-monitor", id])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the container monitor")?;
    // Reap the monitor when it ends, so it never lingers as a zombie of a long-running parent (serve).
    std::thread::spawn(move || child.wait());
    let start = Instant::now();
    loop {
        let cur = match cs.load(id) {
            Ok(c) => c,
            // `--rm` and already gone.
            Err(_) => return Ok(Started::Ok),
        };
        match (cur.state, &cur.error) {
            (State::Running, _) => return Ok(Started::Ok),
            (State::Exited, Some(e)) => {
                return Ok(Started::Failed(cur.exit_code.unwrap_or(125), e.clone()))
            }
            (State::Exited, None) => return Ok(Started::Ok),
            (State::Created, _) if start.elapsed() > Duration::from_secs(60) => {
                bail!("container {id} did not start within 60 s")
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// docker's `stop`: SIGTERM, then SIGKILL after `grace`.
pub fn stop(cs: &Containers, r: &Record, grace: Duration) -> Result<()> {
    if r.state != State::Running {
        return Ok(());
    }
    cs.runtime.kill(&r.id, "TERM");
    let after = cs.wait_exit(&r.id, grace);
    if matches!(&after, Ok(x) if x.state == State::Running) {
        // Again now and then: a kill can race with a process that is just starting.
        for _ in 0..20 {
            cs.runtime.kill(&r.id, "KILL");
            let again = cs.wait_exit(&r.id, Duration::from_millis(500));
            if !matches!(&again, Ok(x) if x.state == State::Running) {
                return Ok(());
            }
        }
        bail!("container {} did not stop", r.name);
    }
    Ok(())
}

/// docker's `rm [-f]`: a running container only with `force` (killed first); then nothing of it stays.
pub fn remove(cs: &Containers, r: &Record, force: bool) -> Result<()> {
    if r.state == State::Running {
        if !force {
            bail!(
                "cannot remove container {}: the container is running: stop the container before removing \
                 it, or force remove it with -f",
                r.name
            );
        }
        stop(cs, r, Duration::ZERO)?;
    }
    if cs.path(&r.id).exists() {
        cs.remove_dir(&r.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_over_the_image() {
        let base = vec!["PATH=/bin".to_string(), "A=1".into()];
        assert_eq!(
            merge_env(&base, &["A=2".into(), "B=3".into()]),
            ["PATH=/bin", "A=2", "B=3"]
        );
    }

    #[test]
    fn names() {
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
    }

    #[test]
    fn publish_forms() {
        let p = parse_publish("127.0.0.1:8081:80").unwrap();
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.container_port),
            ("127.0.0.1", 8081, 80)
        );
        // A container port alone: a free loopback port, as `docker run -p 80` picks one.
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_ip.as_str(), p.container_port), ("127.0.0.1", 80));
        assert_ne!(p.host_port, 0);
        let p = parse_publish("127.0.0.1:0:53/udp").unwrap();
        assert_eq!((p.proto.as_str(), p.container_port), ("udp", 53));
        assert_ne!(p.host_port, 0);
        assert!(parse_publish("80/sctp").is_err());
        assert!(parse_publish("x").is_err());
        let all = publish_all(
            &[(80, "tcp".into()), (53, "udp".into())],
            std::slice::from_ref(&parse_publish("8082:80").unwrap()),
        )
        .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].container_port, all[0].proto.as_str()), (53, "udp"));
    }
}
