#![no_main]
//! Raw bytes as an HTTP/1.1 connection to serve (hyper's parsing, our conversion, the registry, the proxy and
//! the site behind it), over an in-memory pipe. Nothing may panic, and the connection must end once the input
//! has.

use std::sync::{Arc, OnceLock};

use layerwright::serve::http::{serve_stream, Handler, Request};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[path = "common.rs"]
mod common;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let svc = common::service();
    let handler: Arc<Handler> = Arc::new(move |req: &mut Request| svc.handle(req));
    let data = data.to_vec();
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(serve_stream(server, handler));
        let writer = async {
            let _ = client.write_all(&data).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
        };
        // A connection that does not end when its input does is a hang: bounded well below libFuzzer's timeout.
        tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("serve did not end the connection after the input ended");
        let _ = task.await;
    });
});
