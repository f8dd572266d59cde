//! State-machine tests: operations driven over a scripted transport with canned responses.
//! This module holds the scripted transport and shared fixtures; the tests are grouped by area.

mod auth;
mod blob;
mod flow;
mod manifest;
mod transfer;

use std::collections::VecDeque;
use std::io::{self, Read};
use std::time::Duration;

use base64::Engine as _;
use lw_oci::{media, Descriptor, Digest, Index, Manifest, Platform};

use crate::*;

type Handler = Box<dyn FnMut(&Request, &[u8]) -> Reply>;

enum Reply {
    Ok(ResponseHead, Vec<u8>),
    /// The body breaks off (connection reset) after these bytes.
    Broken(ResponseHead, Vec<u8>),
    Fail(TransportError),
}

fn resp(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut h = ResponseHead::new(status);
    for (k, v) in headers {
        h = h.with_header(k, v);
    }
    Reply::Ok(h, body.to_vec())
}

#[derive(Default)]
struct Mock {
    handlers: VecDeque<Handler>,
    log: Vec<(Request, Vec<u8>)>,
    slept: Vec<Duration>,
}

impl Mock {
    fn on(mut self, f: impl FnMut(&Request, &[u8]) -> Reply + 'static) -> Self {
        self.handlers.push_back(Box::new(f));
        self
    }
    fn done(&self) {
        assert!(
            self.handlers.is_empty(),
            "{} scripted responses unused",
            self.handlers.len()
        );
    }
}

struct MockBody {
    data: io::Cursor<Vec<u8>>,
    broken: bool,
}

impl Read for MockBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads, to exercise chunked feeding.
        let n = buf.len().min(7);
        let got = self.data.read(&mut buf[..n])?;
        if got == 0 && self.broken {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        Ok(got)
    }
}

impl Transport for Mock {
    type Body = MockBody;
    fn send(
        &mut self,
        request: &Request,
        body: SendBody<'_>,
    ) -> Result<(ResponseHead, MockBody), TransportError> {
        let bytes = match body {
            SendBody::Empty => Vec::new(),
            SendBody::Bytes(b) => b.to_vec(),
            SendBody::Reader { reader, len } => {
                let mut v = Vec::new();
                reader.read_to_end(&mut v).unwrap();
                assert_eq!(v.len() as u64, len);
                v
            }
        };
        self.log.push((request.clone(), bytes.clone()));
        let mut h = self
            .handlers
            .pop_front()
            .unwrap_or_else(|| panic!("unexpected request {} {}", request.method, request.url));
        match h(request, &bytes) {
            Reply::Ok(head, body) => Ok((
                head,
                MockBody {
                    data: io::Cursor::new(body),
                    broken: false,
                },
            )),
            Reply::Broken(head, body) => Ok((
                head,
                MockBody {
                    data: io::Cursor::new(body),
                    broken: true,
                },
            )),
            Reply::Fail(e) => Err(e),
        }
    }
    fn sleep(&mut self, d: Duration) {
        self.slept.push(d);
    }
}

/// Collects downloads, serves uploads from memory.
#[derive(Default)]
struct Mem {
    blob: Vec<u8>,
    downloaded: Vec<u8>,
}

impl BlobIo for Mem {
    fn open_upload(
        &mut self,
        _d: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Read + '_>, Error> {
        Ok(Box::new(
            &self.blob[offset as usize..(offset + len) as usize],
        ))
    }
    fn write_download(&mut self, data: &[u8]) -> Result<(), Error> {
        self.downloaded.extend_from_slice(data);
        Ok(())
    }
}

fn client_with(creds: Credentials) -> Client {
    let mut c = ClientConfig::new("reg.example");
    c.credentials = creds;
    c.retry = RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    };
    Client::new(c)
}

fn client() -> Client {
    client_with(Credentials::Anonymous)
}

fn sample_manifest() -> (Vec<u8>, Digest) {
    let config = Descriptor::of(media::OCI_CONFIG, b"{}");
    let layer = Descriptor::of(media::OCI_LAYER_GZIP, b"layer");
    let bytes = lw_oci::to_canonical_json(&Manifest::oci(config, vec![layer]));
    let d = Digest::sha256_of(&bytes);
    (bytes, d)
}

fn query_params(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const BEARER: &str = r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:lib/app:pull""#;
