//! Platforms (`os/arch[/variant]`) and the predefined ARGs derived from them
//! (`TARGETPLATFORM`, `BUILDOS`, ... and the proxy ARGs).

use serde::Serialize;

use crate::Error;

/// An OCI platform as written on the command line: `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// Empty when there is none.
    pub variant: String,
}

impl Default for Platform {
    /// `linux/amd64`, the platform assumed when the caller gives none.
    fn default() -> Self {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        }
    }
}

impl Platform {
    /// Parses `os/arch[/variant]` (an architecture alone, `arm64`, means `linux/arm64`).
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let bad = || Error::Platform {
            value: s.to_string(),
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let lower = |p: &str| p.to_ascii_lowercase();
        match parts.as_slice() {
            [arch] => Ok(Platform {
                os: "linux".into(),
                architecture: lower(arch),
                variant: String::new(),
            }),
            [os, arch] => Ok(Platform {
                os: lower(os),
                architecture: lower(arch),
                variant: String::new(),
            }),
            [os, arch, variant] => Ok(Platform {
                os: lower(os),
                architecture: lower(arch),
                variant: lower(variant),
            }),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// Proxy ARGs: usable by RUN without an `ARG` line when given as build args.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The names of the automatic platform ARGs.
pub const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// The automatic platform ARGs and their values for the given platforms, in
/// [`PLATFORM_ARGS`] order.
pub fn platform_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(8);
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        out.push((format!("{prefix}PLATFORM"), p.to_string()));
        out.push((format!("{prefix}OS"), p.os.clone()));
        out.push((format!("{prefix}ARCH"), p.architecture.clone()));
        out.push((format!("{prefix}VARIANT"), p.variant.clone()));
    }
    out
}

/// Whether `name` is a predefined ARG (platform or proxy).
pub fn is_predefined_arg(name: &str) -> bool {
    PLATFORM_ARGS.contains(&name) || PROXY_ARGS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_args() {
        let t = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(t.to_string(), "linux/arm64/v8");
        let b = Platform::parse("linux/amd64").unwrap();
        let a = platform_args(&t, &b);
        assert_eq!(a[0], ("TARGETPLATFORM".into(), "linux/arm64/v8".into()));
        assert_eq!(a[3], ("TARGETVARIANT".into(), "v8".into()));
        assert_eq!(a[7], ("BUILDVARIANT".into(), String::new()));
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert_eq!(Platform::parse("arm64").unwrap().os, "linux");
    }
}
