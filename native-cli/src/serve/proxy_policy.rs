//! What a registry proxy may do ([`Policy`]): serve's (any upstream, pushes, the machine's credentials) or the public
//! gateway's (an allow-list, the read side of the API only, no credentials of its own), and the checks behind it.

use std::collections::HashMap;
use std::time::Duration;

use super::proxy::{err, repo_of};
use super::reply::Reply;
use super::Config;
use crate::http::HttpOptions;

/// The public gateway's registries when `--allow-upstream` is not given: Docker Hub, GHCR, Quay, gcr.io and
/// Artifact Registry, ECR Public, MCR. `*.` matches any subdomain.
pub const PUBLIC_UPSTREAMS: &[&str] = &[
    "registry-1.docker.io",
    "docker.io",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "*.gcr.io",
    "*.pkg.dev",
    "public.ecr.aws",
    "mcr.microsoft.com",
];

/// What a proxy may do.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Upstream hosts (`host[:port]`, or `*.domain`); empty = any.
    pub allow: Vec<String>,
    /// Only the read side of the distribution API: GET/HEAD of `/v2/`, manifests, blobs, tag lists, referrers.
    pub read_only: bool,
    /// Use credentials configured on this machine (`creds`, then docker's config.json) when the client sends
    /// none. Never for a public proxy: it would lend the operator's access to everyone.
    pub server_credentials: bool,
    /// Upstream credentials by registry host.
    pub creds: HashMap<String, (String, String)>,
    /// Forward a client's `Authorization: Bearer` upstream (the public proxy: tokens from its token endpoint).
    /// serve's own tokens are Bearer too, so serve keeps them.
    pub forward_bearer: bool,
    /// Upstream connect and read time-outs.
    pub http: HttpOptions,
}

impl Policy {
    /// serve's proxy: any upstream unless `--allow-upstream`, pushes with serve's token, the machine's credentials.
    pub fn serve(cfg: &Config) -> Policy {
        Policy {
            allow: lower(&cfg.allow_upstream),
            read_only: false,
            server_credentials: true,
            creds: cfg
                .proxy_credentials
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            forward_bearer: false,
            http: HttpOptions::default(),
        }
    }

    /// The public gateway's: `allow` (default [`PUBLIC_UPSTREAMS`]), reads only, no credentials of its own.
    pub fn public(allow: &[String], timeout: Duration) -> Policy {
        let allow = if allow.is_empty() {
            PUBLIC_UPSTREAMS.iter().map(|s| s.to_string()).collect()
        } else {
            lower(allow)
        };
        Policy {
            allow,
            read_only: true,
            server_credentials: false,
            creds: HashMap::new(),
            forward_bearer: true,
            http: HttpOptions {
                connect_timeout: timeout.min(Duration::from_secs(10)),
                io_timeout: timeout,
                ..HttpOptions::default()
            },
        }
    }

    /// Whether `host` (lower case, maybe with a port) is on the allow-list.
    pub fn allows(&self, host: &str) -> bool {
        self.allow.is_empty()
            || self.allow.iter().any(|a| match a.strip_prefix("*.") {
                Some(dom) => {
                    let name = host.rsplit_once(':').map(|(n, _)| n).unwrap_or(host);
                    name.len() > dom.len() + 1
                        && name.ends_with(dom)
                        && name.as_bytes()[name.len() - dom.len() - 1] == b'.'
                }
                None => a == host,
            })
    }
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|h| h.trim().to_ascii_lowercase()).collect()
}

/// Whether a read-only proxy serves `path`: the ping, manifests, blobs (not uploads), tag lists and referrers.
pub fn readable_path(path: &str) -> Result<(), Reply> {
    if path == "/v2/" || path == "/v2" {
        return Ok(());
    }
    if path.starts_with("/v2/_catalog") {
        return Err(err(
            403,
            "DENIED",
            "the public proxy does not serve the catalog",
        ));
    }
    let Some(name) = repo_of(path) else {
        return Err(err(404, "NOT_FOUND", "not a registry read API path"));
    };
    let rest = &path[4 + name.len()..];
    let ok = match rest.split_once('/').map(|(_, r)| r).unwrap_or("") {
        r if r.starts_with("manifests/") => !r[10..].is_empty() && !r[10..].contains('/'),
        r if r.starts_with("blobs/uploads") => false,
        r if r.starts_with("blobs/") => !r[6..].is_empty() && !r[6..].contains('/'),
        "tags/list" => true,
        r if r.starts_with("referrers/") => !r[10..].contains('/'),
        _ => false,
    };
    if ok {
        Ok(())
    } else if rest.contains("/blobs/uploads") {
        Err(err(
            405,
            "UNSUPPORTED",
            "the public proxy is read-only: no pushes",
        ))
    } else {
        Err(err(404, "NOT_FOUND", "not a registry read API path"))
    }
}

/// An IP literal in a private, link-local, loopback or unspecified range.
pub fn private_ip(host: &str) -> bool {
    let name = host.rsplit_once(':').map(|(n, _)| n).unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    match name.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_loopback()
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_unspecified()
                || ip.is_loopback()
                || (ip.segments()[0] & 0xfe00) == 0xfc00
                || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_paths() {
        for ok in [
            "/v2/",
            "/v2/library/busybox/manifests/latest",
            "/v2/a/b/c/blobs/sha256:00",
            "/v2/a/tags/list",
            "/v2/a/referrers/sha256:00",
        ] {
            assert!(readable_path(ok).is_ok(), "{ok}");
        }
        for (bad, status) in [
            ("/v2/_catalog", 403),
            ("/v2/a/blobs/uploads/", 405),
            ("/v2/a/blobs/uploads/123", 405),
            ("/v2/a/manifests/", 404),
            ("/v2/a/other", 404),
        ] {
            assert_eq!(
                readable_path(bad).err().map(|r| r.status),
                Some(status),
                "{bad}"
            );
        }
    }

    #[test]
    fn allow_list_patterns() {
        let p = Policy::public(&[], Duration::from_secs(5));
        for ok in ["ghcr.io", "europe-docker.pkg.dev", "us.gcr.io", "docker.io"] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "pkg.dev",
            "evilpkg.dev",
            "ghcr.io.evil",
            "127.0.0.1:5000",
            "example.com",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        assert!(private_ip("10.0.0.1") && private_ip("[::1]:80") && !private_ip("8.8.8.8"));
    }
}
