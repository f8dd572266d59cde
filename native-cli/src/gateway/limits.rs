//! The public proxy's per-client rate limit (a token bucket per IP address) and its Prometheus counters.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Buckets kept before full ones are forgotten (a full bucket is the same as no bucket).
const MAX_BUCKETS: usize = 100_000;

/// Token buckets per client: `rate` requests a second on average, bursts of `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` 0 turns the limit off.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `ip` at `now`; `Err(seconds)` says when the next one is due.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut b = self.buckets.lock().expect("rate buckets");
        if b.len() >= MAX_BUCKETS {
            let (rate, burst) = (self.rate, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// Counters shown at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: [AtomicU64; 5],
    pub bytes_sent: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub rate_limited: AtomicU64,
    pub in_flight: AtomicU64,
}

impl Metrics {
    pub fn count_status(&self, status: u16) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text format; `cache` is (bytes, entries, cap) when there is a cache.
    pub fn render(&self, cache: Option<(u64, usize, u64)>) -> String {
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, u64)>| {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in lines {
                s.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "layerwright_proxy_requests_total",
            "counter",
            "Requests answered, by status class.",
            (0..5)
                .map(|i| (format!("{{code=\"{}xx\"}}", i + 1), get(&self.requests[i])))
                .collect(),
        );
        for (name, kind, help, v) in [
            (
                "layerwright_proxy_response_bytes_total",
                "counter",
                "Response body bytes sent.",
                &self.bytes_sent,
            ),
            (
                "layerwright_proxy_cache_hits_total",
                "counter",
                "Requests answered from the disk cache.",
                &self.cache_hits,
            ),
            (
                "layerwright_proxy_cache_misses_total",
                "counter",
                "Cacheable requests sent upstream.",
                &self.cache_misses,
            ),
            (
                "layerwright_proxy_upstream_errors_total",
                "counter",
                "Upstream failures and time-outs (502, 504).",
                &self.upstream_errors,
            ),
            (
                "layerwright_proxy_rate_limited_total",
                "counter",
                "Requests refused with 429.",
                &self.rate_limited,
            ),
            (
                "layerwright_proxy_in_flight",
                "gauge",
                "Requests being answered.",
                &self.in_flight,
            ),
        ] {
            metric(name, kind, help, vec![(String::new(), get(v))]);
        }
        if let Some((bytes, entries, cap)) = cache {
            metric(
                "layerwright_proxy_cache_bytes",
                "gauge",
                "Bytes in the disk cache.",
                vec![(String::new(), bytes)],
            );
            metric(
                "layerwright_proxy_cache_entries",
                "gauge",
                "Entries in the disk cache.",
                vec![(String::new(), entries as u64)],
            );
            metric(
                "layerwright_proxy_cache_max_bytes",
                "gauge",
                "The disk cache's cap.",
                vec![(String::new(), cap)],
            );
        }
        s
    }
}

/// A response body that counts the bytes read from it into `/metrics`.
pub struct Counted {
    pub inner: Box<dyn Read + Send>,
    pub metrics: Arc<Metrics>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.metrics
            .bytes_sent
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_the_rate() {
        let l = RateLimiter::new(2.0, 3.0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take(ip, t0), Ok(()));
        }
        assert_eq!(l.take(ip, t0), Err(1));
        assert_eq!(l.take(other, t0), Ok(()), "buckets are per client");
        assert_eq!(l.take(ip, t0 + Duration::from_millis(500)), Ok(()));
        assert!(l.take(ip, t0 + Duration::from_millis(500)).is_err());
        assert_eq!(RateLimiter::new(0.0, 1.0).take(ip, t0), Ok(()));
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let m = Metrics::default();
        m.count_status(200);
        m.count_status(429);
        m.cache_hits.fetch_add(3, Ordering::Relaxed);
        let t = m.render(Some((10, 1, 100)));
        assert!(
            t.contains("layerwright_proxy_requests_total{code=\"2xx\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("layerwright_proxy_requests_total{code=\"4xx\"} 1\n"));
        assert!(t.contains("layerwright_proxy_cache_hits_total 3\n"));
        assert!(t.contains(
            "# TYPE layerwright_proxy_cache_bytes gauge\nlayerwright_proxy_cache_bytes 10\n"
        ));
    }
}
