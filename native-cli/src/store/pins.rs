//! Pins and links of the store's blobs: a pin keeps a blob no image names yet from `gc` for a while (a blob the
//! embedded registry accepted, waiting for its manifest); its record also lists the registry repositories the blob
//! was pushed or mounted to, which outlives the pin while the blob lives.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use lw_oci::Digest;

use super::{write_atomic, Store};

impl Store {
    pub(super) fn pin_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("pins")
            .join(d.algorithm().name())
            .join(d.encoded())
    }

    /// Pin blobs for `ttl` from now (a pin that lasts longer stays as it is): until the pin expires or
    /// [`Store::unpin`] removes it, [`Store::gc`] keeps the blob even though no image names it. The embedded
    /// registry pins what a client uploads or mounts, and what a manifest refers to, until the manifest is tagged.
    /// A blob may be pinned before it arrives, so pin first, then move the blob in: `gc` never sees it unpinned.
    /// `repo` (a store repository such as `localhost/a`) records which registry repository the blob was pushed
    /// to: the registry shows a blob only in repositories that hold it.
    ///
    /// Returns whether each blob is in the store. That is decided under the store lock, as `gc` works, so a blob
    /// reported present is pinned before any `gc` can look at it and stays until the pin goes.
    pub fn pin(&self, digests: &[Digest], ttl: Duration, repo: Option<&str>) -> Result<Vec<bool>> {
        let until = now_millis().saturating_add(ttl.as_millis().try_into().unwrap_or(u64::MAX));
        let _l = self.lock()?;
        let mut present = Vec::with_capacity(digests.len());
        for d in digests {
            let p = self.pin_path(d);
            let dir = p.with_file_name("");
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Several servers may share the store: the latest expiry wins, and repositories add up.
            let old = read_pin(&p, d);
            let until = old.as_ref().map_or(until, |o| o.until.max(until));
            let mut repos = old.map(|o| o.repos).unwrap_or_default();
            if let Some(r) = repo {
                repos.insert(r.to_string());
            }
            let rec = serde_json::json!({"digest": d.to_string(), "expiresUnixMillis": until, "repos": repos});
            write_atomic(&p, rec.to_string().as_bytes()).with_context(|| format!("pinning {d}"))?;
            present.push(self.has_blob(d));
        }
        Ok(present)
    }

    /// Remove pins of blobs an image in the index now refers to (best effort: a pin left behind expires). With
    /// `repo`, only that repository's claim goes; the pin itself goes when no repository claims it any more.
    pub fn unpin<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>, repo: Option<&str>) {
        let Ok(_l) = self.lock() else { return };
        for d in digests {
            let p = self.pin_path(d);
            let rest = match (repo, read_pin(&p, d)) {
                (Some(r), Some(mut old)) => {
                    old.repos.remove(r);
                    old
                }
                _ => {
                    let _ = fs::remove_file(&p);
                    continue;
                }
            };
            if rest.repos.is_empty() {
                let _ = fs::remove_file(&p);
            } else {
                let rec = serde_json::json!({"digest": d.to_string(), "expiresUnixMillis": rest.until,
                    "repos": rest.repos});
                let _ = write_atomic(&p, rec.to_string().as_bytes());
            }
        }
    }

    /// End the pins of blobs an image in the index now refers to: they no longer protect the blobs, but their
    /// records stay while the blob lives, as the registry's record of which repositories hold it.
    pub fn release<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) {
        let Ok(_l) = self.lock() else { return };
        for d in digests {
            let p = self.pin_path(d);
            match read_pin(&p, d) {
                Some(old) if !old.repos.is_empty() => {
                    let rec = serde_json::json!({"digest": d.to_string(), "expiresUnixMillis": 0,
                        "repos": old.repos});
                    let _ = write_atomic(&p, rec.to_string().as_bytes());
                }
                _ => {
                    let _ = fs::remove_file(&p);
                }
            }
        }
    }

    /// The store repositories `d` was pushed or mounted to (a pin's record, live or ended, while the blob lives).
    pub fn linked_repos(&self, d: &Digest) -> BTreeSet<String> {
        read_pin(&self.pin_path(d), d)
            .map(|p| p.repos)
            .unwrap_or_default()
    }

    /// The digests of unexpired pins; expired or unreadable records go (but an expired one of a blob in `keep`,
    /// which still records the blob's repositories), and so do temporary files of pin writes a crash interrupted
    /// (every pin write holds the store lock, which the caller holds).
    pub(super) fn live_pins(&self, keep: &BTreeSet<Digest>) -> Result<BTreeSet<Digest>> {
        let mut out = BTreeSet::new();
        let Ok(algs) = fs::read_dir(self.root.join("pins")) else {
            return Ok(out);
        };
        let now = now_millis();
        for a in algs {
            let a = a?;
            if !a.file_type()?.is_dir() {
                continue;
            }
            let alg = a.file_name().to_string_lossy().into_owned();
            for e in fs::read_dir(a.path())? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                let d = Digest::parse(&format!("{alg}:{name}")).ok();
                let rec = d.as_ref().and_then(|d| read_pin(&e.path(), d));
                match (d, rec) {
                    (Some(d), Some(p)) if p.until > now => {
                        out.insert(d);
                    }
                    (Some(d), Some(_)) if keep.contains(&d) => {}
                    _ => fs::remove_file(e.path())
                        .with_context(|| format!("removing {}", e.path().display()))?,
                }
            }
        }
        Ok(out)
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A pin record: when it expires, and the store repositories it was pushed to.
struct PinRecord {
    until: u64,
    repos: BTreeSet<String>,
}

/// The pin record at `path`, when it is one for `d`.
fn read_pin(path: &Path, d: &Digest) -> Option<PinRecord> {
    let v: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    if v.get("digest")?.as_str()? != d.as_str() {
        return None;
    }
    let repos = v
        .get("repos")
        .and_then(|r| r.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(PinRecord {
        until: v.get("expiresUnixMillis")?.as_u64()?,
        repos,
    })
}
