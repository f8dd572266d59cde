//! What the corpus's cases talk to while they build, as record.py provides it to BuildKit: a case's `http/` files
//! over plain HTTP, its `https/` files over TLS (the corpus's test CA, `tls/`) with `https-auth` rules, and an
//! ssh-agent for its `ssh` ids. Loopback addresses only.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::common::run_ok;
use lw_test_kit::ssh::Agent;

/// Where a case's `http/` directory is served while it builds (ADD <url>); record.py serves it at the same address.
pub const HTTP_ADDR: &str = "127.0.0.1:48765";
/// Where a case's `https/` directory is served over TLS; record.py uses the same address and certificate.
pub const HTTPS_ADDR: &str = "127.0.0.1:48767";

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildkit/tls")
}

/// The test CA's certificate (its key was destroyed once the server certificate was signed).
pub fn ca_file() -> PathBuf {
    tls_dir().join("ca.pem")
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_dir().join("server.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_file(tls_dir().join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// A loopback server for a case's files (GET and HEAD, one request per connection), stopped on drop. `auth`:
/// (path prefix, Authorization value) rules; a request under a prefix without that exact value gets 401.
pub struct Served {
    /// One server at a time per address (the tests of this binary run in parallel).
    _address: MutexGuard<'static, ()>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Answer one request on `conn`.
fn answer(conn: &mut dyn ReadWrite, dir: &Path, auth: &[(String, String)]) {
    let mut r = std::io::BufReader::new(ReadHalf(conn));
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    drop(r);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    // A query (git's `info/refs?service=...`) is ignored, so git falls back to its dumb protocol.
    let path = path.split('?').next().unwrap_or(path);
    let name = path.trim_start_matches('/');
    let denied = auth
        .iter()
        .any(|(p, v)| name.starts_with(p.as_str()) && authorization.as_deref() != Some(v.as_str()));
    if denied {
        let _ = conn.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"lw\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let body = (!name.contains(".."))
        .then(|| std::fs::read(dir.join(name)).ok())
        .flatten();
    let _ = match body {
        Some(b) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            conn.write_all(head.as_bytes()).and_then(|_| {
                if method == "HEAD" {
                    Ok(())
                } else {
                    conn.write_all(&b)
                }
            })
        }
        None => conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
    let _ = conn.flush();
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

struct ReadHalf<'a>(&'a mut dyn ReadWrite);

impl Read for ReadHalf<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Served {
    pub fn start(
        dir: PathBuf,
        addr: &'static str,
        tls: bool,
        auth: Vec<(String, String)>,
    ) -> Served {
        static PLAIN: Mutex<()> = Mutex::new(());
        static TLS: Mutex<()> = Mutex::new(());
        let lock = if tls { &TLS } else { &PLAIN };
        let address = lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = tls.then(tls_config);
        let listener = std::net::TcpListener::bind(addr).expect("binding the corpus HTTP address");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                match &config {
                    None => {
                        let mut c = conn;
                        answer(&mut c, &dir, &auth);
                    }
                    Some(cfg) => {
                        let Ok(session) = rustls::ServerConnection::new(cfg.clone()) else {
                            continue;
                        };
                        let mut s = rustls::StreamOwned::new(session, conn);
                        answer(&mut s, &dir, &auth);
                        s.conn.send_close_notify();
                        let _ = s.conn.complete_io(&mut s.sock);
                    }
                }
            }
        });
        Served {
            _address: address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the `docker-image:` named contexts of a case are pulled from (record.py's registry is the same).
pub const REGISTRY_ADDR: &str = "127.0.0.1:48768";

/// `layerwright serve` as a loopback registry over a store of its own holding the image archive `image_tar`;
/// stopped on drop.
pub struct Registry {
    _address: MutexGuard<'static, ()>,
    child: std::process::Child,
}

impl Registry {
    pub fn start(store: &Path, image_tar: &Path) -> Registry {
        static ADDRESS: Mutex<()> = Mutex::new(());
        let address = ADDRESS.lock().unwrap_or_else(|e| e.into_inner());
        let lw = env!("CARGO_BIN_EXE_layerwright");
        if !store.exists() {
            run_ok(
                Command::new(lw)
                    .arg("--root")
                    .arg(store)
                    .arg("load")
                    .arg("-i")
                    .arg(image_tar),
            );
        }
        let child = Command::new(lw)
            .arg("--root")
            .arg(store)
            .args(["serve", "--addr", REGISTRY_ADDR])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting layerwright serve");
        for _ in 0..1000 {
            if std::net::TcpStream::connect(REGISTRY_ADDR).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Registry {
            _address: address,
            child,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a case's `sshd` repository is served by git over SSH (record.py uses the same port).
pub const SSHD_PORT: u16 = 48769;

/// An sshd of our own (openssh-server) on loopback whose one authorized key (the case's agent's) may only run
/// `git-upload-pack` on a copy of the case's bare repository; stopped on drop. `ssh_command` is the
/// `GIT_SSH_COMMAND` that knows its host key.
pub struct Sshd {
    _address: MutexGuard<'static, ()>,
    child: std::process::Child,
    pub ssh_command: String,
}

impl Sshd {
    pub fn start(dir: &Path, repo: &Path, agent: &Agent) -> Sshd {
        static ADDRESS: Mutex<()> = Mutex::new(());
        let address = ADDRESS.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        // A copy with the refs/ directory git needs to call it a repository (git keeps no empty directory).
        let copy = dir.join("repo.git");
        run_ok(Command::new("cp").arg("-r").arg(repo).arg(&copy));
        std::fs::create_dir_all(copy.join("refs/heads")).unwrap();
        let host = dir.join("host");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host),
        );
        let pubkey = std::fs::read_to_string(agent.key.with_extension("pub")).unwrap();
        let keys = dir.join("authorized_keys");
        std::fs::write(
            &keys,
            format!(
                "command=\"git-upload-pack '{}'\",restrict {pubkey}",
                copy.display()
            ),
        )
        .unwrap();
        let known = dir.join("known_hosts");
        let host_pub = std::fs::read_to_string(host.with_extension("pub")).unwrap();
        std::fs::write(&known, format!("[127.0.0.1]:{SSHD_PORT} {host_pub}")).unwrap();
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "ListenAddress 127.0.0.1:{SSHD_PORT}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\n",
                host.display(),
                keys.display(),
                dir.join("pid").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&conf)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sshd (openssh-server) is installed");
        for _ in 0..1000 {
            if std::net::TcpStream::connect(("127.0.0.1", SSHD_PORT)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Sshd {
            _address: address,
            child,
            ssh_command: format!(
                "ssh -o BatchMode=yes -o UserKnownHostsFile={}",
                known.display()
            ),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
