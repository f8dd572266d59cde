//! The HTTP/1.1 server under `layerwright serve`, on hyper (tokio): keep-alive, chunked bodies, `Expect:
//! 100-continue`, header size limits and timeouts come from hyper. Handlers stay blocking code (they stream files
//! and run RUN steps): each request runs on tokio's blocking pool, its body reaching the handler as a `Read` and
//! its response body streaming back from one, so a slow client holds a task, not a thread. A request with a body
//! holds its handler while the body arrives, so such requests get at most half the handlers and must keep up a
//! minimum rate; heads must arrive within [`IDLE`] and stay under [`MAX_HEAD`].
//!
//! A TLS ClientHello gets a plain HTTP answer at once: TLS clients then report "server gave HTTP response to HTTPS
//! client", which is what makes docker fall back to plain HTTP for an insecure registry.

use std::convert::Infallible;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, Notify, Semaphore};

/// Largest request head (request line plus headers).
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send a request head (also how long an idle keep-alive connection waits).
const IDLE: Duration = Duration::from_secs(15);
/// Silence allowed while a body streams in either direction.
const BODY_IO: Duration = Duration::from_secs(120);
/// Size of the pieces a response body is read in.
const CHUNK: usize = 256 * 1024;
/// After this long, a request body must keep arriving at [`MIN_BODY_RATE`] on average (time the handler takes
/// to consume what arrived does not count), so a trickling upload cannot hold a handler forever: Apache's
/// mod_reqtimeout defaults (20 s, then 500 bytes/s).
const BODY_GRACE: Duration = Duration::from_secs(20);
const MIN_BODY_RATE: u64 = 500;
/// Requests with a body that run at once on a connection served alone ([`serve_stream`]).
const BODY_SLOTS_ALONE: usize = 4;

/// The client's and the server's one method vocabulary.
pub use lw_registry::Method;

/// A request as handlers see it: head, and the body as a blocking stream (de-chunked by hyper).
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
    length: Option<u64>,
    peer: Option<SocketAddr>,
}

impl Request {
    /// A request from parts: the server's own, and tests that drive handlers in memory.
    pub fn new(
        method: Method,
        url: &str,
        headers: Vec<(String, String)>,
        body: Box<dyn Read + Send>,
        length: Option<u64>,
    ) -> Request {
        Request {
            method,
            url: url.to_string(),
            headers,
            body,
            length,
            peer: None,
        }
    }
    /// The client's address, when the request came over a socket.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
    pub fn set_peer(&mut self, peer: Option<SocketAddr>) {
        self.peer = peer;
    }
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
        self.length.map(|n| n as usize)
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

/// What every request goes through: the response, and whether the connection should end after it.
pub type Handler = dyn Fn(&mut Request) -> (Response, bool) + Send + Sync;

/// The request body, fed by the connection's task through a small channel (back-pressure: at most a few chunks
/// wait in memory).
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl Read for ChannelBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// Forward the request body's data frames to the handler's reader, each within [`BODY_IO`], the whole at
/// [`MIN_BODY_RATE`] or better once past [`BODY_GRACE`].
async fn pump_request(mut body: Incoming, tx: mpsc::Sender<io::Result<Bytes>>) {
    // Time spent waiting for the client (not for the handler), and what the client sent meanwhile.
    let (mut waited, mut received) = (Duration::ZERO, 0u64);
    loop {
        let t = tokio::time::Instant::now();
        let next = tokio::time::timeout(BODY_IO, body.frame()).await;
        waited += t.elapsed();
        let item = match next {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body stalled",
            )),
            Ok(None) => return,
            Ok(Some(Ok(f))) => match f.into_data() {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => {
                    received += d.len() as u64;
                    if waited > BODY_GRACE && received < MIN_BODY_RATE * waited.as_secs() {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("request body slower than {MIN_BODY_RATE} bytes/s"),
                        ))
                    } else {
                        Ok(d)
                    }
                }
                Err(_) => continue, // trailers
            },
            Ok(Some(Err(e))) => Err(io::Error::other(e.to_string())),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

/// A response body streamed from a blocking reader on the blocking pool.
struct StreamBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    left: Option<u64>,
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|o| {
            o.map(|r| {
                r.map(|b| {
                    if let Some(l) = self.left.as_mut() {
                        *l = l.saturating_sub(b.len() as u64);
                    }
                    Frame::data(b)
                })
            })
        })
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.left {
            Some(n) => hyper::body::SizeHint::with_exact(n),
            None => hyper::body::SizeHint::default(),
        }
    }
}

/// Read `body` in pieces into `tx` (on the blocking pool); a short body or a read error ends the response with an
/// error, which cuts the connection (the status line has gone, so nothing else can tell the client).
fn pump_response(
    mut body: Box<dyn Read + Send>,
    len: Option<u64>,
    tx: mpsc::Sender<io::Result<Bytes>>,
) {
    let mut sent = 0u64;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if n == 0 {
            if len.is_some_and(|l| l != sent) {
                let _ = tx.blocking_send(Err(io::Error::other(
                    "response body shorter than its length",
                )));
            }
            return;
        }
        buf.truncate(n);
        sent += n as u64;
        if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
            return;
        }
    }
}

fn no_body(status: u16, head: bool) -> bool {
    head || status == 204 || status == 304 || (100..200).contains(&status)
}

