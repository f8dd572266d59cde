//! RUN networking: the `default` network (a private namespace with outbound access through slirp4netns), `none`
//! and `host`, and the /etc/hosts, /etc/resolv.conf and /etc/hostname every step gets.

use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// The sandbox's host name (BuildKit's).
pub const HOSTNAME: &str = "buildkitsandbox";
/// slirp4netns's fixed addresses: the host's loopback as seen from the namespace, and its DNS forwarder.
pub const SLIRP_HOST: &str = "10.0.2.2";
pub const SLIRP_DNS: &str = "10.0.2.3";

/// The network a RUN step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A private namespace with outbound access (slirp4netns).
    Default,
    /// A private namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "" | "default" | "sandbox" => Ok(Mode::Default),
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            _ => bail!("unsupported network mode {s:?} (use default, none or host)"),
        }
    }
}

/// Parse docker's `--add-host NAME:IP` (also `NAME=IP`; `host-gateway` for the host as the step sees it).
pub fn parse_add_host(spec: &str) -> Result<(String, String)> {
    let (name, ip) = spec
        .split_once('=')
        .or_else(|| spec.split_once(':'))
        .ok_or_else(|| anyhow!("--add-host {spec:?}: expected NAME:IP"))?;
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        bail!("--add-host {spec:?}: invalid host name {name:?}");
    }
    // docker allows IPv6 in brackets.
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        bail!("--add-host {spec:?}: invalid IP address {ip:?}");
    }
    Ok((name.to_string(), ip.to_string()))
}

