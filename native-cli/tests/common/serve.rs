//! Fixtures for `layerwright serve` tests: a server on a free 127.0.0.1 port over a store in a temporary
//! directory, spoken to with the kit's raw HTTP/1.1 client (exactly the headers a test gives).

use std::net::SocketAddr;
use std::path::Path;

pub use lw_test_kit::http::{raw, read_response, Resp};
pub use lw_test_kit::registry::skopeo_digest;

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
