//! A loopback HTTP server for git repositories: `git http-backend` (git's own smart HTTP CGI) behind a tiny HTTP/1.1
//! front, serving every repository under a root directory, with protocol v2 passed on or withheld (a v0-only
//! server), an optional required `Authorization` value, and a log of the requests it answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Run `git -C dir ARGS` with a fixed author and no system or user config (HOME is `dir`); its trimmed stdout. A
/// failure panics with git's stderr.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// How the server answers.
#[derive(Debug, Clone, Default)]
pub struct GitHttpOptions {
    /// Drop the client's `Git-Protocol` header: `git http-backend` then speaks protocol v0 only.
    pub v0_only: bool,
    /// Serve the repository's files as they are (git's dumb protocol) instead of running `git http-backend`.
    pub dumb: bool,
    /// Answer 401 to any request without exactly this `Authorization` value.
    pub auth: Option<String>,
}

/// One request answered: method, path with query, and status.
pub type Logged = (String, String, u16);

/// The running server; it stops accepting when dropped (the listener thread ends with the process).
pub struct GitHttp {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl GitHttp {
    /// Serve the repositories under `root` (`http://ADDR/NAME.git` for `root/NAME.git`).
    pub fn start(root: &Path, opts: GitHttpOptions) -> GitHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (root, l) = (root.to_path_buf(), log.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let (root, opts, l) = (root.clone(), opts.clone(), l.clone());
                std::thread::spawn(move || serve(s, &root, &opts, &l));
            }
        });
        GitHttp { addr, log }
    }

    /// `http://ADDR/NAME`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// The requests answered so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(s: TcpStream, root: &Path, opts: &GitHttpOptions, log: &Mutex<Vec<Logged>>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut words = line.split_whitespace();
    let (method, target) = (
        words.next().unwrap_or("").to_string(),
        words.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = vec![
        0u8;
        header("content-length")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    ];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, ctype, out) = if opts.auth.is_some() && header("authorization") != opts.auth {
        (
            401,
            "text/plain".to_string(),
            b"authorization required\n".to_vec(),
        )
    } else if opts.dumb {
        match std::fs::read(root.join(path.trim_start_matches('/'))) {
            Ok(b) if !path.contains("..") => (200, "text/plain".into(), b),
            _ => (404, "text/plain".into(), b"not found\n".to_vec()),
        }
    } else {
        let protocol = header("git-protocol").filter(|_| !opts.v0_only);
        let ct = header("content-type");
        cgi(
            root,
            &method,
            path,
            query,
            ct.as_deref(),
            protocol.as_deref(),
            &body,
        )
    };
    log.lock().unwrap().push((method, target.clone(), status));
    let mut w = s;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        out.len()
    );
    let _ = w.write_all(head.as_bytes()).and_then(|_| w.write_all(&out));
}

/// Run `git http-backend` for one request: (status, content type, body).
fn cgi(
    root: &Path,
    method: &str,
    path: &str,
    query: &str,
    ctype: Option<&str>,
    protocol: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", root)
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("CONTENT_TYPE", ctype.unwrap_or(""));
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("git http-backend runs (Debian package git)");
    let mut stdin = child.stdin.take().unwrap();
    let input = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    let _ = writer.join();
    let out = o.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2)));
    let Some((at, n)) = split else {
        return (500, "text/plain".into(), out);
    };
    let (mut status, mut ct) = (200, "text/plain".to_string());
    for l in String::from_utf8_lossy(&out[..at]).lines() {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "status" => status = v.trim()[..3].parse().unwrap_or(500),
                "content-type" => ct = v.trim().to_string(),
                _ => {}
            }
        }
    }
    (status, ct, out[at + n..].to_vec())
}
