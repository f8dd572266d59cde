//! SSH agent forwarding for `RUN --mount=type=ssh`: `build --ssh ID=SOCKET|KEY` (docker's flag), and the step's
//! own socket relayed to that agent, as BuildKit relays its session's agent. The step's socket gets the mount's
//! mode and owner; the user's agent socket itself is never bound into a container or changed.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// Parse docker's `--ssh` values: `default` (the agent at `$SSH_AUTH_SOCK`), `ID` (the same, under that id) or
/// `ID=PATH`, PATH being an agent socket or a private key file. Returns id → path.
pub fn parse_ssh_flags(
    specs: &[String],
    auth_sock: Option<&str>,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, path) = match spec.split_once('=') {
            Some((id, p)) => (id, p.to_string()),
            None => (
                spec.as_str(),
                auth_sock.filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
                    anyhow!("--ssh {spec}: invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set")
                })?,
            ),
        };
        if id.is_empty() || path.is_empty() {
            bail!("--ssh {spec:?}: expected default, ID or ID=SOCKET|KEY");
        }
        if path.contains(',') {
            bail!("--ssh {spec:?}: one socket or key per id here (docker takes several keys)");
        }
        out.insert(id.to_string(), PathBuf::from(path));
    }
    Ok(out)
}

/// The agents a build forwards: a socket given as is, or an `ssh-agent` of our own holding a key file given with
/// `--ssh ID=KEY` (stopped with this value).
pub struct SshAgents {
    pub sockets: BTreeMap<String, PathBuf>,
    children: Vec<Child>,
    /// A private directory (0700) for our agents' sockets, removed on drop.
    dir: Option<PathBuf>,
}

impl SshAgents {
    /// Check every path; start an agent for each key file (`ssh-agent`, `ssh-add` from openssh-client).
    pub fn start(paths: BTreeMap<String, PathBuf>) -> Result<SshAgents> {
        let mut agents = SshAgents {
            sockets: BTreeMap::new(),
            children: Vec::new(),
            dir: None,
        };
        for (id, path) in paths {
            let meta = std::fs::metadata(&path)
                .with_context(|| format!("--ssh {id}={}", path.display()))?;
            if meta.file_type().is_socket() {
                agents.sockets.insert(id, path);
                continue;
            }
            if !meta.is_file() {
                bail!(
                    "--ssh {id}={}: neither an agent socket nor a key file",
                    path.display()
                );
            }
            if agents.dir.is_none() {
                // Short and private: a socket path must fit in 108 bytes, and only we may use the agent.
                let d = std::env::temp_dir().join(format!(
                    "lw-ssh-{}-{}",
                    std::process::id(),
                    super::unique_suffix()
                ));
                std::fs::create_dir(&d).with_context(|| format!("making {}", d.display()))?;
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
                agents.dir = Some(d);
            }
            let dir = agents.dir.clone().unwrap_or_default();
            let sock = dir.join(format!("agent-{}", agents.children.len()));
            let child = Command::new("ssh-agent")
                .arg("-D")
                .arg("-a")
                .arg(&sock)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| {
                    format!(
                        "--ssh {id}={}: starting ssh-agent (openssh-client)",
                        path.display()
                    )
                })?;
            agents.children.push(child);
            // The socket file appears at bind(), before the agent listens: wait until it answers.
            let mut waited = 0;
            while UnixStream::connect(&sock).is_err() && waited < 1000 {
                std::thread::sleep(Duration::from_millis(10));
                waited += 1;
            }
            let out = Command::new("ssh-add")
                .arg(&path)
                .env("SSH_AUTH_SOCK", &sock)
                .stdin(Stdio::null())
                .output()
                .context("running ssh-add (openssh-client)")?;
            if !out.status.success() {
                bail!(
                    "--ssh {id}={}: ssh-add refused the key: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            agents.sockets.insert(id, sock);
        }
        Ok(agents)
    }
}

impl Drop for SshAgents {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A step's agent socket at `path`, relaying each connection to the agent; stops accepting when dropped.
pub struct SshRelay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SshRelay {
    pub fn start(path: &Path, agent: &Path, mode: u32, uid: u32, gid: u32) -> Result<SshRelay> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("making the agent socket {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let agent = agent.to_path_buf();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let agent = agent.clone();
                        std::thread::spawn(move || {
                            let _ = relay(conn, &agent);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Ok(SshRelay {
            stop,
            thread: Some(thread),
        })
    }
}

/// Copy both ways between a step's client and the agent until either side closes.
fn relay(client: UnixStream, agent: &Path) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let upstream = UnixStream::connect(agent)?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
    Ok(())
}

impl Drop for SshRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn flags() {
        let m = parse_ssh_flags(&["default".into(), "k=/a/key".into()], Some("/s.sock")).unwrap();
        assert_eq!(m["default"], PathBuf::from("/s.sock"));
        assert_eq!(m["k"], PathBuf::from("/a/key"));
        let e = parse_ssh_flags(&["default".into()], None).unwrap_err();
        assert!(e.to_string().contains("SSH_AUTH_SOCK"), "{e}");
        assert!(parse_ssh_flags(&["=x".into()], None).is_err());
    }

    /// The relay's socket has the mount's mode and passes bytes both ways to the agent's socket.
    #[test]
    fn relay_passes_bytes_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut c, _) = agent.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        });
        let sock = dir.path().join("step.sock");
        let relay = SshRelay::start(&sock, &agent_path, 0o640, 0, 0).unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        assert_eq!(back, "HELLO");
        echo.join().unwrap();
        drop(relay);
    }
}
