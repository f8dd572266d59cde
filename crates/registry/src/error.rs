//! The crate's one error type, and the OCI error envelope (`{"errors":[{code,message,detail}]}`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::http::{Method, ResponseHead};

/// One entry of the OCI error envelope a registry sends with a 4xx/5xx response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// `BLOB_UNKNOWN`, `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, …
    pub code: String,
    pub message: String,
    /// The `detail` field re-serialized as compact JSON (it may be any JSON value), when present and not null.
    pub detail: Option<String>,
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// The envelope as both sides of the wire see it: the client parses it, serve writes it (fields in the
/// distribution registry's order).
#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeEntry>,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    detail: serde_json::Value,
}

/// The body of an OCI error answer with one error and a null `detail`: what a server sends.
pub fn error_envelope(code: &str, message: &str) -> Vec<u8> {
    let env = Envelope {
        errors: vec![EnvelopeEntry {
            code: code.to_string(),
            message: message.to_string(),
            detail: serde_json::Value::Null,
        }],
    };
    serde_json::to_vec(&env).unwrap_or_default()
}

/// Parse an OCI error envelope; `None` when `body` is not one.
pub fn parse_error_envelope(body: &[u8]) -> Option<Vec<RegistryError>> {
    let env: Envelope = serde_json::from_slice(body).ok()?;
    if env.errors.is_empty() {
        return None;
    }
    Some(
        env.errors
            .into_iter()
            .map(|e| RegistryError {
                code: e.code,
                message: e.message,
                detail: match e.detail {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) if s.is_empty() => None,
                    serde_json::Value::String(s) => Some(s),
                    v => Some(v.to_string()),
                },
            })
            .collect(),
    )
}

/// A transport-level failure reported by the host: connection refused or reset, timeout, TLS, a body cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    pub message: String,
    /// Whether trying again may help (connection errors, timeouts); `false` for e.g. a TLS certificate failure or
    /// a URL the host refuses to contact.
    pub retryable: bool,
}

impl TransportError {
    /// A retryable failure (connection refused/reset, timeout, truncated body).
    pub fn new(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
            retryable: false,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The registry answered with an error status (after retries where they apply).
    #[error("{method} {url}: {}", describe_status(*.status, .errors, .body))]
    Registry {
        method: Method,
        url: String,
        status: u16,
        /// The OCI error envelope, when the body was one.
        errors: Vec<RegistryError>,
        /// The start of a body that was not an envelope (trimmed, at most 512 bytes).
        body: Option<String>,
    },
    /// Credentials were missing or refused.
    #[error("authentication to {registry} failed: {reason}")]
    Unauthorized { registry: String, reason: String },
    /// The credentials were accepted but do not grant the access asked for.
    #[error("access denied by {registry}: {reason}")]
    Denied { registry: String, reason: String },
    /// Content did not hash to the digest it was fetched or announced by.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Content ended before or ran past its announced size.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A document exceeded the size we accept (manifests: 4 MiB).
    #[error("{what} is larger than the {limit}-byte limit{}", .announced.map(|n| format!(" ({n} bytes)")).unwrap_or_default())]
    TooLarge {
        what: String,
        limit: u64,
        announced: Option<u64>,
    },
    /// The connection failed and retries (if any) were used up.
    #[error("{method} {url}: {message}{}", if *.attempts > 1 { format!(" (after {} attempts)", .attempts) } else { String::new() })]
    Transport {
        method: Method,
        url: String,
        message: String,
        attempts: u32,
    },
    /// The registry broke the protocol: a missing `Location`, a malformed header, an unexpected status.
    #[error("protocol error from {url}: {message}")]
    Protocol { url: String, message: String },
    /// A document could not be parsed.
    #[error("{what} is not a valid document: {message}")]
    InvalidDocument { what: String, message: String },
    /// An argument was not acceptable (repository name, tag, digest).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// An index has no manifest for the platform asked for.
    #[error("no manifest for platform {wanted} in {reference} (available: {})", if .available.is_empty() { "none".to_string() } else { .available.join(", ") })]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },
    /// An error from the OCI model (digests, platforms).
    #[error(transparent)]
    Oci(#[from] lw_oci::Error),
    /// An error raised by the host's own code (its blob sink or source).
    #[error("{0}")]
    Host(String),
    /// The operation was driven against its contract (a bug in the host).
    #[error("operation misuse: {0}")]
    Misuse(&'static str),
}

fn describe_status(status: u16, errors: &[RegistryError], body: &Option<String>) -> String {
    let mut s = format!("{status} {}", reason_phrase(status));
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        s.push_str(": ");
        s.push_str(&list.join("; "));
    } else if let Some(b) = body {
        s.push_str(": ");
        s.push_str(b);
    }
    s
}

/// The standard reason phrase of a status code (used only to make messages readable).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

impl Error {
    /// Build the error for an unexpected response from its head and (possibly truncated) body.
    pub fn from_response(method: Method, url: &str, head: &ResponseHead, body: &[u8]) -> Error {
        let errors = parse_error_envelope(body).unwrap_or_default();
        let body = if errors.is_empty() {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            (!text.is_empty()).then_some(text)
        } else {
            None
        };
        Error::Registry {
            method,
            url: url.to_string(),
            status: head.status,
            errors,
            body,
        }
    }

    /// Whether trying the same thing again later may succeed (429, 5xx, connection failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Registry { status, .. } => is_retryable_status(*status),
            Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether this is a 404 / *_UNKNOWN answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Registry { status: 404, .. })
    }

    /// The HTTP status of a registry answer, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the envelope carries `code` (e.g. `MANIFEST_UNKNOWN`).
    pub fn has_code(&self, code: &str) -> bool {
        matches!(self, Error::Registry { errors, .. } if errors.iter().any(|e| e.code == code))
    }
}

/// Statuses worth retrying after a pause: 408, 429 and the transient 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_envelope_parses_back() {
        let body = error_envelope("BLOB_UNKNOWN", "blob unknown to registry");
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":null}]}"#
        );
        let e = parse_error_envelope(&body).unwrap();
        assert_eq!(
            (
                e[0].code.as_str(),
                e[0].message.as_str(),
                e[0].detail.as_deref()
            ),
            ("BLOB_UNKNOWN", "blob unknown to registry", None)
        );
    }

    #[test]
    fn envelope_becomes_a_clear_message() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#;
        let head = ResponseHead::new(404);
        let e = Error::from_response(
            Method::Get,
            "https://r.example/v2/a/manifests/v9",
            &head,
            body,
        );
        assert_eq!(
            e.to_string(),
            r#"GET https://r.example/v2/a/manifests/v9: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown ({"Tag":"v9"})"#
        );
        assert!(e.is_not_found());
        assert!(e.has_code("MANIFEST_UNKNOWN"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn non_envelope_body_is_quoted() {
        let e = Error::from_response(
            Method::Put,
            "u",
            &ResponseHead::new(502),
            b"  bad gateway \n",
        );
        assert_eq!(e.to_string(), "PUT u: 502 Bad Gateway: bad gateway");
        assert!(e.is_retryable());
    }
}