/// The step's /etc/hosts: BuildKit's loopback lines with the sandbox name, the host's own entries for `host`
/// (as `docker run --network host` shows them), then the `--add-host` entries.
pub fn hosts_file(mode: Mode, host_hosts: Option<&str>, extra: &[(String, String)]) -> String {
    let mut s =
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if mode == Mode::Host {
        if let Some(h) = host_hosts {
            s.push_str(h);
            if !h.ends_with('\n') && !h.is_empty() {
                s.push('\n');
            }
        }
    }
    for (name, ip) in extra {
        let ip = match (ip.as_str(), mode) {
            ("host-gateway", Mode::Host) => "127.0.0.1",
            ("host-gateway", _) => SLIRP_HOST,
            (ip, _) => ip,
        };
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

fn is_loopback(addr: &str) -> bool {
    // A zone (`fe80::1%eth0`) is not part of the address.
    let a = addr.split('%').next().unwrap_or(addr);
    a.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The step's /etc/resolv.conf from the host's, as docker does: unchanged for `host`; otherwise loopback name
/// servers cannot be reached from the namespace, so for `default` they become slirp4netns's DNS forwarder (which
/// asks the host's resolver), and for `none` they are dropped. The namespace has no IPv6, so IPv6 servers go too.
pub fn resolv_conf(mode: Mode, host: &str) -> String {
    if mode == Mode::Host {
        return host.to_string();
    }
    let mut out = String::new();
    let mut servers = 0;
    let mut forwarder = false;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let addr = words.next().unwrap_or("");
        if is_loopback(addr) {
            if mode == Mode::Default && !forwarder {
                out.push_str(&format!("nameserver {SLIRP_DNS}\n"));
                forwarder = true;
                servers += 1;
            }
        } else if addr.parse::<std::net::Ipv4Addr>().is_ok() {
            out.push_str(line);
            out.push('\n');
            servers += 1;
        }
    }
    if servers == 0 && mode == Mode::Default {
        out.push_str(&format!("nameserver {SLIRP_DNS}\n"));
    }
    out
}

/// Write the three files into `dir` and return their OCI bind mounts (read-only, so they never reach the layer
/// and the image's own files under them stay as they were). `hostname` replaces `buildkitsandbox` when not empty.
pub fn etc_mounts(
    dir: &Path,
    mode: Mode,
    extra: &[(String, String)],
    hostname: &str,
) -> Result<Vec<serde_json::Value>> {
    let host_hosts = fs::read_to_string("/etc/hosts").ok();
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let name = if hostname.is_empty() {
        HOSTNAME
    } else {
        hostname
    };
    let files = [
        (
            "/etc/hosts",
            hosts_file(mode, host_hosts.as_deref(), extra).replacen(HOSTNAME, name, 1),
        ),
        ("/etc/resolv.conf", resolv_conf(mode, &host_resolv)),
        ("/etc/hostname", format!("{name}\n")),
    ];
    let mut mounts = Vec::new();
    for (dest, body) in files {
        let src = dir.join(dest.trim_start_matches("/etc/"));
        fs::write(&src, body).with_context(|| format!("writing {}", src.display()))?;
        mounts.push(
            serde_json::json!({"destination": dest, "type": "bind", "source": src,
            "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
        );
    }
    Ok(mounts)
}

/// A network namespace kept alive by a parked thread; it goes away with the thread (and whatever else joined
/// it), so a killed build leaves no mount behind.
pub struct NetNs {
    path: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NetNs {
    pub fn new() -> Result<NetNs> {
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<libc::pid_t>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Only this thread moves: a thread may unshare its network namespace alone.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                let _ = ready_tx.send(Err(std::io::Error::last_os_error()));
                return;
            }
            let _ = ready_tx.send(Ok(unsafe { libc::gettid() }));
            let _ = stop_rx.recv();
        });
        let tid = ready_rx
            .recv()
            .map_err(|_| anyhow!("the network namespace thread ended early"))?
            .context("creating a network namespace")?;
        Ok(NetNs {
            path: PathBuf::from(format!("/proc/{}/task/{tid}/ns/net", std::process::id())),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const MISSING: &str = "RUN's default network needs slirp4netns (Debian package slirp4netns) to give the step \
                       outbound access; install it, or build with --network host (the host's network) or \
                       --network none";

/// slirp4netns serving a namespace; killed when dropped.
pub struct Slirp {
    child: Child,
}

impl Slirp {
    /// Start slirp4netns on `ns` and wait until it has configured the namespace (`tap0`, 10.0.2.100/24, the route,
    /// loopback). Its messages go to `log`, read back only when it fails.
    pub fn start(ns: &Path, log: &Path) -> Result<Slirp> {
        Self::start_with_api(ns, log, None)
    }

    /// As [`Slirp::start`], with slirp4netns's API socket at `api` (for port forwarding).
    pub fn start_with_api(ns: &Path, log: &Path, api: Option<&Path>) -> Result<Slirp> {
        let bin = super::runtime::find_in_path("slirp4netns").ok_or_else(|| anyhow!(MISSING))?;
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error()).context("pipe");
        }
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = write.as_raw_fd();
        let logf = fs::File::create(log)?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--ready-fd=3",
            "--netns-type=path",
        ])
        .args(api.map(|a| format!("--api-socket={}", a.display())))
        .arg(ns)
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf);
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                // fd 3 without close-on-exec; and slirp4netns dies with us, however we end.
                if libc::dup2(wfd, 3) < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        drop(write);
        let mut slirp = Slirp { child };
        let mut byte = [0u8; 1];
        let mut f = fs::File::from(read);
        // It writes one byte when ready; the pipe closes without one when it fails.
        let ready = matches!(f.read(&mut byte), Ok(1));
        if !ready {
            let _ = slirp.child.wait();
            let msg = fs::read_to_string(log).unwrap_or_default();
            bail!(
                "slirp4netns could not set up RUN's default network: {}; build with --network host to use \
                 the host's network instead",
                msg.trim()
            );
        }
        Ok(slirp)
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `-p [IP:]HOST:CONTAINER[/tcp|udp]`: a host address and port forwarded to a port in the namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortForward {
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

impl PortForward {
    /// docker's `-p` syntax; the host address defaults to loopback (docker's is every address).
    pub fn parse(spec: &str) -> Result<PortForward> {
        let bad = || anyhow!("-p {spec:?}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]");
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p @ ("tcp" | "udp"))) => (r, p),
            Some(_) => return Err(bad()),
            None => (spec, "tcp"),
        };
        let (ip, host, ctr) = match rest.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
            [c, h] => ("127.0.0.1".to_string(), *h, *c),
            [c, h, ip] => (ip.trim_matches(['[', ']']).to_string(), *h, *c),
            _ => return Err(bad()),
        };
        ip.parse::<IpAddr>().map_err(|_| bad())?;
        Ok(PortForward {
            proto: proto.into(),
            host_ip: ip,
            host_port: host.parse().map_err(|_| bad())?,
            container_port: ctr.parse().map_err(|_| bad())?,
        })
    }
}

/// Ask slirp4netns (over its API socket) to forward `p`.
fn add_hostfwd(api: &Path, p: &PortForward) -> Result<()> {
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(api)
        .with_context(|| format!("connecting to slirp4netns's API socket {}", api.display()))?;
    let req = serde_json::json!({"execute": "add_hostfwd", "arguments": {"proto": p.proto,
        "host_addr": p.host_ip, "host_port": p.host_port, "guest_port": p.container_port}});
    s.write_all(req.to_string().as_bytes())?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    if reply.contains("\"error\"") || !reply.contains("return") {
        bail!(
            "publishing {}:{}->{}/{}: {}",
            p.host_ip,
            p.host_port,
            p.container_port,
            p.proto,
            reply.trim()
        );
    }
    Ok(())
}

