//! Credentials, token scopes, the token cache and token-endpoint responses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

use crate::Error;

/// What we authenticate with.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials: anonymous bearer tokens only.
    #[default]
    Anonymous,
    /// Username and password: `Authorization: Basic` for basic-auth registries and for token endpoints.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`): exchanged by `POST` to the token endpoint.
    RefreshToken { username: String, token: String },
    /// A ready bearer token sent as is (docker's `registrytoken`).
    BearerToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, ***)"),
            Credentials::RefreshToken { username, .. } => {
                write!(f, "RefreshToken({username:?}, ***)")
            }
            Credentials::BearerToken(_) => f.write_str("BearerToken(***)"),
        }
    }
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Self {
        Credentials::Basic {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// The `Authorization: Basic …` value, for basic credentials.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credentials::Basic { username, password } => Some(basic_header(username, password)),
            _ => None,
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } | Credentials::RefreshToken { username, .. } => {
                Some(username)
            }
            _ => None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Credentials::Anonymous)
    }
}

/// `Basic base64(user:pass)`.
pub fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// A token scope: `repository:library/ubuntu:pull,push`, `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub resource_type: String,
    pub name: String,
    pub actions: BTreeSet<String>,
}

impl Scope {
    pub fn new(resource_type: &str, name: &str, actions: &[&str]) -> Scope {
        Scope {
            resource_type: resource_type.to_string(),
            name: name.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `repository:<name>:<actions>`.
    pub fn repository(name: &str, actions: &[&str]) -> Scope {
        Scope::new("repository", name, actions)
    }

    /// Parse `type:name:actions` (the name may itself contain colons, e.g. a host with a port).
    pub fn parse(s: &str) -> Option<Scope> {
        let first = s.find(':')?;
        let last = s.rfind(':')?;
        if last <= first {
            return None;
        }
        let actions: BTreeSet<String> = s[last + 1..]
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        Some(Scope {
            resource_type: s[..first].to_string(),
            name: s[first + 1..last].to_string(),
            actions,
        })
    }

    /// Whether this scope grants everything `other` asks for.
    pub fn covers(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type
            && self.name == other.name
            && (self.actions.contains("*") || other.actions.is_subset(&self.actions))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actions: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            actions.join(",")
        )
    }
}

/// Merge scopes: one entry per resource with the union of actions, sorted.
pub fn merge_scopes(scopes: impl IntoIterator<Item = Scope>) -> Vec<Scope> {
    let mut map: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for s in scopes {
        map.entry((s.resource_type, s.name))
            .or_default()
            .extend(s.actions);
    }
    map.into_iter()
        .map(|((resource_type, name), actions)| Scope {
            resource_type,
            name,
            actions,
        })
        .collect()
}

/// Scopes from a challenge's `scope` parameter (space-separated).
pub fn scopes_from_challenge(param: &str) -> Vec<Scope> {
    param
        .split_ascii_whitespace()
        .filter_map(Scope::parse)
        .collect()
}

/// Where bearer tokens come from, as learned from a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerRealm {
    pub realm: String,
    pub service: Option<String>,
}

/// The authentication scheme a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    Basic,
    Bearer(BearerRealm),
}

/// Tokens obtained so far, each with the scopes it was issued for. No expiry bookkeeping (the core has no clock):
/// a token the registry refuses is dropped and a new one fetched.
#[derive(Debug, Default, Clone)]
pub struct TokenCache {
    entries: Vec<(Vec<Scope>, String)>,
}

impl TokenCache {
    /// A cached token whose scopes cover all of `wanted`.
    pub fn find(&self, wanted: &[Scope]) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(have, _)| wanted.iter().all(|w| have.iter().any(|h| h.covers(w))))
            .map(|(_, t)| t.as_str())
    }

    pub fn insert(&mut self, scopes: Vec<Scope>, token: String) {
        self.entries.retain(|(s, _)| *s != scopes);
        self.entries.push((scopes, token));
        // Keep the cache small; old entries are the least likely to be reused.
        if self.entries.len() > 64 {
            self.entries.remove(0);
        }
    }

    /// Forget a token the registry refused.
    pub fn remove_token(&mut self, token: &str) {
        self.entries.retain(|(_, t)| t != token);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Deserialize)]
struct TokenJson {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub token: String,
    pub refresh_token: Option<String>,
}

/// Parse a token endpoint's JSON: `token` or `access_token` (the OAuth2 name), optional `refresh_token`.
pub fn parse_token_response(realm: &str, body: &[u8]) -> Result<TokenResponse, Error> {
    let j: TokenJson = serde_json::from_slice(body).map_err(|e| Error::InvalidDocument {
        what: format!("token response from {realm}"),
        message: e.to_string(),
    })?;
    let token = j
        .token
        .filter(|t| !t.is_empty())
        .or(j.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| Error::InvalidDocument {
            what: format!("token response from {realm}"),
            message: "neither `token` nor `access_token` is set".into(),
        })?;
    Ok(TokenResponse {
        token,
        refresh_token: j.refresh_token.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parse_and_print() {
        let s = Scope::parse("repository:localhost:5000/a/b:pull,push").unwrap();
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.name, "localhost:5000/a/b");
        assert_eq!(s.to_string(), "repository:localhost:5000/a/b:pull,push");
        assert!(Scope::parse("nonsense").is_none());
        let cat = Scope::parse("registry:catalog:*").unwrap();
        assert!(cat.covers(&Scope::new("registry", "catalog", &["*"])));
    }

    #[test]
    fn merging_and_covering() {
        let m = merge_scopes([
            Scope::repository("a", &["pull"]),
            Scope::repository("b", &["pull"]),
            Scope::repository("a", &["push"]),
        ]);
        assert_eq!(
            m.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["repository:a:pull,push", "repository:b:pull"]
        );
        let mut cache = TokenCache::default();
        cache.insert(m, "T".into());
        assert_eq!(cache.find(&[Scope::repository("a", &["pull"])]), Some("T"));
        assert_eq!(cache.find(&[Scope::repository("b", &["push"])]), None);
        cache.remove_token("T");
        assert!(cache.is_empty());
    }

    #[test]
    fn token_json_variants() {
        let t = parse_token_response("r", br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.token, "abc");
        let t =
            parse_token_response("r", br#"{"access_token":"xyz","refresh_token":"rt"}"#).unwrap();
        assert_eq!(t.token, "xyz");
        assert_eq!(t.refresh_token.as_deref(), Some("rt"));
        assert!(parse_token_response("r", br#"{"token":""}"#).is_err());
        assert!(parse_token_response("r", b"<html>").is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::basic("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic_header().unwrap(), "Basic dTpodW50ZXIy");
    }
}
