//! serve's container API at `/api/containers`: the tab runs an image from the store as `layerwright run -d` does
//! (the same record, monitor process and runtime code, through [`crate::run::lifecycle`]), follows its output,
//! reads its exit code, stops and removes it. Ports are published on loopback only. Every call needs the token;
//! the Host and Origin checks are serve's own, made before routing.
//!
//! - `POST /api/containers` `{image, cmd?, entrypoint?, env?, workdir?, user?, network?, name?, publish?,
//!   publishAll?}` → 201 and the container (below), running or already failed (`error`, `exitCode`).
//! - `GET /api/containers` → every container; `GET /api/containers/ID` → one: `{id, name, image, state,
//!   exitCode, error, ports: [{hostIp, hostPort, containerPort, proto, url}]}`.
//! - `GET /api/containers/ID/logs[?follow=1]` → stdout and stderr as text, until the container ends when following.
//! - `POST /api/containers/ID/stop[?t=SECONDS]`, `DELETE /api/containers/ID[?force=1]`.

use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Method, Request};
use super::reply::{header, query, read_small, Reply};
use super::{Ctx, MAX_JSON};
use crate::names;
use crate::run::container::{self, Containers, Record, State};
use crate::run::lifecycle::{self, RunOptions, Started};
use crate::run::network::PortForward;

/// The tab's run request: docker's `run -d` flags, without host bind mounts (a page never names host paths).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateIn {
    image: String,
    #[serde(default)]
    cmd: Vec<String>,
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// docker's `-p` forms; a container port alone gets a free loopback port.
    #[serde(default)]
    publish: Vec<String>,
    /// docker's `-P`: every EXPOSE port on a free loopback port.
    #[serde(default)]
    publish_all: bool,
}

fn err(status: u16, msg: impl std::fmt::Display) -> Reply {
    Reply::json(status, &json!({"error": msg.to_string()}))
}

/// A container as the API shows it.
pub fn to_json(r: &Record) -> Value {
    let ports: Vec<Value> = r
        .ports
        .iter()
        .map(|p| {
            let host = match p.host_ip.parse::<IpAddr>() {
                Ok(IpAddr::V6(a)) => format!("[{a}]"),
                _ => p.host_ip.clone(),
            };
            json!({"hostIp": p.host_ip, "hostPort": p.host_port, "containerPort": p.container_port,
                "proto": p.proto,
                "url": (p.proto == "tcp").then(|| format!("http://{host}:{}/", p.host_port))})
        })
        .collect();
    json!({"id": r.id, "name": r.name, "image": r.image, "command": r.args(),
        "state": r.state, "exitCode": r.exit_code, "error": r.error, "ports": ports})
}

/// The on-disk store containers run from (a server over a memory store has none).
fn disk_store<'a>(ctx: &Ctx<'a>) -> anyhow::Result<&'a crate::store::Store> {
    ctx.st
        .store
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("containers need the on-disk store"))
}

/// The store's image for a name the tab pushed to serve's registry (`NAME:TAG` lands as `localhost/NAME:TAG`), or
/// any name or ID the CLI's `run` takes.
fn resolve_image(ctx: &Ctx, image: &str) -> anyhow::Result<lw_oci::Descriptor> {
    let store = disk_store(ctx)?;
    if !image.contains('@') {
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match image[slash..].rfind(':') {
            Some(c) => (&image[..slash + c], &image[slash + c + 1..]),
            None => (image, "latest"),
        };
        for r in ctx.st.ns.read_repos(repo) {
            if let Ok(f) = names::resolve(store, &format!("{r}:{tag}")) {
                return Ok(f.descriptor);
            }
        }
    }
    Ok(names::resolve(store, image)?.descriptor)
}

