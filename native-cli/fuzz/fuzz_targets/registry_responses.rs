#![no_main]
//! The registry client's response handling: every answer a registry could give (status, headers such as
//! `WWW-Authenticate`, `Link`, `Location`, `Docker-Content-Digest`, and bodies: token JSON, error envelopes,
//! manifests, blob bytes) comes from the input, to pull, list and push operations with credentials. Nothing may
//! panic, and each operation ends (the input runs out, so the transport fails and retries are bounded).

use std::io::Read;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use lw_oci::{media, Descriptor, Digest};
use lw_registry::{
    drive_with, BlobIo, Client, ClientConfig, Credentials, Error, Request, ResponseHead, RetryPolicy,
    SendBody, Transport, TransportError,
};

/// Answers cut from the input: 2 bytes of status, header lines up to an empty line, 2 bytes of body length, body.
struct Scripted<'a> {
    rest: &'a [u8],
    sent: usize,
}

impl Transport for Scripted<'_> {
    type Body = std::io::Cursor<Vec<u8>>;

    fn send(&mut self, _: &Request, body: SendBody<'_>) -> Result<(ResponseHead, Self::Body), TransportError> {
        if let SendBody::Reader { reader, len } = body {
            let _ = std::io::copy(&mut reader.take(len), &mut std::io::sink());
        }
        self.sent += 1;
        if self.rest.len() < 2 || self.sent > 64 {
            return Err(TransportError { message: "input exhausted".into(), retryable: false });
        }
        let status = 100 + u16::from_le_bytes([self.rest[0], self.rest[1]]) % 500;
        self.rest = &self.rest[2..];
        let mut head = ResponseHead::new(status);
        while let Some(nl) = self.rest.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.rest[..nl]).into_owned();
            self.rest = &self.rest[nl + 1..];
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                head.headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let n = if self.rest.len() >= 2 { u16::from_le_bytes([self.rest[0], self.rest[1]]) as usize } else { 0 };
        self.rest = &self.rest[self.rest.len().min(2)..];
        let n = n.min(self.rest.len());
        let body = std::io::Cursor::new(self.rest[..n].to_vec());
        self.rest = &self.rest[n..];
        Ok((head, body))
    }

    fn sleep(&mut self, _: Duration) {}
}

struct Sink(Vec<u8>);

impl BlobIo for Sink {
    fn open_upload(&mut self, _: &Digest, _: u64, len: u64) -> Result<Box<dyn Read + '_>, Error> {
        Ok(Box::new(std::io::repeat(7).take(len)))
    }
    fn write_download(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.0.len() < 1 << 20 {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let mut cfg = ClientConfig::new("registry.test");
    cfg.credentials = Credentials::Basic { username: "u".into(), password: "p".into() };
    cfg.retry = RetryPolicy { max_retries: 2, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO };
    let c = Client::new(cfg);
    let mut t = Scripted { rest, sent: 0 };
    let mut io = Sink(Vec::new());
    let blob = Descriptor::new(media::OCI_LAYER_GZIP, Digest::sha256_of(b"blob"), 4);
    let _ = match which % 5 {
        0 => drive_with(&mut c.get_manifest("a/b", "latest").unwrap(), &mut t, &mut io).map(|_| ()),
        1 => drive_with(&mut c.list_tags("a/b").unwrap(), &mut t, &mut io).map(|_| ()),
        2 => drive_with(&mut c.get_blob("a/b", &blob.digest, Some(4)).unwrap(), &mut t, &mut io).map(|_| ()),
        3 => drive_with(&mut c.upload_blob("a/b", &blob).unwrap().chunk_size(2), &mut t, &mut io).map(|_| ()),
        _ => drive_with(&mut c.catalog(), &mut t, &mut io).map(|_| ()),
    };
});