/// What a step's network needs while it runs: nothing for `host` and `none`, a namespace and slirp4netns for
/// `default`. Drop order: slirp4netns first, then the namespace.
pub struct StepNetwork {
    pub mode: Mode,
    slirp: Option<Slirp>,
    ns: Option<NetNs>,
}

impl StepNetwork {
    pub fn setup(mode: Mode, work: &Path) -> Result<StepNetwork> {
        Self::setup_with_ports(mode, work, &[])
    }

    /// As [`StepNetwork::setup`], forwarding host ports (`default` only) to the namespace's address.
    pub fn setup_with_ports(mode: Mode, work: &Path, ports: &[PortForward]) -> Result<StepNetwork> {
        if !ports.is_empty() && mode != Mode::Default {
            bail!("publishing ports (-p) needs the default network");
        }
        let (ns, slirp) = if mode == Mode::Default {
            let ns = NetNs::new()?;
            // A socket's path must fit in 108 bytes; stores can live deeper than that.
            let mut api = work.join("slirp4netns.sock");
            if api.as_os_str().len() >= 100 {
                api = std::env::temp_dir().join(format!(
                    "lw-slirp-{}-{}.sock",
                    std::process::id(),
                    super::unique_suffix()
                ));
            }
            let _remove = super::RemoveOnDrop(Some(api.clone()));
            let slirp = Slirp::start_with_api(
                ns.path(),
                &work.join("slirp4netns.log"),
                (!ports.is_empty()).then_some(api.as_path()),
            )?;
            for p in ports {
                add_hostfwd(&api, p)?;
            }
            (Some(ns), Some(slirp))
        } else {
            (None, None)
        };
        Ok(StepNetwork { mode, slirp, ns })
    }

    /// The namespace to join, when the runtime should not make a fresh one (`default`).
    pub fn ns_path(&self) -> Option<&Path> {
        self.ns.as_ref().map(|n| n.path())
    }
}

impl Drop for StepNetwork {
    fn drop(&mut self) {
        self.slirp.take();
        self.ns.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_flags() {
        assert_eq!(
            parse_add_host("mirror:203.0.113.5").unwrap(),
            ("mirror".into(), "203.0.113.5".into())
        );
        assert_eq!(
            parse_add_host("v6=[::1]").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert_eq!(
            parse_add_host("v6:::1").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert_eq!(parse_add_host("gw:host-gateway").unwrap().1, "host-gateway");
        assert!(parse_add_host("nohost").is_err());
        assert!(parse_add_host("x:not-an-ip").is_err());
        assert!(parse_add_host(":1.2.3.4").is_err());
    }

    #[test]
    fn hosts() {
        let extra = vec![
            ("mirror".to_string(), "192.0.2.9".to_string()),
            ("gw".to_string(), "host-gateway".to_string()),
        ];
        let d = hosts_file(Mode::Default, Some("10.1.1.1 secret\n"), &extra);
        assert_eq!(
            d,
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             192.0.2.9\tmirror\n10.0.2.2\tgw\n"
        );
        let h = hosts_file(Mode::Host, Some("10.1.1.1 box"), &extra);
        assert!(
            h.contains("10.1.1.1 box\n192.0.2.9\tmirror\n127.0.0.1\tgw\n"),
            "{h}"
        );
    }

    #[test]
    fn resolv() {
        let host =
            "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\n\
                    nameserver 2001:db8::53\noptions edns0\n";
        assert_eq!(resolv_conf(Mode::Host, host), host);
        assert_eq!(
            resolv_conf(Mode::Default, host),
            "search example.org\nnameserver 10.0.2.3\nnameserver 192.0.2.53\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf(Mode::None, host),
            "search example.org\nnameserver 192.0.2.53\noptions edns0\n"
        );
        assert_eq!(resolv_conf(Mode::Default, ""), "nameserver 10.0.2.3\n");
        assert_eq!(
            resolv_conf(Mode::Default, "nameserver 192.0.2.53\n"),
            "nameserver 192.0.2.53\n"
        );
    }

    #[test]
    fn port_flags() {
        let p = PortForward::parse("8080:80").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.proto.as_str()
            ),
            ("127.0.0.1", 8080, 80, "tcp")
        );
        let p = PortForward::parse("0.0.0.0:53:5353/udp").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.proto.as_str()
            ),
            ("0.0.0.0", 53, 5353, "udp")
        );
        assert!(PortForward::parse("80").is_err());
        assert!(PortForward::parse("x:80:80").is_err());
        assert!(PortForward::parse("80:80/sctp").is_err());
        assert!(PortForward::parse("99999:80").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::parse("").unwrap(), Mode::Default);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert!(Mode::parse("bridge").is_err());
    }
}