/// Turn a handler's response into hyper's.
fn to_hyper(resp: Response, head: bool, close: bool) -> hyper::Response<StreamBody> {
    let (tx, rx) = mpsc::channel(2);
    let skip_body = no_body(resp.status, head);
    let mut b = hyper::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        if v.contains(['\r', '\n']) {
            continue;
        }
        b = b.header(k.as_str(), v.as_str());
    }
    if let Some(n) = resp.len {
        if resp.status != 204 && resp.status != 304 && !(100..200).contains(&resp.status) {
            b = b.header("Content-Length", n.to_string());
        }
    }
    if close {
        b = b.header("Connection", "close");
    }
    let left = if skip_body { Some(0) } else { resp.len };
    if !skip_body {
        let (body, len) = (resp.body, resp.len);
        tokio::task::spawn_blocking(move || pump_response(body, len, tx));
    }
    b.body(StreamBody { rx, left }).unwrap_or_else(|_| {
        let (_, rx) = mpsc::channel(1);
        let mut r = hyper::Response::new(StreamBody { rx, left: Some(0) });
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// One request: the head is converted, the body pumped to the handler, which runs on the blocking pool.
async fn serve_one(
    req: hyper::Request<Incoming>,
    peer: Option<SocketAddr>,
    handler: Arc<Handler>,
    bodies: Arc<Semaphore>,
) -> Result<hyper::Response<StreamBody>, Infallible> {
    let (parts, body) = req.into_parts();
    // No handler serves another method: answer here, naming it (as servers do with 405 and `Allow`).
    let Some(method) = Method::parse(parts.method.as_str()) else {
        let msg = format!(
            "method {:.16} is not supported here\n",
            parts.method.as_str()
        );
        return Ok(to_hyper(
            Response {
                status: 405,
                headers: vec![
                    ("Content-Type".into(), "text/plain".into()),
                    (
                        "Allow".into(),
                        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".into(),
                    ),
                ],
                len: Some(msg.len() as u64),
                body: Box::new(io::Cursor::new(msg.into_bytes())),
            },
            false,
            false,
        ));
    };
    let head = method == Method::Head;
    let url = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let chunked = parts.headers.contains_key(hyper::header::TRANSFER_ENCODING);
    let length = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .or(if chunked { None } else { Some(0) });
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(pump_request(body, tx));
    let reader = ChannelBody {
        rx,
        cur: Bytes::new(),
        done: false,
    };
    let mut r = Request::new(method, &url, headers, Box::new(reader), length);
    r.set_peer(peer);
    // A request with a body may hold its handler as long as the client takes to send it: such requests get
    // half the handlers at most, so slow uploads never starve pulls (the rest wait here, costing no thread).
    let permit = if length != Some(0) {
        bodies.acquire_owned().await.ok()
    } else {
        None
    };
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        handler(&mut r)
    })
    .await;
    Ok(match out {
        Ok((resp, close)) => to_hyper(resp, head, close),
        Err(_) => to_hyper(
            Response {
                status: 500,
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body: Box::new(io::Cursor::new(b"internal error\n".to_vec())),
                len: Some(15),
            },
            head,
            true,
        ),
    })
}

/// Serve one connection: a TLS ClientHello gets an HTTP answer, anything else goes to hyper.
async fn connection(stream: tokio::net::TcpStream, handler: Arc<Handler>, bodies: Arc<Semaphore>) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    match tokio::time::timeout(IDLE, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x16 => {
            let mut s = stream;
            let msg = "this server speaks plain HTTP, not TLS";
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                        msg.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = s.shutdown().await;
            return;
        }
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let peer = stream.peer_addr().ok();
    serve_stream_from(stream, peer, handler, bodies).await;
}

/// HTTP/1.1 over any byte stream: a socket, or an in-memory pipe (fuzzing feeds raw bytes this way).
pub async fn serve_stream<S>(stream: S, handler: Arc<Handler>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    serve_stream_from(
        stream,
        None,
        handler,
        Arc::new(Semaphore::new(BODY_SLOTS_ALONE)),
    )
    .await
}

/// [`serve_stream`] for a client at `peer` (handlers see it as [`Request::peer`]), requests with a body taking
/// one of `bodies`' permits while they run.
async fn serve_stream_from<S>(
    stream: S,
    peer: Option<SocketAddr>,
    handler: Arc<Handler>,
    bodies: Arc<Semaphore>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        serve_one(req, peer, handler.clone(), bodies.clone())
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE)
        .max_buf_size(MAX_HEAD.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

/// A listening server.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<Notify>,
    thread: std::thread::JoinHandle<()>,
}

impl Server {
    /// Bind `addr` and serve; at most `workers` handlers run at once (tokio's blocking pool), other requests wait.
    pub fn start(addr: SocketAddr, workers: usize, handler: Arc<Handler>) -> io::Result<Server> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(workers.max(2) * 2)
            .enable_all()
            .thread_name("serve")
            .build()?;
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let stop = Arc::new(Notify::new());
        let stopped = stop.clone();
        // The blocking pool has 2 × workers threads; requests with bodies get half of them.
        let bodies = Arc::new(Semaphore::new(workers.max(2)));
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = stopped.notified() => return,
                        acc = listener.accept() => {
                            if let Ok((s, _)) = acc {
                                tokio::spawn(connection(s, handler.clone(), bodies.clone()));
                            }
                        }
                    }
                }
            });
            // Connections still open end with the runtime.
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        Ok(Server { addr, stop, thread })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Block until the server stops.
    pub fn wait(self) {
        let _ = self.thread.join();
    }

    /// Stop accepting and end the server's connections.
    pub fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.thread.join();
    }
}
