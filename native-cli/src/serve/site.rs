//! The static site: files embedded at build time (or from `--www DIR`), with content types, gzip for clients that
//! accept it, and caching headers (immutable for content-hashed names, revalidate for everything else).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::http::Request;
use anyhow::{bail, Result};

use super::reply::{header, percent_decode, Reply};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/site_files.rs"));
}

const PLACEHOLDER: &str = "<!doctype html><meta charset=utf-8><title>Layerwright</title>\
<h1>Layerwright</h1><p>This <code>layerwright</code> binary was built without the site. Run \
<code>cargo xtask build</code> (it builds <code>www/dist/</code>) and rebuild the CLI, or start \
<code>layerwright serve --www www/dist</code>.</p><p>The registry (<code>/v2/</code>), the proxy \
(<code>/proxy/HOST/v2/…</code>) and the RUN backend (<code>/api/run</code>) work regardless.</p>\n";

pub struct Site {
    dir: Option<PathBuf>,
}

/// Content type by file extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "txt" | "md" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ts" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn compressible(ct: &str) -> bool {
    ct.starts_with("text/")
        || ct.starts_with("application/json")
        || ct == "application/wasm"
        || ct == "image/svg+xml"
        || ct == "application/manifest+json"
}

/// Whether a file name carries a content hash (`app-3f9a1c0b.js`, `main.3f9a1c0b7d.css`), so it never changes.
pub fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    stem.split(['-', '.', '_']).skip(1).any(|part| {
        part.len() >= 8
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
            && part.bytes().any(|b| b.is_ascii_digit())
    })
}

impl Site {
    pub fn new(dir: Option<PathBuf>) -> Result<Site> {
        if let Some(d) = &dir {
            if !d.is_dir() {
                bail!("--www {}: not a directory", d.display());
            }
        }
        Ok(Site { dir })
    }

    /// Whether the embedded copy of the site is present.
    pub fn embedded() -> bool {
        !embedded::FILES.is_empty()
    }

    fn lookup(&self, rel: &str) -> Option<(Box<dyn Read + Send>, u64)> {
        match &self.dir {
            Some(d) => {
                let mut p = d.clone();
                for c in Path::new(rel).components() {
                    match c {
                        Component::Normal(s) => p.push(s),
                        _ => return None,
                    }
                }
                if p.is_dir() {
                    p.push("index.html");
                }
                let f = std::fs::File::open(&p).ok()?;
                let len = f.metadata().ok()?.len();
                Some((Box::new(f), len))
            }
            None => {
                let rel = if rel.is_empty() { "index.html" } else { rel };
                let found = embedded::FILES.iter().find(|(n, _)| *n == rel).or_else(|| {
                    let idx = format!("{}/index.html", rel.trim_end_matches('/'));
                    embedded::FILES.iter().find(|(n, _)| *n == idx)
                });
                match found {
                    Some((_, b)) => Some((Box::new(*b), b.len() as u64)),
                    None if rel == "index.html" && embedded::FILES.is_empty() => {
                        Some((Box::new(PLACEHOLDER.as_bytes()), PLACEHOLDER.len() as u64))
                    }
                    None => None,
                }
            }
        }
    }

    pub fn serve(&self, req: &Request, path: &str) -> Reply {
        let rel = percent_decode(path.trim_start_matches('/'));
        if rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('\\') || rel.contains('\0')
        {
            return Reply::text(400, "bad path");
        }
        let Some((reader, len)) = self.lookup(&rel) else {
            return Reply::text(404, "not found");
        };
        let name = if rel.is_empty() || rel.ends_with('/') {
            "index.html".to_string()
        } else if self.dir.as_ref().is_some_and(|d| d.join(&rel).is_dir()) {
            format!("{rel}/index.html")
        } else {
            rel.clone()
        };
        let ct = content_type(&name);
        let cache = if is_hashed(&name) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let mut r = Reply::new(200)
            .header("Content-Type", ct)
            .header("Cache-Control", cache)
            .header("Vary", "Accept-Encoding")
            .header("Referrer-Policy", "no-referrer");
        let gzip_ok = header(req, "accept-encoding")
            .map(|v| {
                v.split(',').any(|t| {
                    let mut it = t.split(';');
                    let name = it.next().unwrap_or("").trim();
                    let q0 = it.any(|p| p.trim().replace(' ', "") == "q=0");
                    name.eq_ignore_ascii_case("gzip") && !q0
                })
            })
            .unwrap_or(false);
        if gzip_ok && compressible(ct) && len > 256 {
            r = r.header("Content-Encoding", "gzip");
            let enc = flate2::read::GzEncoder::new(reader, flate2::Compression::fast());
            r.stream(Box::new(enc), None)
        } else {
            r.stream(reader, Some(len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_and_types() {
        assert!(is_hashed("assets/app-3f9a1c0b.js"));
        assert!(is_hashed("main.3f9a1c0b7d.css"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("pkg/layerwright_wasm_bg.wasm"));
        assert_eq!(content_type("x.wasm"), "application/wasm");
        assert!(content_type("a.js").starts_with("text/javascript"));
    }
}
