//! `RUN --mount` specs: parsing `type=cache|tmpfs|secret|ssh|bind,...` into what the runtime must mount.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

/// A parsed `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Tmpfs {
        size: Option<String>,
    },
    Cache {
        id: String,
        mode: u32,
        uid: u32,
        gid: u32,
        readonly: bool,
        sharing: Sharing,
    },
    Secret {
        id: String,
        required: bool,
        /// Expose the value in this environment variable.
        env: Option<String>,
        /// Mount the secret as a file (false for `env=` without `target=`).
        file: bool,
        /// The file's mode, owner and group (BuildKit's defaults: 0400, 0, 0).
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A forwarded SSH agent (`build --ssh ID=...`): a socket of the step's own with this mode and owner, relayed
    /// to the agent (BuildKit's defaults: 0600, 0, 0). The engine gives every ssh mount its id and target.
    Ssh {
        id: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// The source is resolved by the engine ([`lw_engine::host::BindSource`]); writes are discarded.
    Bind {
        readonly: bool,
    },
}

/// `type=cache,sharing=...`: how concurrent users of one cache id share it (BuildKit's modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Every user mounts the same directory at once.
    Shared,
    /// A second concurrent user gets another directory (made empty the first time).
    Private,
    /// A second user waits until the first is done.
    Locked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// Absolute path in the container.
    pub target: String,
    pub kind: MountKind,
}

fn flag(v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("") => Ok(true),
        Some("false") => Ok(false),
        Some(o) => bail!("invalid boolean {o:?}"),
    }
}

fn number(k: &str, v: &str, radix: u32) -> Result<u32> {
    u32::from_str_radix(v, radix).map_err(|_| anyhow!("--mount: invalid {k}={v:?}"))
}

/// A `--mount` value's `key[=value]` fields, keys lower-cased.
struct Fields(BTreeMap<String, Option<String>>);

impl Fields {
    fn parse(spec: &str) -> Self {
        let mut kv = BTreeMap::new();
        for field in spec.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (
                    k.trim().to_ascii_lowercase(),
                    Some(v.trim().trim_matches('"').to_string()),
                ),
                None => (field.to_ascii_lowercase(), None),
            };
            kv.insert(k, v);
        }
        Fields(kv)
    }

    fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).and_then(|v| v.clone())
    }

    /// A boolean field under either name (`readonly`/`ro`); a bare key is true.
    fn flag(&self, names: &[&str]) -> Result<Option<bool>> {
        match names.iter().find_map(|n| self.0.get(*n)) {
            Some(v) => flag(v.as_deref()).map(Some),
            None => Ok(None),
        }
    }

    /// A number field in `radix`, `default` when absent.
    fn num(&self, k: &str, radix: u32, default: u32) -> Result<u32> {
        self.get(k)
            .map(|v| number(k, &v, radix))
            .transpose()
            .map(|v| v.unwrap_or(default))
    }
}

/// Parse one `--mount` value; relative targets are taken from `workdir`.
pub fn parse(spec: &str, workdir: &str) -> Result<RunMount> {
    let kv = Fields::parse(spec);
    let typ = kv.get("type").unwrap_or_else(|| "bind".into());
    let target = kv
        .get("target")
        .or_else(|| kv.get("dst"))
        .or_else(|| kv.get("destination"));
    // Checked for every type, as before any type-specific field.
    let readonly = kv.flag(&["readonly", "ro"])?;
    let abs = |t: &str| {
        if t.starts_with('/') {
            t.to_string()
        } else {
            format!("{}/{t}", workdir.trim_end_matches('/'))
        }
    };
    let kind = match typ.as_str() {
        "tmpfs" => MountKind::Tmpfs {
            size: kv.get("size"),
        },
        "cache" => cache_mount(&kv, target.as_deref(), readonly.unwrap_or(false))?,
        "secret" => {
            let (target, kind) = secret_mount(&kv, target)?;
            return Ok(RunMount {
                target: abs(&target),
                kind,
            });
        }
        "bind" => MountKind::Bind {
            // Read-only unless rw/readwrite (BuildKit's default for bind mounts).
            readonly: match kv.flag(&["rw", "readwrite"])? {
                Some(rw) => !rw,
                None => readonly.unwrap_or(true),
            },
        },
        "ssh" => MountKind::Ssh {
            id: kv.get("id").unwrap_or_else(|| "default".into()),
            mode: kv.num("mode", 8, 0o600)?,
            uid: kv.num("uid", 10, 0)?,
            gid: kv.num("gid", 10, 0)?,
        },
        o => bail!("--mount: unknown type {o:?}"),
    };
    let target = target.ok_or_else(|| anyhow!("--mount type={typ} needs target="))?;
    Ok(RunMount {
        target: abs(&target),
        kind,
    })
}