/// Ports to publish: the request's, each on a loopback address.
fn ports(
    ctx: &Ctx,
    manifest: &lw_oci::Descriptor,
    v: &CreateIn,
) -> anyhow::Result<Vec<PortForward>> {
    let mut out = Vec::new();
    for p in &v.publish {
        let f = lifecycle::parse_publish(p)?;
        if !f.host_ip.parse::<IpAddr>()?.is_loopback() {
            anyhow::bail!("publish {p:?}: serve publishes ports on loopback addresses only");
        }
        out.push(f);
    }
    if v.publish_all {
        let exposed = lifecycle::exposed_ports(disk_store(ctx)?, manifest)?;
        let more = lifecycle::publish_all(&exposed, &out)?;
        out.extend(more);
    }
    Ok(out)
}

fn create(ctx: &Ctx, req: &mut Request, cs: &Containers) -> Reply {
    let ct = header(req, "content-type").unwrap_or("");
    if !ct.starts_with("application/json") {
        return err(415, "send the run request as application/json");
    }
    let body = match read_small(req.as_reader(), MAX_JSON) {
        Ok(b) => b,
        Err(e) => return err(413, e),
    };
    let v: CreateIn = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return err(400, format!("bad run request: {e}")),
    };
    let manifest = match resolve_image(ctx, &v.image) {
        Ok(m) => m,
        Err(e) => return err(404, format!("{e:#}")),
    };
    let ports = match ports(ctx, &manifest, &v) {
        Ok(p) => p,
        Err(e) => return err(400, format!("{e:#}")),
    };
    let o = RunOptions {
        image: v.image.clone(),
        command: v.cmd,
        entrypoint: v.entrypoint,
        env: v.env,
        workdir: v.workdir.filter(|w| !w.is_empty()),
        user: v.user.filter(|u| !u.is_empty()),
        network: v.network.unwrap_or_else(|| "default".into()),
        binds: Vec::new(),
        ports,
        name: v.name.filter(|n| !n.is_empty()),
        detach: true,
        ..RunOptions::default()
    };
    let created = disk_store(ctx)
        .and_then(|st| lifecycle::make_record(st, &manifest, &o))
        .and_then(|r| cs.create(r));
    let r = match created {
        Ok(r) => r,
        Err(e) => return err(400, format!("{e:#}")),
    };
    let exe = match ctx.st.cfg.exe.clone().map(Ok).unwrap_or_else(monitor_exe) {
        Ok(p) => p,
        Err(e) => return err(500, format!("cannot find the layerwright binary: {e}")),
    };
    match lifecycle::start_detached(&exe, &ctx.st.cfg.root, cs, &r.id) {
        Ok(Started::Ok | Started::Failed(..)) => {}
        Err(e) => return err(500, format!("{e:#}")),
    }
    match cs.load(&r.id) {
        Ok(now) => Reply::json(201, &to_json(&now)),
        Err(e) => err(500, format!("{e:#}")),
    }
}

/// This process's executable, for the monitor. When the binary was replaced while serve runs (a rebuild), the
/// kernel names the old one `PATH (deleted)`: the new binary at PATH runs the monitor then.
fn monitor_exe() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if !exe.exists() {
        if let Some(p) = exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
            return Ok(PathBuf::from(p));
        }
    }
    Ok(exe)
}

/// The log file read as it grows; when following, until the container is no longer running.
struct LogFollow {
    file: File,
    cs: Containers,
    id: String,
    follow: bool,
    done: bool,
}

impl Read for LogFollow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || !self.follow || self.done {
                return Ok(n);
            }
            // A killed monitor leaves its container marked running: its owner is gone, so it has ended.
            let running = self.cs.load(&self.id).is_ok_and(|r| {
                r.state != State::Exited && r.owner.is_none_or(container::pid_alive)
            });
            if !running {
                // One more read takes what the last moments wrote.
                self.done = true;
                continue;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn logs(ctx: &Ctx, cs: Containers, r: &Record) -> Reply {
    let path: PathBuf = cs.path(&r.id).join("container.log");
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => return err(404, format!("container {} has no log: {e}", r.name)),
    };
    let follow = query(&ctx.query, "follow").is_some_and(|f| f == "1" || f == "true");
    let reader = LogFollow {
        file,
        cs,
        id: r.id.clone(),
        follow,
        done: false,
    };
    Reply::new(200)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-store")
        .stream(Box::new(reader), None)
}

