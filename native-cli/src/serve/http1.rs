//! A small HTTP/1.1 server on std::net for `layerwright serve`: a fixed pool of worker threads, keep-alive,
//! `Content-Length` and chunked request bodies, `Expect: 100-continue`, streamed responses, and the limits a
//! local server needs (request line and header sizes, idle timeouts). A TLS ClientHello is dropped at once so
//! clients that try https first fall back to http without waiting.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest request line or header line.
const MAX_LINE: usize = 8 * 1024;
/// Most header lines in one request.
const MAX_HEADERS: usize = 100;
/// How long an idle keep-alive connection (or a slow request head) may wait.
const IDLE: Duration = Duration::from_secs(15);
/// Silence allowed while a body streams.
const BODY_IO: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other(String),
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(o) => o,
        };
        f.write_str(s)
    }
}

enum BodyKind {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
}

/// The request body as a stream (de-chunked), sending `100 Continue` on first read when the client asked.
pub struct Body<'a> {
    conn: &'a mut BufReader<TcpStream>,
    kind: BodyKind,
    expect_continue: bool,
    failed: bool,
}

impl Body<'_> {
    fn finished(&self) -> bool {
        match self.kind {
            BodyKind::Length(n) => n == 0,
            BodyKind::Chunked { done, .. } => done,
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut *self.conn)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk line"));
        }
        Ok(String::from_utf8_lossy(&line).trim().to_string())
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("request body already failed"));
        }
        if self.expect_continue {
            self.expect_continue = false;
            self.conn
                .get_mut()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let r = (|| match &mut self.kind {
            BodyKind::Length(0) => Ok(0),
            BodyKind::Length(n) => {
                let want = (*n).min(buf.len() as u64) as usize;
                let got = self.conn.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "request body ended early",
                    ));
                }
                *n -= got as u64;
                Ok(got)
            }
            BodyKind::Chunked { done: true, .. } => Ok(0),
            BodyKind::Chunked { .. } => {
                let left = match self.kind {
                    BodyKind::Chunked { left_in_chunk, .. } => left_in_chunk,
                    _ => 0,
                };
                let mut left = left;
                if left == 0 {
                    let line = self.read_line()?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    left = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if left == 0 {
                        // Trailers, then the blank line.
                        loop {
                            if self.read_line()?.is_empty() {
                                break;
                            }
                        }
                        self.kind = BodyKind::Chunked {
                            left_in_chunk: 0,
                            done: true,
                        };
                        return Ok(0);
                    }
                }
                let want = left.min(buf.len() as u64) as usize;
                let got = self.conn.read(&mut buf[..want])?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "request body ended early",
                    ));
                }
                left -= got as u64;
                if left == 0 {
                    let mut crlf = [0u8; 2];
                    self.conn.read_exact(&mut crlf)?;
                }
                self.kind = BodyKind::Chunked {
                    left_in_chunk: left,
                    done: false,
                };
                Ok(got)
            }
        })();
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

/// One parsed request.
pub struct Request<'a> {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Body<'a>,
    version_10: bool,
}

impl Request<'_> {
    pub fn method(&self) -> &Method {
        &self.method
    }
    pub fn url(&self) -> &str {
        &self.url
    }
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The declared body length (`None` for chunked bodies).
    pub fn body_length(&self) -> Option<usize> {
        match self.body.kind {
            BodyKind::Length(n) => Some(n as usize),
            BodyKind::Chunked { .. } => None,
        }
    }
    pub fn as_reader(&mut self) -> &mut dyn Read {
        &mut self.body
    }
}

