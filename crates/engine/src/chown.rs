//! `COPY --chown` / `ADD --chown` values: parsing (BuildKit `llb.WithUser`) and name resolution
//! against the destination image's `/etc/passwd` and `/etc/group` (BuildKit `readUser`, with the
//! file formats of `moby/sys/user`).
//!
//! Rules, as in BuildKit: the value is split at the first `:` into user and group. A part that
//! is a decimal number (or `root`) is an id and is not looked up. A user given by id with no group
//! also becomes the group id (`--chown=1000` is `1000:1000`); a user given by name with no group
//! takes that user's primary group from `/etc/passwd`.
//!
//! Deliberate difference: BuildKit silently falls back to 0 for a name it cannot find; here an
//! unknown name (or a missing passwd/group file when a name must be resolved) is an error that
//! names it.

use crate::error::Error;

/// A user or group as written in `--chown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    Id(u32),
    Name(String),
}

/// A parsed `--chown` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chown {
    pub user: IdSpec,
    pub group: Option<IdSpec>,
}

/// BuildKit `parseUID`: `root` is 0; otherwise `strconv.ParseInt(s, 10, 32)` (an optional sign,
/// decimal digits). Negative ids are refused here.
fn parse_id(value: &str, part: &str, what: &str) -> Result<IdSpec, Error> {
    if part == "root" {
        return Ok(IdSpec::Id(0));
    }
    if part.is_empty() {
        return Err(Error::InvalidChown {
            value: value.to_string(),
            reason: format!("empty {what}"),
        });
    }
    let digits = part
        .strip_prefix('+')
        .or_else(|| part.strip_prefix('-'))
        .unwrap_or(part);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match part.parse::<i64>() {
            Ok(n) if (0..=i32::MAX as i64).contains(&n) => Ok(IdSpec::Id(n as u32)),
            Ok(n) if n < 0 => Err(Error::InvalidChown {
                value: value.to_string(),
                reason: format!("negative {what} id {part}"),
            }),
            _ => Err(Error::InvalidChown {
                value: value.to_string(),
                reason: format!("{what} id {part} is out of range (0 to {})", i32::MAX),
            }),
        };
    }
    Ok(IdSpec::Name(part.to_string()))
}

/// Parse `user[:group]`.
pub fn parse_chown(value: &str) -> Result<Chown, Error> {
    if value.is_empty() {
        return Err(Error::InvalidChown {
            value: String::new(),
            reason: "empty value".into(),
        });
    }
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    // BuildKit reads `:group` as uid 0 with that group.
    let user = match (user, group) {
        ("", Some(_)) => "0",
        _ => user,
    };
    Ok(Chown {
        user: parse_id(value, user, "user")?,
        group: group.map(|g| parse_id(value, g, "group")).transpose()?,
    })
}

/// One `/etc/passwd` entry (the fields BuildKit uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// One `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
}

/// Lines as Go's `bufio.ScanLines` yields them (trailing `\r` dropped), trimmed like
/// `bytes.TrimSpace`, blank lines skipped.
fn lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| {
            String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l))
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
}

/// `strconv.Atoi` with errors ignored (0), as moby/sys/user does; out-of-u32 values become 0 too.
fn atoi(s: Option<&str>) -> u32 {
    s.and_then(|s| s.parse::<i64>().ok())
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// Parse `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`).
pub fn parse_passwd(bytes: &[u8]) -> Vec<PasswdEntry> {
    lines(bytes)
        .map(|l| {
            let mut f = l.split(':');
            let name = f.next().unwrap_or("").to_string();
            let _password = f.next();
            let uid = atoi(f.next());
            let gid = atoi(f.next());
            PasswdEntry { name, uid, gid }
        })
        .collect()
}

/// Parse `/etc/group` (`name:password:gid:members`); `#` comment lines are skipped.
pub fn parse_group(bytes: &[u8]) -> Vec<GroupEntry> {
    lines(bytes)
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split(':');
            let name = f.next().unwrap_or("").to_string();
            let _password = f.next();
            GroupEntry {
                name,
                gid: atoi(f.next()),
            }
        })
        .collect()
}

impl Chown {
    /// Whether resolving needs the image's passwd / group files.
    pub fn needs_passwd(&self) -> bool {
        matches!(self.user, IdSpec::Name(_))
    }

    pub fn needs_group(&self) -> bool {
        matches!(self.group, Some(IdSpec::Name(_)))
    }