/// `type=cache`: its id (the target when unset), mode, owner, read-only flag and sharing.
fn cache_mount(kv: &Fields, target: Option<&str>, readonly: bool) -> Result<MountKind> {
    Ok(MountKind::Cache {
        id: kv
            .get("id")
            .or_else(|| target.map(str::to_string))
            .unwrap_or_default(),
        mode: kv.num("mode", 8, 0o755)?,
        uid: kv.num("uid", 10, 0)?,
        gid: kv.num("gid", 10, 0)?,
        readonly,
        sharing: match kv.get("sharing").as_deref() {
            None | Some("shared") => Sharing::Shared,
            Some("private") => Sharing::Private,
            Some("locked") => Sharing::Locked,
            Some(o) => bail!("--mount: invalid sharing={o:?} (shared, private or locked)"),
        },
    })
}

/// `type=secret`: its target (`/run/secrets/ID` by default) and id (the target's base name when unset), whether
/// it is required, and whether it is a file, an environment variable, or both.
fn secret_mount(kv: &Fields, target: Option<String>) -> Result<(String, MountKind)> {
    let id = kv
        .get("id")
        .or_else(|| {
            target
                .as_ref()
                .map(|t| t.rsplit('/').next().unwrap_or_default().to_string())
        })
        .ok_or_else(|| anyhow!("--mount type=secret needs id= or target="))?;
    let required = kv.flag(&["required"])?.unwrap_or(false);
    let env = kv.get("env").filter(|e| !e.is_empty());
    // With env= alone the secret is only in the environment, as BuildKit does.
    let file = target.is_some() || env.is_none();
    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
    let kind = MountKind::Secret {
        id,
        required,
        env,
        file,
        mode: kv.num("mode", 8, 0o400)?,
        uid: kv.num("uid", 10, 0)?,
        gid: kv.num("gid", 10, 0)?,
    };
    Ok((target, kind))
}

/// The persistent directory behind a cache mount id (named by its hash, so any id is a safe file name).
pub fn cache_dir(base: &Path, id: &str) -> PathBuf {
    base.join(lw_oci::Digest::sha256_of(id.as_bytes()).encoded())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let m = parse("type=cache,target=/root/.cache,mode=0700", "/").unwrap();
        assert_eq!(m.target, "/root/.cache");
        assert_eq!(
            m.kind,
            MountKind::Cache {
                id: "/root/.cache".into(),
                mode: 0o700,
                uid: 0,
                gid: 0,
                readonly: false,
                sharing: Sharing::Shared,
            }
        );
        let m = parse("type=cache,target=/c,sharing=locked,id=x", "/").unwrap();
        assert!(
            matches!(m.kind, MountKind::Cache { sharing: Sharing::Locked, ref id, .. } if id == "x")
        );
        assert!(parse("type=cache,target=/c,sharing=bogus", "/").is_err());
        let m = parse("type=secret,id=tok,required", "/").unwrap();
        assert_eq!(m.target, "/run/secrets/tok");
        assert_eq!(
            m.kind,
            MountKind::Secret {
                id: "tok".into(),
                required: true,
                env: None,
                file: true,
                mode: 0o400,
                uid: 0,
                gid: 0,
            }
        );
        let m = parse("type=secret,id=tok,env=TOKEN", "/").unwrap();
        assert!(
            matches!(m.kind, MountKind::Secret { file: false, ref env, .. } if env.as_deref() == Some("TOKEN"))
        );
        let m = parse("type=secret,id=tok,mode=0440,uid=1000,gid=50", "/").unwrap();
        assert!(matches!(
            m.kind,
            MountKind::Secret {
                mode: 0o440,
                uid: 1000,
                gid: 50,
                ..
            }
        ));
        assert!(parse("type=secret,id=tok,mode=9", "/").is_err());
        let m = parse("type=secret,id=tok,env=TOKEN,target=/t", "/").unwrap();
        assert!(matches!(m.kind, MountKind::Secret { file: true, .. }));
        assert_eq!(parse("type=tmpfs,target=t", "/w").unwrap().target, "/w/t");
        let bind = |s: &str| parse(s, "/w").unwrap();
        assert_eq!(bind("source=.,target=src").target, "/w/src");
        assert_eq!(
            bind("type=bind,target=/s").kind,
            MountKind::Bind { readonly: true }
        );
        assert_eq!(
            bind("type=bind,target=/s,rw").kind,
            MountKind::Bind { readonly: false }
        );
        assert_eq!(
            bind("type=bind,dst=/s,readwrite=true").kind,
            MountKind::Bind { readonly: false }
        );
        assert_eq!(
            bind("type=bind,destination=/s,rw=false").kind,
            MountKind::Bind { readonly: true }
        );
        assert!(parse("type=bind,source=x", "/").is_err());
        let m = parse("type=ssh,id=k,target=/s.sock,mode=0644,uid=1,gid=2", "/").unwrap();
        assert_eq!(m.target, "/s.sock");
        assert_eq!(
            m.kind,
            MountKind::Ssh {
                id: "k".into(),
                mode: 0o644,
                uid: 1,
                gid: 2
            }
        );
        assert!(matches!(
            parse("type=ssh,target=/a", "/").unwrap().kind,
            MountKind::Ssh { mode: 0o600, uid: 0, gid: 0, ref id } if id == "default"
        ));
        assert!(parse("type=cache", "/").is_err());
    }
}
