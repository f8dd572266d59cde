//! Fixtures for registry tests, all on 127.0.0.1: the real CNCF Distribution registry (`docker-registry serve`)
//! with filesystem storage in a temporary directory, a token server issuing ES256 JWTs the registry trusts, a
//! scriptable fake HTTP server for faults, and the manifest digest skopeo reports.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::process::{free_port, output_ok};

/// Authentication for the registry under test.
pub enum RegistryAuth {
    None,
    /// An htpasswd file with bcrypt entries.
    Htpasswd(PathBuf),
    /// Token auth trusting `rootcert` (PEM), tokens from `realm`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        rootcert: PathBuf,
    },
}

/// A running `docker-registry serve`, killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Registry {
    pub fn start(auth: RegistryAuth) -> Registry {
        // A port picked free may be taken before the registry binds it (tests run in parallel): try again.
        for attempt in 0..5 {
            match Self::try_start(&auth) {
                Ok(r) => return r,
                Err(log) if attempt < 4 && log.contains("address already in use") => continue,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        unreachable!()
    }

    fn try_start(auth: &RegistryAuth) -> Result<Registry, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth_yaml = match auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Htpasswd(p) => format!(
                "auth:\n  htpasswd:\n    realm: lw-test\n    path: {}\n",
                p.display()
            ),
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcert,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                rootcert.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: lw-test-secret\n{auth_yaml}",
            data = dir.path().join("data").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            port,
            dir,
            log,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited ({status}):\n{}", self.log_text()));
            }
            // Our process must have bound the port (not some other test's server that got it first).
            let listening = self.log_text().contains("listening on");
            if let (true, Ok(mut s)) = (listening, TcpStream::connect(("127.0.0.1", self.port))) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok() {
                    let mut buf = [0u8; 5];
                    if s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after 30 s:\n{}", self.log_text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An htpasswd file with bcrypt entries, made by `htpasswd -Bbn`.
pub fn htpasswd_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let mut text = Vec::new();
    for (u, p) in users {
        let line = output_ok(Command::new("htpasswd").args(["-Bbn", u, p]));
        text.extend_from_slice(String::from_utf8(line).unwrap().trim().as_bytes());
        text.push(b'\n');
    }
    let path = dir.join("htpasswd");
    std::fs::write(&path, text).unwrap();
    path
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP plumbing shared by the token server and the fake registry

/// A request as a test server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), percent_decode(v))
            })
            .collect()
    }
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A canned response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Announce the whole body but send only this many bytes, then close.
    pub truncate_to: Option<usize>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            truncate_to: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.body = b.into();
        self
    }
    pub fn truncated(mut self, n: usize) -> Reply {
        self.truncate_to = Some(n);
        self
    }
}

fn read_request(stream: &mut TcpStream) -> Option<SeenRequest> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(SeenRequest {
        method,
        target,
        headers,
        body,
    })
}

fn write_reply(stream: &mut TcpStream, method: &str, r: &Reply) {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", r.status);
    let has_len = r
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let n = r.truncate_to.unwrap_or(r.body.len()).min(r.body.len());
        let _ = stream.write_all(&r.body[..n]);
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

type HandlerFn = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

/// A scriptable HTTP/1.1 server on 127.0.0.1 (one thread per connection, `Connection: close`).
pub struct FakeServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<HandlerFn> = Arc::new(handler);
        let (s2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = conn else { continue };
                let (h, seen) = (handler.clone(), seen2.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    if let Some(req) = read_request(&mut stream) {
                        seen.lock().unwrap().push(req.clone());
                        let reply = h(&req);
                        write_reply(&mut stream, &req.method, &reply);
                    }
                });
            }
        });
        FakeServer {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Token server

/// A token server for `auth: token`: ES256 JWTs with an `x5c` header holding a self-signed certificate (made by
/// the `openssl` CLI) that the registry trusts as its `rootcertbundle`. Users with the right password get every
/// action they ask for; anonymous requests get a token with no access; a wrong password gets 401.
pub struct TokenServer {
    server: FakeServer,
    pub cert_pem: PathBuf,
    pub service: String,
    pub issuer: String,
    pub issued: Arc<AtomicUsize>,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    pub fn start(dir: &Path, users: &[(&str, &str)]) -> TokenServer {
        use p256::ecdsa::signature::Signer;
        use p256::pkcs8::DecodePrivateKey;

        let key_pem = dir.join("token-key.pem");
        let cert_pem = dir.join("token-cert.pem");
        output_ok(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=layerwright-test-token-issuer",
            "-keyout",
            key_pem.to_str().unwrap(),
            "-out",
            cert_pem.to_str().unwrap(),
        ]));
        // PKCS#8 whatever openssl's default was.
        let pk8 = output_ok(Command::new("openssl").args([
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            key_pem.to_str().unwrap(),
        ]));
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(std::str::from_utf8(&pk8).unwrap())
            .expect("parse the EC key openssl made");
        let cert_text = std::fs::read_to_string(&cert_pem).unwrap();
        let cert_b64: String = cert_text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let service = "lw-test-registry".to_string();
        let issuer = "lw-test-issuer".to_string();
        let users: BTreeMap<String, String> = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        let issued = Arc::new(AtomicUsize::new(0));
        let (svc, iss, count) = (service.clone(), issuer.clone(), issued.clone());
        let server = FakeServer::start(move |req| {
            let q = req.query();
            let mut user = None;
            if let Some(auth) = req.header("authorization") {
                let decoded = auth
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let (u, p) = decoded.split_once(':').unwrap_or(("", ""));
                if users.get(u).map(String::as_str) != Some(p) {
                    return Reply::new(401)
                        .header("Content-Type", "application/json")
                        .body(r#"{"details":"incorrect username or password"}"#);
                }
                user = Some(u.to_string());
            }
            let access: Vec<serde_json::Value> = if user.is_some() {
                q.iter()
                    .filter(|(k, _)| k == "scope")
                    .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .filter_map(|s| {
                        let first = s.find(':')?;
                        let last = s.rfind(':')?;
                        (last > first).then(|| {
                            serde_json::json!({
                                "type": &s[..first],
                                "name": &s[first + 1..last],
                                "actions": s[last + 1..].split(',').collect::<Vec<_>>(),
                            })
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let n = count.fetch_add(1, Ordering::SeqCst);
            let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_b64]});
            let claims = serde_json::json!({
                "iss": iss,
                "sub": user.clone().unwrap_or_default(),
                "aud": svc,
                "exp": now + 600,
                "nbf": now - 30,
                "iat": now,
                "jti": format!("lw-test-{n}"),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let sig: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
            let jwt = format!("{signing_input}.{}", b64url(&sig.to_bytes()));
            let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 600});
            Reply::new(200)
                .header("Content-Type", "application/json")
                .body(body.to_string())
        });
        TokenServer {
            server,
            cert_pem,
            service,
            issuer,
            issued,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.server.requests()
    }

    pub fn registry_auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            rootcert: self.cert_pem.clone(),
        }
    }
}

/// The manifest digest skopeo reports for an image.
pub fn skopeo_digest(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("inspect")
        .args(args)
        .arg("--raw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lw_oci::Digest::sha256_of(&out.stdout).to_string()
}

/// `skopeo --insecure-policy copy --dest-tls-verify=false [--dest-creds CREDS] SRC DEST`, required to succeed.
pub fn skopeo_copy(src: &str, dest: &str, creds: Option<&str>) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--dest-tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    output_ok(cmd.arg(src).arg(dest));
}
