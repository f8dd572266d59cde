//! Load on `layerwright serve`'s embedded registry: 50 clients pull a 50 MB image at once (manifest, config, layer
//! streamed and hashed), every digest must match; prints throughput and p50/p99 pull latency.

use crate::common::load;
use crate::common::serve as serve_fixtures;

use serve_fixtures::Served;

const CLIENTS: usize = 50;

#[test]
fn fifty_concurrent_pulls_of_a_50mb_image() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let digests = load::make_image(&root);
    let srv = Served::start(&root, |c| c.threads = 32);
    let r = load::round(srv.addr, "/v2/load/big", CLIENTS, &digests);
    println!(
        "load: {CLIENTS} concurrent pulls of a {} MB image, all digests correct: {:.1} MB in {:.2}s = {:.0} MB/s; \
latency p50 {:.2}s, p99 {:.2}s",
        load::LAYER_MB,
        r.bytes as f64 / 1e6,
        r.wall,
        r.mb_per_s,
        r.p50,
        r.p99
    );
}
