#![no_main]
//! Structured requests straight into serve's handler: the first byte picks the method and whether the token is
//! sent, then a path line, header lines up to a blank line, and the body. Nothing may panic; every answer is a
//! well-formed status with a body that reads to its declared length.

use std::io::{Cursor, Read};

use layerwright::serve::http::{Method, Request};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let path = lines.next().unwrap_or("/");
    let path = if path.starts_with('/') { path.to_string() } else { format!("/v2/{path}") };
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    headers.push(("Host".into(), common::HOST.into()));
    if first & 0x80 != 0 {
        headers.push(("Authorization".into(), format!("Bearer {}", common::TOKEN)));
    }
    let method = Method::parse(METHODS[(first & 7) as usize]);
    // Never the RUN backend: it starts containers, which is not what this target is about.
    if path.starts_with("/api/run") {
        return;
    }
    let body = body.as_bytes().to_vec();
    let len = body.len() as u64;
    let mut req = Request::new(method, &path, headers, Box::new(Cursor::new(body)), Some(len));
    let (mut resp, _) = common::service().handle(&mut req);
    assert!((100..600).contains(&resp.status), "status {}", resp.status);
    let mut out = Vec::new();
    let _ = resp.body.by_ref().take(64 << 20).read_to_end(&mut out);
    if let Some(n) = resp.len {
        assert!(out.len() as u64 == n || resp.status == 200 && n > 64 << 20, "body {} != length {n}", out.len());
    }
});
