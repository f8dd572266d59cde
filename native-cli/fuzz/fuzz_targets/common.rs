//! The one `Service` every input of a fuzz process goes to: a store in a temporary directory, a fixed token,
//! answering as 127.0.0.1:5000, its proxy limited to a dead loopback port.

use std::sync::OnceLock;

use layerwright::serve::{Config, Service};

pub const HOST: &str = "127.0.0.1:5000";
pub const TOKEN: &str = "fuzz-token";

pub fn service() -> &'static Service {
    static SVC: OnceLock<(Service, std::path::PathBuf)> = OnceLock::new();
    &SVC.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lw-fuzz-{}", std::process::id()));
        let mut cfg = Config::new(HOST.parse().unwrap(), dir.clone());
        cfg.token = Some(TOKEN.into());
        // The proxy may reach one loopback port where nothing listens: fuzzed host names must never become
        // connections to other machines.
        cfg.allow_upstream = vec!["127.0.0.1:9".into()];
        (Service::open(cfg, HOST.parse().unwrap()).expect("service"), dir)
    })
    .0
}
