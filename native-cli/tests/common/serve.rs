//! Fixtures for `layerwright serve` tests: a server on a free 127.0.0.1 port over a store in a temporary
//! directory, and a raw HTTP/1.1 client that sends exactly the headers a test gives (Host and Origin included).
//! Include it with `#[path = "common/serve.rs"] mod serve_fixtures;`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use layerwright::serve::{Config, Server};

pub struct Served {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub token: String,
}

impl Served {
    /// Start with a fixed token; `tweak` adjusts the configuration.
    pub fn start(root: &Path, tweak: impl FnOnce(&mut Config)) -> Served {
        let mut cfg = Config::new("127.0.0.1:0".parse().unwrap(), root.to_path_buf());
        cfg.token = Some("test-token-0123456789".into());
        cfg.threads = 16;
        tweak(&mut cfg);
        let server = Server::start(cfg).expect("serve starts");
        Served {
            addr: server.addr(),
            token: server.token().to_string(),
            server: Some(server),
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `Authorization: Bearer TOKEN`: what pushes send.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Upload `data` to `repo` in one request (monolithic POST), named by its digest of `alg`; returns it.
    pub fn push_blob_as(
        &self,
        repo: &str,
        alg: lw_oci::digest::Algorithm,
        data: &[u8],
    ) -> lw_oci::Digest {
        let mut h = lw_oci::DigestHasher::new(alg);
        h.update(data);
        let d = h.finish();
        let r = self.req(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[("Authorization", &self.bearer())],
            data,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        d
    }

    /// A request with the right Host header and the given extra headers.
    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        let mut hs = vec![("Host", self.host())];
        hs.extend(headers.iter().map(|(k, v)| (*k, v.to_string())));
        raw(self.addr, method, path, &hs, body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`); the body is de-chunked.
pub fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut BufReader::new(s), method == "HEAD")
}

pub fn read_response(r: &mut impl BufRead, head_only: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 {
        return resp;
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let n = usize::from_str_radix(l.trim().split(';').next().unwrap(), 16).unwrap();
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).unwrap();
                break;
            }
            let mut buf = vec![0u8; n];
            r.read_exact(&mut buf).unwrap();
            resp.body.extend_from_slice(&buf);
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).unwrap();
        }
    } else if let Some(n) = resp
        .header("content-length")
        .map(|v| v.parse::<usize>().unwrap())
    {
        let mut buf = vec![0u8; n];
        r.read_exact(&mut buf).unwrap();
        resp.body = buf;
    } else {
        r.read_to_end(&mut resp.body).unwrap();
    }
    resp
}

/// The manifest digest skopeo reports for an image.
pub fn skopeo_digest(args: &[&str]) -> String {
    let out = std::process::Command::new("skopeo")
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