    /// Resolve to `(uid, gid)` using the bytes of the image's `/etc/passwd` and `/etc/group`
    /// (`None` when the file does not exist).
    pub fn resolve(
        &self,
        passwd: Option<&[u8]>,
        group: Option<&[u8]>,
    ) -> Result<(u32, u32), Error> {
        let (uid, mut gid) = match &self.user {
            IdSpec::Id(id) => (*id, *id),
            IdSpec::Name(name) => {
                let entries = passwd.map(parse_passwd).unwrap_or_default();
                match entries.into_iter().find(|e| &e.name == name) {
                    Some(e) => (e.uid, e.gid),
                    None => return Err(Error::UnknownUser { name: name.clone() }),
                }
            }
        };
        match &self.group {
            None => {}
            Some(IdSpec::Id(id)) => gid = *id,
            Some(IdSpec::Name(name)) => {
                let entries = group.map(parse_group).unwrap_or_default();
                match entries.into_iter().find(|e| &e.name == name) {
                    Some(e) => gid = e.gid,
                    None => return Err(Error::UnknownGroup { name: name.clone() }),
                }
            }
        }
        Ok((uid, gid))
    }
}

/// Parse and resolve in one step.
pub fn resolve_chown(
    value: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<(u32, u32), Error> {
    parse_chown(value)?.resolve(passwd, group)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\r\n  daemon:x:1:1::/:/usr/sbin/nologin\n\napp:x:1000:1001:App:/home/app:/bin/sh\nbroken:x:abc:\nroot:x:99:99::/:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\n# staff:x:50:\nstaff:x:50:app\nappgrp:x:1001:\n";

    #[test]
    fn group_only_means_uid_zero() {
        assert_eq!(resolve_chown(":50", None, None).unwrap(), (0, 50));
        assert_eq!(resolve_chown(":staff", None, Some(GROUP)).unwrap(), (0, 50));
        assert!(parse_chown(":").is_err());
    }

    #[test]
    fn parse() {
        assert_eq!(
            parse_chown("1000").unwrap(),
            Chown {
                user: IdSpec::Id(1000),
                group: None
            }
        );
        assert_eq!(
            parse_chown("app:staff").unwrap(),
            Chown {
                user: IdSpec::Name("app".into()),
                group: Some(IdSpec::Name("staff".into()))
            }
        );
        assert_eq!(
            parse_chown("root:root").unwrap(),
            Chown {
                user: IdSpec::Id(0),
                group: Some(IdSpec::Id(0))
            }
        );
        assert_eq!(
            parse_chown("0:0:x").unwrap().group,
            Some(IdSpec::Name("0:x".into()))
        );
        assert_eq!(parse_chown("+5").unwrap().user, IdSpec::Id(5));
        assert_eq!(parse_chown("007").unwrap().user, IdSpec::Id(7));
        for bad in ["", ":", "app:", "-1", "1:-1", "4294967296", "2147483648"] {
            assert!(
                matches!(parse_chown(bad), Err(Error::InvalidChown { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn resolve() {
        let r = |v: &str| resolve_chown(v, Some(PASSWD), Some(GROUP));
        assert_eq!(r("1000").unwrap(), (1000, 1000));
        assert_eq!(r("1000:50").unwrap(), (1000, 50));
        assert_eq!(r("app").unwrap(), (1000, 1001));
        assert_eq!(r("app:staff").unwrap(), (1000, 50));
        assert_eq!(r("daemon:0").unwrap(), (1, 0));
        assert_eq!(r("root").unwrap(), (0, 0)); // "root" is never looked up
        assert_eq!(r("broken").unwrap(), (0, 0)); // unparsable numbers are 0, as in moby/sys/user
        assert_eq!(r("2000:appgrp").unwrap(), (2000, 1001));
        match r("nobody") {
            Err(e @ Error::UnknownUser { .. }) => assert!(e.to_string().contains("nobody")),
            other => panic!("{other:?}"),
        }
        match r("app:wheel") {
            Err(e @ Error::UnknownGroup { .. }) => assert!(e.to_string().contains("wheel")),
            other => panic!("{other:?}"),
        }
        // comment lines in /etc/group are skipped, so "# staff" is not a group
        assert!(matches!(r("1:# staff"), Err(Error::UnknownGroup { .. })));
        // missing files: names cannot be resolved, ids still work
        assert!(matches!(
            resolve_chown("app", None, None),
            Err(Error::UnknownUser { .. })
        ));
        assert_eq!(resolve_chown("5:6", None, None).unwrap(), (5, 6));
        assert!(parse_chown("app:staff").unwrap().needs_group());
    }
}
