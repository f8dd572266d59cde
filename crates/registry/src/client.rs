//! The client: configuration for one registry plus the state its operations share (the auth scheme learned from
//! challenges and the token cache). Cheap to clone; operations keep a clone.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::auth::{AuthScheme, BearerRealm, Credentials, Scope, TokenCache};

/// Manifests and indexes larger than this are refused (the limit registries and containerd apply).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// When and how long to wait before trying again after 408/429/5xx or a connection failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first pause; each further one doubles.
    pub initial_backoff: Duration,
    /// No pause is longer than this, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    /// The pause before retry number `retry` (1-based): exponential, or the server's `Retry-After` if longer,
    /// capped by `max_backoff`.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let shift = retry.saturating_sub(1).min(20);
        let exp = self.initial_backoff.saturating_mul(1u32 << shift);
        let d = match retry_after {
            Some(ra) if ra > exp => ra,
            _ => exp,
        };
        d.min(self.max_backoff)
    }
}

/// How to reach one registry.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The registry as written in image references: `host[:port]` (`docker.io` is mapped to its API host).
    pub registry: String,
    /// Use `http://` instead of `https://` (the host decides when that is allowed).
    pub plain_http: bool,
    /// Prepended to every URL the core asks for, e.g. `https://cors-proxy.example/` for browsers.
    pub proxy_prefix: Option<String>,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    /// Blobs up to this size are uploaded in one `PUT`; larger ones in `PATCH` chunks of this size.
    pub chunk_size: u64,
    /// The manifest size limit (default 4 MiB).
    pub max_manifest_size: u64,
    /// The OAuth2 `client_id` sent when exchanging a refresh token.
    pub client_id: String,
    /// Where to get bearer tokens when the registry's `WWW-Authenticate` header cannot be read (browsers see it
    /// only if the registry exposes it through CORS). Also lets the first request go out with a token.
    pub token_realm: Option<BearerRealm>,
}

impl ClientConfig {
    pub fn new(registry: &str) -> Self {
        ClientConfig {
            registry: registry.to_string(),
            plain_http: false,
            proxy_prefix: None,
            credentials: Credentials::Anonymous,
            retry: RetryPolicy::default(),
            chunk_size: 16 * 1024 * 1024,
            max_manifest_size: MAX_MANIFEST_SIZE,
            client_id: "layerwright".to_string(),
            token_realm: None,
        }
    }
}

/// The host that serves the API for a registry name (`docker.io` → `registry-1.docker.io`).
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" | "registry.hub.docker.com" => "registry-1.docker.io",
        other => other,
    }
}

#[derive(Debug, Default)]
pub(crate) struct AuthState {
    pub scheme: Option<AuthScheme>,
    pub tokens: TokenCache,
}

struct Inner {
    config: ClientConfig,
    base_url: String,
    state: Mutex<AuthState>,
}

/// A registry client. Create operations from it (`client.get_manifest(...)`, …) and drive them with a transport.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("credentials", &self.inner.config.credentials)
            .finish()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        let scheme = if config.plain_http { "http" } else { "https" };
        let host = api_host(&config.registry).trim_end_matches('/');
        let base_url = format!("{scheme}://{host}");
        Client {
            inner: Arc::new(Inner {
                config,
                base_url,
                state: Mutex::new(AuthState::default()),
            }),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// `scheme://host[:port]` of the registry API, without proxy prefix.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// `base/v2/<path>`.
    pub(crate) fn v2_url(&self, path: &str) -> String {
        format!("{}/v2/{}", self.inner.base_url, path)
    }

    /// The URL to put on the wire: the proxy prefix (if any) followed by `url`.
    pub fn wire_url(&self, url: &str) -> String {
        match &self.inner.config.proxy_prefix {
            Some(p) if !p.is_empty() => format!("{p}{url}"),
            _ => url.to_string(),
        }
    }

    /// Undo the proxy prefix on a URL a proxy handed back (in a `Location`, say).
    pub(crate) fn strip_proxy<'a>(&self, url: &'a str) -> &'a str {
        match &self.inner.config.proxy_prefix {
            Some(p) if !p.is_empty() => url.strip_prefix(p.as_str()).unwrap_or(url),
            _ => url,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, AuthState> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `Authorization` value to send to the registry for `scopes` now, and the bearer token it carries.
    pub(crate) fn authorization(&self, scopes: &[Scope]) -> Option<(String, Option<String>)> {
        let creds = &self.inner.config.credentials;
        if let Credentials::BearerToken(t) = creds {
            return Some((format!("Bearer {t}"), None));
        }
        let st = self.state();
        match &st.scheme {
            Some(AuthScheme::Basic) => creds.basic_header().map(|h| (h, None)),
            Some(AuthScheme::Bearer(_)) => st
                .tokens
                .find(scopes)
                .map(|t| (format!("Bearer {t}"), Some(t.to_string()))),
            None if self.inner.config.token_realm.is_some() => st
                .tokens
                .find(scopes)
                .map(|t| (format!("Bearer {t}"), Some(t.to_string()))),
            None => None,
        }
    }

    /// The token realm learned from an earlier challenge.
    pub(crate) fn known_bearer(&self) -> Option<BearerRealm> {
        match &self.state().scheme {
            Some(AuthScheme::Bearer(b)) => Some(b.clone()),
            Some(AuthScheme::Basic) => None,
            None => self.inner.config.token_realm.clone(),
        }
    }

    /// How many bearer tokens are cached (for diagnostics and tests).
    pub fn cached_tokens(&self) -> usize {
        self.state().tokens.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1, None), Duration::from_millis(100));
        assert_eq!(p.backoff(2, None), Duration::from_millis(200));
        assert_eq!(p.backoff(3, None), Duration::from_millis(400));
        assert_eq!(p.backoff(9, None), Duration::from_secs(1));
        assert_eq!(
            p.backoff(1, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(90))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn urls_and_proxy() {
        let mut c = ClientConfig::new("docker.io");
        c.proxy_prefix = Some("https://proxy.example/".into());
        let client = Client::new(c);
        assert_eq!(client.base_url(), "https://registry-1.docker.io");
        assert_eq!(
            client.wire_url(&client.v2_url("")),
            "https://proxy.example/https://registry-1.docker.io/v2/"
        );
        assert_eq!(
            client.strip_proxy("https://proxy.example/https://x/y"),
            "https://x/y"
        );
        let mut c = ClientConfig::new("127.0.0.1:5000");
        c.plain_http = true;
        assert_eq!(Client::new(c).base_url(), "http://127.0.0.1:5000");
    }
}
