//! Which certificate authorities HTTPS trusts, as Go (and so BuildKit and docker) chooses them on Linux:
//! `SSL_CERT_FILE` (a PEM bundle) and `SSL_CERT_DIR` (directories of PEM files) when set, else the system bundle
//! (Debian's `/etc/ssl/certs/ca-certificates.crt`, or the other distributions' paths Go tries), else Mozilla's roots
//! built into the binary (a `scratch` container has no system bundle).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, bail, Context as _, Result};
use ureq::tls::{Certificate, PemItem, RootCerts};

/// Go's list of system bundles on Linux (crypto/x509/root_linux.go), first found wins.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificates of one PEM file (other PEM sections are skipped).
fn pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item.map_err(|e| anyhow!("{}: {e}", path.display()))? {
            PemItem::Certificate(c) => out.push(c),
            _ => continue,
        }
    }
    Ok(out)
}

/// The roots for `ssl_cert_file` / `ssl_cert_dir` (the variables' values), Go's way.
pub fn roots_from(ssl_cert_file: Option<&str>, ssl_cert_dir: Option<&str>) -> Result<RootCerts> {
    let mut certs = Vec::new();
    match ssl_cert_file.filter(|f| !f.is_empty()) {
        Some(f) => {
            certs = pem_certs(Path::new(f)).context("SSL_CERT_FILE")?;
            if certs.is_empty() {
                bail!("SSL_CERT_FILE={f}: no PEM certificate in it");
            }
        }
        None => {
            if let Some(b) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
                certs = pem_certs(b)?;
            }
        }
    }
    // SSL_CERT_DIR: colon-separated directories; every readable PEM file in them adds its certificates.
    for dir in ssl_cert_dir
        .unwrap_or("")
        .split(':')
        .filter(|d| !d.is_empty())
    {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            certs.extend(pem_certs(f).unwrap_or_default());
        }
    }
    Ok(if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(certs))
    })
}

/// The process's roots (from its environment), read once.
pub fn roots() -> Result<RootCerts> {
    static ROOTS: OnceLock<Result<RootCerts, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let file = std::env::var("SSL_CERT_FILE").ok();
            let dir = std::env::var("SSL_CERT_DIR").ok();
            roots_from(file.as_deref(), dir.as_deref()).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_bundle_replaces_the_system_one_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("lw-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = roots_from(Some(empty.to_str().unwrap()), None).unwrap_err();
        assert!(format!("{e:#}").contains("no PEM certificate"), "{e:#}");
        let e = roots_from(Some("/nonexistent/ca.pem"), None).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/ca.pem"), "{e:#}");
        // No variable: the system bundle when there is one, else the built-in roots.
        let r = roots_from(None, None).unwrap();
        let system = SYSTEM_BUNDLES.iter().any(|p| Path::new(p).is_file());
        assert_eq!(matches!(r, RootCerts::Specific(_)), system);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