/// A response to write: status, headers, and a body of known or unknown length.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
    pub len: Option<u64>,
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Write `resp`; returns whether the connection may be reused.
fn write_response(
    w: &mut TcpStream,
    mut resp: Response,
    head: bool,
    keep: bool,
    v10: bool,
) -> io::Result<bool> {
    let no_body =
        head || resp.status == 204 || resp.status == 304 || (100..200).contains(&resp.status);
    let chunked = resp.len.is_none() && !no_body && !v10;
    let keep = keep && (resp.len.is_some() || chunked || no_body);
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        if v.contains(['\r', '\n']) {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(n) = resp.len {
        if resp.status != 204 && resp.status != 304 {
            out.push_str(&format!("Content-Length: {n}\r\n"));
        }
    } else if chunked {
        out.push_str("Transfer-Encoding: chunked\r\n");
    }
    out.push_str(if keep {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut bw = io::BufWriter::with_capacity(64 * 1024, &mut *w);
    bw.write_all(out.as_bytes())?;
    if !no_body {
        let mut buf = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match resp.body.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A body that fails mid-way cannot be reported any more: cut the connection.
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            if chunked {
                bw.write_all(format!("{n:x}\r\n").as_bytes())?;
                bw.write_all(&buf[..n])?;
                bw.write_all(b"\r\n")?;
                // Streams such as RUN output should reach the client as they come.
                bw.flush()?;
            } else {
                bw.write_all(&buf[..n])?;
            }
            sent += n as u64;
        }
        if chunked {
            bw.write_all(b"0\r\n\r\n")?;
        } else if let Some(len) = resp.len {
            if sent != len {
                return Err(io::Error::other("response body shorter than its length"));
            }
        }
    }
    bw.flush()?;
    Ok(keep)
}

fn bad(conn: &mut TcpStream, status: u16, msg: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
        reason(status),
        msg.len()
    );
}

enum Head {
    Req(Method, String, Vec<(String, String)>, bool),
    Closed,
    Bad(u16, &'static str),
}

fn read_head(conn: &mut BufReader<TcpStream>) -> io::Result<Head> {
    match conn.fill_buf()?.first() {
        None => return Ok(Head::Closed),
        // A TLS ClientHello: this server speaks plain HTTP only. An HTTP answer at once (not a silent close)
        // is what makes TLS clients report "server gave HTTP response to HTTPS client" and fall back to plain
        // HTTP for an insecure registry, as docker does.
        Some(0x16) => return Ok(Head::Bad(400, "this server speaks plain HTTP, not TLS")),
        _ => {}
    }
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut *conn)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(if lines.is_empty() {
                Head::Closed
            } else {
                Head::Bad(400, "truncated request")
            });
        }
        if !line.ends_with(b"\n") {
            return Ok(Head::Bad(431, "request line or header too long"));
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            if lines.is_empty() {
                continue; // stray CRLF between requests
            }
            break;
        }
        if lines.len() > MAX_HEADERS {
            return Ok(Head::Bad(431, "too many headers"));
        }
        lines.push(text);
    }
    let mut parts = lines[0].split(' ');
    let (Some(m), Some(url), Some(ver)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(Head::Bad(400, "bad request line"));
    };
    if !ver.starts_with("HTTP/1.") || !url.starts_with('/') {
        return Ok(Head::Bad(400, "bad request line"));
    }
    let method = match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        o => Method::Other(o.chars().take(16).collect()),
    };
    let mut headers = Vec::new();
    for l in &lines[1..] {
        let Some((k, v)) = l.split_once(':') else {
            return Ok(Head::Bad(400, "bad header line"));
        };
        if k.is_empty() || k.contains([' ', '\t']) {
            return Ok(Head::Bad(400, "bad header name"));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    Ok(Head::Req(
        method,
        url.to_string(),
        headers,
        ver == "HTTP/1.0",
    ))
}

/// Serve one connection until it closes or an error ends it.
fn connection(stream: TcpStream, handler: &(dyn Fn(&mut Request) -> (Response, bool) + Sync)) {
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut w = write_half;
    let mut conn = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let _ = conn.get_ref().set_read_timeout(Some(IDLE));
        let (method, url, headers, v10) = match read_head(&mut conn) {
            Ok(Head::Req(m, u, h, v)) => (m, u, h, v),
            Ok(Head::Closed) | Err(_) => return,
            Ok(Head::Bad(s, msg)) => {
                bad(&mut w, s, msg);
                return;
            }
        };
        let _ = conn.get_ref().set_read_timeout(Some(BODY_IO));
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let chunked =
            find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let kind = if chunked {
            BodyKind::Chunked {
                left_in_chunk: 0,
                done: false,
            }
        } else {
            match find("content-length").map(|v| v.trim().parse::<u64>()) {
                None => BodyKind::Length(0),
                Some(Ok(n)) => BodyKind::Length(n),
                Some(Err(_)) => {
                    bad(&mut w, 400, "bad Content-Length");
                    return;
                }
            }
        };
        let expect_continue =
            find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let conn_hdr = find("connection")
            .map(|v| v.to_ascii_lowercase())
            .unwrap_or_default();
        let mut keep = if v10 {
            conn_hdr.contains("keep-alive")
        } else {
            !conn_hdr.contains("close")
        };
        let head = method == Method::Head;
        let mut req = Request {
            method,
            url,
            headers,
            body: Body {
                conn: &mut conn,
                kind,
                expect_continue,
                failed: false,
            },
            version_10: v10,
        };
        let (resp, close) = handler(&mut req);
        keep = keep && !close;
        // The rest of an unread body must be skipped before the next request; large leftovers end the connection.
        if !req.body.finished() {
            if req.body.expect_continue || req.body.failed {
                keep = false;
            } else {
                let mut sink = io::sink();
                let left = io::copy(&mut (&mut req.body).take(1 << 20), &mut sink);
                if left.is_err() || !req.body.finished() {
                    keep = false;
                }
            }
        }
        let v10 = req.version_10;
        drop(req);
        match write_response(&mut w, resp, head, keep, v10) {
            Ok(true) => continue,
            _ => return,
        }
    }
}

/// A listening server with its worker pool.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

type Handler = dyn Fn(&mut Request) -> (Response, bool) + Send + Sync;

impl Server {
    /// Bind `addr` and serve with `workers` threads; connections beyond what the queue holds get 503.
    pub fn start(addr: SocketAddr, workers: usize, handler: Arc<Handler>) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) = sync_channel(workers * 8);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for _ in 0..workers.max(1) {
            let (rx, h) = (rx.clone(), handler.clone());
            threads.push(std::thread::spawn(move || loop {
                let next = rx.lock().map(|r| r.recv());
                match next {
                    Ok(Ok(s)) => connection(s, &*h),
                    _ => return,
                }
            }));
        }
        let st = stop.clone();
        threads.push(std::thread::spawn(move || {
            for s in listener.incoming() {
                if st.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                let _ = s.set_write_timeout(Some(BODY_IO));
                if let Err(std::sync::mpsc::TrySendError::Full(mut s)) = tx.try_send(s) {
                    bad(&mut s, 503, "server busy, try again");
                }
            }
        }));
        Ok(Server {
            addr,
            stop,
            threads,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Block until the server stops.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }

    /// Stop accepting (idle keep-alive connections end by timeout).
    pub fn shutdown(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}