pub fn handle(ctx: &Ctx, req: &mut Request) -> Reply {
    if !ctx.authed {
        return err(
            401,
            "the container API needs the token (?token= or Authorization: Bearer)",
        );
    }
    let Some(store) = &ctx.st.store else {
        return err(
            503,
            "containers need the on-disk store; this server keeps its registry in memory",
        );
    };
    let cs = match Containers::open(store).and_then(|cs| cs.reap_stale().map(|_| cs)) {
        Ok(cs) => cs,
        Err(e) => return err(500, format!("{e:#}")),
    };
    let rest = ctx.path["/api/containers".len()..].trim_start_matches('/');
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = *req.method();
    let one = |key: &str| cs.find(key).map_err(|e| err(404, format!("{e:#}")));
    match (method, parts.as_slice()) {
        (Method::Get, []) => match cs.list() {
            Ok(l) => Reply::json(200, &Value::Array(l.iter().map(to_json).collect())),
            Err(e) => err(500, format!("{e:#}")),
        },
        (Method::Post, []) => create(ctx, req, &cs),
        (Method::Get, [id]) => match one(id) {
            Ok(r) => Reply::json(200, &to_json(&r)),
            Err(e) => e,
        },
        (Method::Get, [id, "logs"]) => match one(id) {
            Ok(r) => logs(ctx, cs, &r),
            Err(e) => e,
        },
        (Method::Post, [id, "stop"]) => {
            let r = match one(id) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let grace = query(&ctx.query, "t")
                .and_then(|t| t.parse().ok())
                .unwrap_or(10);
            if let Err(e) = lifecycle::stop(&cs, &r, Duration::from_secs(grace)) {
                return err(500, format!("{e:#}"));
            }
            match cs.load(&r.id) {
                Ok(now) => Reply::json(200, &to_json(&now)),
                // Removed on exit (`--rm`).
                Err(_) => Reply::new(204),
            }
        }
        (Method::Delete, [id]) => {
            let r = match one(id) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let force = query(&ctx.query, "force").is_some_and(|f| f == "1" || f == "true");
            if r.state == State::Running && !force {
                return err(
                    409,
                    format!(
                        "container {} is running: stop it first, or remove it with ?force=1",
                        r.name
                    ),
                );
            }
            match lifecycle::remove(&cs, &r, force) {
                Ok(()) => Reply::new(204),
                Err(e) => err(500, format!("{e:#}")),
            }
        }
        (_, [] | [_] | [_, "logs" | "stop"]) => err(405, "method not allowed"),
        _ => err(404, "no such container API path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_carry_a_url_for_tcp() {
        let r = Record {
            id: "a".repeat(64),
            name: "n".into(),
            image: "i".into(),
            manifest: lw_oci::Descriptor::new(
                lw_oci::media::OCI_MANIFEST,
                lw_oci::Digest::sha256_of(b""),
                0,
            ),
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec![],
            cwd: String::new(),
            user: String::new(),
            network: "default".into(),
            binds: vec![],
            ports: [
                "127.0.0.1:8081:80",
                "[::1]:8082:80",
                "127.0.0.1:5353:53/udp",
            ]
            .iter()
            .map(|p| PortForward::parse(p).unwrap())
            .collect(),
            auto_remove: false,
            detached: true,
            interactive: false,
            tty: false,
            created: 0,
            started: None,
            finished: None,
            state: State::Running,
            exit_code: None,
            owner: None,
            error: None,
        };
        let v = to_json(&r);
        let urls: Vec<&Value> = v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["url"])
            .collect();
        assert_eq!(
            urls,
            [
                &json!("http://127.0.0.1:8081/"),
                &json!("http://[::1]:8082/"),
                &Value::Null
            ]
        );
        assert_eq!(v["state"], "running");
    }
}
