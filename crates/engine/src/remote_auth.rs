//! Which `Authorization` value a download of a remote source carries, from the build's secrets, by BuildKit's
//! names and precedence: one rule for every host (the CLI reads its `--secret` files, the tab its `secrets`), so
//! both send the same header for the same build. Pure: the host looks the secrets up and sends the request.

/// The authority of a URL as Go's `url.URL.Host` gives it: `host[:port]` as written, without user info; `None`
/// when the URL has no `scheme://`.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let a = &rest[..end];
    Some(a.rsplit_once('@').map_or(a, |(_, h)| h))
}

/// The host of a URL without port (and without an IPv6 address's brackets), as Go's `url.URL.Hostname()`.
fn hostname(url: &str) -> Option<&str> {
    let a = authority(url)?;
    Some(match a.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => a.split(':').next().unwrap_or(""),
    })
}

/// `ADD <url>`'s `Authorization` (BuildKit's http source): the secret `HTTP_AUTH_HEADER_<host>` as the whole value,
/// then `HTTP_AUTH_TOKEN_<host>` as `Bearer TOKEN`, which wins when both are given (BuildKit sets the header for
/// each it finds, in that order). `<host>` has no port. `secret` answers a secret's value by id.
pub fn http_authorization<E>(
    url: &str,
    mut secret: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<String>, E> {
    let Some(host) = hostname(url) else {
        return Ok(None);
    };
    let header = secret(&format!("HTTP_AUTH_HEADER_{host}"))?;
    let token = secret(&format!("HTTP_AUTH_TOKEN_{host}"))?;
    Ok(token.map(|t| format!("Bearer {t}")).or(header))
}

/// A git fetch's `Authorization` over HTTP(S) (BuildKit's git source, `authSecretNames`): the first secret found of
/// `GIT_AUTH_HEADER.<host:port>`, `GIT_AUTH_TOKEN.<host:port>`, `GIT_AUTH_HEADER`, `GIT_AUTH_TOKEN`; a header is the
/// whole value, a token is sent as `basic base64(x-access-token:TOKEN)`. `<host:port>` is the remote's authority as
/// written (no user info). `None` for other remotes (SSH, `git://`): they carry no header. The value is for
/// `remote` only (BuildKit scopes it with `http.<remote>.extraheader`); the host must not send it elsewhere.
pub fn git_authorization<E>(
    remote: &str,
    mut secret: impl FnMut(&str) -> Result<Option<String>, E>,
) -> Result<Option<String>, E> {
    if !remote.starts_with("https://") && !remote.starts_with("http://") {
        return Ok(None);
    }
    let host = authority(remote).unwrap_or("");
    for (id, token) in [
        (format!("GIT_AUTH_HEADER.{host}"), false),
        (format!("GIT_AUTH_TOKEN.{host}"), true),
        ("GIT_AUTH_HEADER".to_string(), false),
        ("GIT_AUTH_TOKEN".to_string(), true),
    ] {
        if let Some(v) = secret(&id)? {
            return Ok(Some(if token {
                format!("basic {}", base64(format!("x-access-token:{v}").as_bytes()))
            } else {
                v
            }));
        }
    }
    Ok(None)
}

/// Standard base64 with padding (RFC 4648), as Go's `base64.StdEncoding`.
fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn lookup<'a>(
        s: &'a BTreeMap<&str, &str>,
    ) -> impl FnMut(&str) -> Result<Option<String>, ()> + 'a {
        |id| Ok(s.get(id).map(|v| v.to_string()))
    }

    /// BuildKit's secret names and precedence for `ADD <url>`.
    #[test]
    fn http_sources() {
        let s = BTreeMap::from([
            ("HTTP_AUTH_HEADER_a.example", "Basic abc"),
            ("HTTP_AUTH_HEADER_b.example", "Basic b"),
            ("HTTP_AUTH_TOKEN_b.example", "tok"),
            ("HTTP_AUTH_TOKEN_::1", "six"),
        ]);
        let auth = |u: &str| http_authorization(u, lookup(&s)).unwrap();
        // The host without its port, user info left out.
        assert_eq!(auth("https://a.example:9/x").as_deref(), Some("Basic abc"));
        assert_eq!(
            auth("https://u:p@a.example/x").as_deref(),
            Some("Basic abc")
        );
        // The token wins over the header.
        assert_eq!(auth("https://b.example/x").as_deref(), Some("Bearer tok"));
        assert_eq!(auth("http://[::1]:8080/x").as_deref(), Some("Bearer six"));
        assert_eq!(auth("https://c.example/x"), None);
        assert_eq!(auth("https://a.example.evil/x"), None);
    }

    /// BuildKit's order for git: per host (with port) first, the header before the token; a token as basic.
    #[test]
    fn git_remotes() {
        let s = BTreeMap::from([
            ("GIT_AUTH_TOKEN", "gt"),
            ("GIT_AUTH_HEADER.h.example:8443", "Custom h"),
            ("GIT_AUTH_TOKEN.t.example", "pt"),
            ("GIT_AUTH_TOKEN.h.example:8443", "never: the header wins"),
        ]);
        let git = |u: &str| git_authorization(u, lookup(&s)).unwrap();
        assert_eq!(
            git("https://h.example:8443/r.git").as_deref(),
            Some("Custom h")
        );
        // The same host on another port is another host.
        assert_eq!(
            git("https://h.example/r.git").as_deref(),
            Some(&*format!("basic {}", base64(b"x-access-token:gt")))
        );
        assert_eq!(
            git("https://user@t.example/r.git").as_deref(),
            Some(&*format!("basic {}", base64(b"x-access-token:pt")))
        );
        // No header for remotes that are not HTTP(S).
        assert_eq!(git("git@h.example:r.git"), None);
        assert_eq!(git("ssh://h.example:8443/r.git"), None);
        assert_eq!(git("git://h.example/r.git"), None);
        // The plain header wins over the plain token.
        let s2 = BTreeMap::from([("GIT_AUTH_TOKEN", "gt"), ("GIT_AUTH_HEADER", "Bearer x")]);
        assert_eq!(
            git_authorization("http://o/r.git", lookup(&s2))
                .unwrap()
                .as_deref(),
            Some("Bearer x")
        );
        assert_eq!(
            git_authorization("http://o/r.git", lookup(&BTreeMap::new())).unwrap(),
            None
        );
    }

    /// A lookup's error stops the search (the CLI cannot read a secret file).
    #[test]
    fn lookup_errors_are_returned() {
        let r = git_authorization("https://h/r.git", |id| Err(format!("cannot read {id}")));
        assert_eq!(r.unwrap_err(), "cannot read GIT_AUTH_HEADER.h");
    }

    /// RFC 4648's test vectors, and the corpus's recorded header (`add_https`'s `https-auth`).
    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(
            base64(b"x-access-token:gtok"),
            "eC1hY2Nlc3MtdG9rZW46Z3Rvaw=="
        );
    }
}
