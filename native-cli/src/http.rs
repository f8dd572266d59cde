//! Blocking HTTP transport for the sans-I/O registry client: `ureq` over rustls (no OpenSSL).
//!
//! It never follows redirects (the core does, dropping credentials across hosts), never decompresses, streams
//! request and response bodies, and refuses plain HTTP except to loopback hosts or when `insecure` is set.

use std::time::Duration;

use lw_registry::{Method, Request, ResponseHead, SendBody, Transport, TransportError};
use ureq::Agent;

/// Transport settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Allow plain HTTP to any host and skip TLS certificate verification.
    pub insecure: bool,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// Longest silence while reading or writing a body.
    pub io_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            insecure: false,
            user_agent: format!("layerwright/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
        }
    }
}

/// The blocking transport. Clones share the agent's connection pool.
#[derive(Clone)]
pub struct UreqTransport {
    agent: Agent,
    insecure: bool,
}

impl std::fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UreqTransport")
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The host part of an absolute URL (no port, no brackets), lowercased.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority
        .rsplit_once('@')
        .map(|(_, a)| a)
        .unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    Some(host.to_ascii_lowercase())
}

/// Whether `host` (a registry name or URL host, with or without port) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim();
    let h = if let Some(v6) = h.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or("")
    } else {
        h
    };
    let h = h.to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

impl UreqTransport {
    pub fn new(opts: &HttpOptions) -> UreqTransport {
        // SSL_CERT_FILE/SSL_CERT_DIR or the system bundle, as Go's clients read them; a bad SSL_CERT_FILE is
        // reported when the first TLS connection needs it, with Mozilla's roots meanwhile.
        let roots = crate::tls::roots().unwrap_or_else(|e| {
            eprintln!("warning: {e:#}; using the built-in root certificates");
            ureq::tls::RootCerts::WebPki
        });
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(opts.insecure)
            .build();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(opts.user_agent.as_str())
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_per_read(Some(opts.io_timeout))
            .timeout_per_write(Some(opts.io_timeout))
            .tls_config(tls)
            .build();
        UreqTransport {
            agent: Agent::new_with_config(config),
            insecure: opts.insecure,
        }
    }

    fn check_url(&self, url: &str) -> Result<(), TransportError> {
        if url.starts_with("https://") {
            return Ok(());
        }
        if let Some(_rest) = url.strip_prefix("http://") {
            let host = url_host(url).unwrap_or_default();
            if self.insecure || is_loopback(&host) {
                return Ok(());
            }
            return Err(TransportError::fatal(format!(
                "refusing plain HTTP to {host}: only loopback registries may use http:// unless --insecure is given"
            )));
        }
        Err(TransportError::fatal(format!("unsupported URL {url:?}")))
    }
}

fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as E;
    match e {
        E::Io(io) => TransportError::new(io.to_string()),
        E::Timeout(t) => TransportError::new(format!("timed out ({t})")),
        E::ConnectionFailed => TransportError::new("connection failed"),
        E::Protocol(p) => TransportError::new(format!("HTTP protocol error: {p}")),
        E::HostNotFound => TransportError::fatal("host not found"),
        other => TransportError::fatal(other.to_string()),
    }
}

impl Transport for UreqTransport {
    type Body = ureq::BodyReader<'static>;

    fn sleep(&mut self, duration: std::time::Duration) {
        std::thread::sleep(duration);
    }

    fn send(
        &mut self,
        request: &Request,
        body: SendBody<'_>,
    ) -> Result<(ResponseHead, Self::Body), TransportError> {
        self.check_url(&request.url)?;
        let mut b = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (k, v) in &request.headers {
            if k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            b = b.header(k.as_str(), v.as_str());
        }
        let has_body_method = matches!(request.method, Method::Post | Method::Put | Method::Patch);
        let bad =
            |e: ureq::http::Error| TransportError::fatal(format!("building the request: {e}"));
        let result = match body {
            SendBody::Empty => {
                if has_body_method {
                    b = b.header("Content-Length", "0");
                }
                self.agent.run(b.body(()).map_err(bad)?)
            }
            SendBody::Bytes(bytes) => {
                b = b.header("Content-Length", bytes.len().to_string());
                self.agent.run(b.body(bytes).map_err(bad)?)
            }
            SendBody::Reader { reader, len } => {
                b = b.header("Content-Length", len.to_string());
                self.agent
                    .run(b.body(ureq::SendBody::from_reader(reader)).map_err(bad)?)
            }
        };
        let resp = result.map_err(map_error)?;
        let (parts, body) = resp.into_parts();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let head = ResponseHead {
            status: parts.status.as_u16(),
            headers,
        };
        Ok((head, body.into_reader()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "::1",
            "[::1]:5000",
            "a.localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "192.168.1.1:5000",
            "[2001:db8::1]:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
        assert_eq!(url_host("http://[::1]:5000/v2/").as_deref(), Some("::1"));
        assert_eq!(
            url_host("https://User@Reg.Example:443/x").as_deref(),
            Some("reg.example")
        );
    }

    #[test]
    fn plain_http_only_for_loopback_unless_insecure() {
        let t = UreqTransport::new(&HttpOptions::default());
        assert!(t.check_url("http://127.0.0.1:5000/v2/").is_ok());
        assert!(t.check_url("http://[::1]:5000/v2/").is_ok());
        assert!(t.check_url("https://example.com/v2/").is_ok());
        let e = t.check_url("http://example.com/v2/").unwrap_err();
        assert!(!e.retryable && e.message.contains("--insecure"));
        let t = UreqTransport::new(&HttpOptions {
            insecure: true,
            ..Default::default()
        });
        assert!(t.check_url("http://example.com/v2/").is_ok());
    }
}
