//! `layerwright proxy`: command-line flags for the public CORS gateway for OCI registries.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use layerwright::gateway::{GatewayConfig, GatewayServer};

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8081", value_name = "ADDR")]
    pub addr: String,
    /// Give CORS headers to this origin (e.g. https://site.example; `*` for any); repeatable
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Only proxy to this registry host (`*.domain` for its subdomains); repeatable. Default: Docker Hub, GHCR,
    /// Quay, gcr.io and *.pkg.dev, ECR Public, MCR
    #[arg(long = "allow-upstream", value_name = "HOST")]
    pub allow_upstream: Vec<String>,
    /// Cache anonymous pulls by digest in this directory (default: no cache)
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The cache's size cap (bytes, or with K, M, G, T)
    #[arg(long = "cache-max", default_value = "10G", value_name = "SIZE")]
    pub cache_max: String,
    /// Requests a second per client IP (0: no limit)
    #[arg(long, default_value_t = 20.0, value_name = "N")]
    pub rate: f64,
    /// Requests a client may make at once before the rate applies
    #[arg(long, default_value_t = 200.0, value_name = "N")]
    pub burst: f64,
    /// Take the client address from X-Forwarded-For (only behind a CDN or load balancer that sets it)
    #[arg(long = "trust-forwarded-for")]
    pub trust_forwarded_for: bool,
    /// Seconds an upstream may stay silent
    #[arg(long = "upstream-timeout", default_value_t = 30, value_name = "SECS")]
    pub upstream_timeout: u64,
    /// The proxy's public URL (for the token realms it hands out); default: from the Host header
    #[arg(long = "public-url", value_name = "URL")]
    pub public_url: Option<String>,
    /// Requests handled at once
    #[arg(long, default_value_t = 64)]
    pub threads: usize,
}

/// `10G` → bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("--cache-max {s}: not a size (e.g. 500M, 10G)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("--cache-max {s}: too large"))
}

pub fn proxy(args: ProxyArgs) -> Result<()> {
    let addr = {
        use std::net::ToSocketAddrs;
        args.addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| anyhow!("--addr {}: not an address", args.addr))?
    };
    if !(args.rate >= 0.0 && args.burst >= 1.0) {
        bail!("--rate must be 0 or more and --burst 1 or more");
    }
    let mut cfg = GatewayConfig::new(addr);
    cfg.cors_origins = args.cors_origin;
    cfg.allow_upstream = args.allow_upstream;
    cfg.cache_dir = args.cache_dir;
    cfg.cache_max = parse_size(&args.cache_max)?;
    cfg.rate = args.rate;
    cfg.burst = args.burst;
    cfg.trust_forwarded_for = args.trust_forwarded_for;
    cfg.upstream_timeout = Duration::from_secs(args.upstream_timeout.max(1));
    cfg.public_url = args.public_url;
    cfg.threads = args.threads;
    if cfg.cors_origins.is_empty() {
        eprintln!(
            "warning: no --cors-origin: browsers will not be able to read the proxy's answers"
        );
    }
    let server = GatewayServer::start(cfg)?;
    println!("http://{}/", server.addr());
    eprintln!(
        "layerwright proxy: http://{0}/proxy/HOST/v2/..., /healthz, /metrics",
        server.addr()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.wait();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("3m").unwrap(), 3 << 20);
        assert!(parse_size("x").is_err());
    }
}
