//! The native build host: the engine's blob store, step cache and image source, backed by the on-disk store.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use lw_engine::host::{BaseImage, BlobSink, BlobStore, Cache, CachedLayer, ImageSource};
use lw_engine::Error;
use lw_layer::layer::HashWriter;
use lw_layer::midstate::Sha256Mid;
use lw_oci::{Descriptor, Digest, Platform};

use crate::names;
use crate::store::{tempfile_in, SplicedWriter, Store};

fn host_err(e: impl std::fmt::Display) -> Error {
    Error::Host(e.to_string())
}

/// Blobs in the store; new blobs go to a temporary file, are hashed as they are written, and renamed into place.
pub struct StoreBlobs<'s> {
    pub store: &'s Store,
}

struct Sink {
    tmp: PathBuf,
    /// The file and its hash; `None` once committed.
    file: Option<SinkFile>,
    blobs_dir: PathBuf,
}

// One per blob being written: boxing the hasher would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum SinkFile {
    /// Hashed on a helper thread as it is written (the writer's thread is busy making the layer).
    Hashed(HashWriter<File>),
    /// A resumed layer: the start was copied in the kernel from an earlier blob, and the hash goes on from that
    /// start's saved state (the checkpoint's) over the bytes written here, the tail a rebuild made.
    Resumed(File, Sha256Mid),
    /// A resumed layer kept spliced (see `store::spliced`): the earlier blob's start is not copied at all, only the
    /// tail is written; the hash goes on from the checkpoint's state as for `Resumed`.
    Spliced(SplicedWriter, Sha256Mid),
}

impl Sink {
    fn file(&mut self) -> io::Result<&mut SinkFile> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the blob was already committed"))
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file()? {
            SinkFile::Hashed(w) => w.write(buf),
            SinkFile::Resumed(f, h) => {
                let n = f.write(buf)?;
                h.update(&buf[..n]);
                Ok(n)
            }
            SinkFile::Spliced(f, h) => {
                let n = f.write(buf)?;
                h.update(&buf[..n]);
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file()? {
            SinkFile::Hashed(w) => w.flush(),
            SinkFile::Resumed(f, _) => f.flush(),
            SinkFile::Spliced(f, _) => f.flush(),
        }
    }
}

impl BlobSink for Sink {
    fn commit(mut self: Box<Self>, digest: &Digest) -> Result<(), Error> {
        // On any early return the Drop impl removes the temporary file.
        let (file, actual) = match self
            .file
            .take()
            .ok_or_else(|| Error::Host("the blob was already committed".into()))?
        {
            SinkFile::Hashed(w) => {
                let (file, actual, _) = w.finish();
                (file, actual)
            }
            SinkFile::Resumed(file, h) => (file, h.finish()),
            SinkFile::Spliced(w, h) => {
                let actual = h.finish();
                if actual != *digest {
                    w.cancel();
                    return Err(Error::Host(format!(
                        "new blob hashes to {actual}, expected {digest}"
                    )));
                }
                return w.commit(digest).map_err(|e| Error::Host(format!("{e:#}")));
            }
        };
        if actual != *digest {
            return Err(Error::Host(format!(
                "new blob hashes to {actual}, expected {digest}"
            )));
        }
        file.sync_all().map_err(host_err)?;
        fs::rename(&self.tmp, self.blobs_dir.join(digest.encoded())).map_err(host_err)?;
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // An uncommitted sink leaves nothing behind (commit renamed the file away already).
        let _ = fs::remove_file(&self.tmp);
    }
}

impl BlobStore for StoreBlobs<'_> {
    fn has(&self, d: &Digest) -> bool {
        self.store.has_blob(d)
    }
    fn open(&self, d: &Digest) -> Result<Box<dyn Read + '_>, Error> {
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            self.store.open_blob(d).map_err(host_err)?,
        )))
    }
    fn member_cache(&mut self) -> Option<Box<dyn lw_layer::pgzip::MemberCache>> {
        Some(Box::new(StoreMembers {
            dir: self.store.root().join("members"),
            staging: self.store.tmp_dir(),
        }))
    }
    fn create(&mut self) -> Result<Box<dyn BlobSink>, Error> {
        let (tmp, file) = tempfile_in(&self.store.tmp_dir()).map_err(host_err)?;
        Ok(Box::new(Sink {
            tmp,
            file: Some(SinkFile::Hashed(HashWriter::threaded(file))),
            blobs_dir: self.store.root().join("blobs/sha256"),
        }))
    }
    /// The start of `from` copied file to file (`copy_file_range`: in the kernel, a clone where the file system
    /// shares extents), not read or hashed here: the hash goes on from `state`, the checkpoint's state of those
    /// bytes saved when `from` was written and verified. Reading and hashing the unchanged ~100 MB start of a
    /// 200 MB layer's blob was most of a one-file rebuild.
    fn create_resumed(
        &mut self,
        from: &Digest,
        len: u64,
        state: &Sha256Mid,
    ) -> Result<Box<dyn BlobSink>, Error> {
        if state.len() != len {
            return Err(Error::Host(format!(
                "a checkpoint of blob {from} names {len} bytes but its hash state covers {}",
                state.len()
            )));
        }
        let src = self.store.open_blob(from).map_err(host_err)?;
        if src.len() < len {
            return Err(Error::Host(format!(
                "blob {from} is shorter than the {len} bytes a checkpoint names"
            )));
        }
        if let Some(parent) = self.store.splice_parent(from, len) {
            let w = self.store.create_spliced(&parent, len).map_err(host_err)?;
            return Ok(Box::new(Sink {
                tmp: PathBuf::new(),
                file: Some(SinkFile::Spliced(w, state.clone())),
                blobs_dir: self.store.root().join("blobs/sha256"),
            }));
        }
        let (tmp, mut file) = tempfile_in(&self.store.tmp_dir()).map_err(host_err)?;
        let mut sink = Sink {
            tmp,
            file: None,
            blobs_dir: self.store.root().join("blobs/sha256"),
        };
        // std's io::copy from a File (also through `take`) to a File is copy_file_range on Linux.
        let copied = match src.as_plain() {
            Some(f) => io::copy(&mut f.take(len), &mut file),
            None => io::copy(&mut src.take(len), &mut file),
        }
        .map_err(|e| Error::Host(format!("copying the start of blob {from}: {e}")))?;
        if copied != len {
            return Err(Error::Host(format!(
                "blob {from} is shorter than the {len} bytes a checkpoint names"
            )));
        }
        sink.file = Some(SinkFile::Resumed(file, state.clone()));
        Ok(Box::new(sink))
    }
}

/// How many of a step's latest resume records are kept: an edit made after another was undone resumes from the
/// record of a layer written before the first edit.
const RESUME_KEPT: usize = 4;

/// The step cache, one small file per key under `cache/` in the store.
pub struct StoreCache<'s> {
    pub store: &'s Store,
}

impl StoreCache<'_> {
    fn path(&self, key: &Digest) -> PathBuf {
        self.store.root().join("cache").join(key.encoded())
    }

    /// `cache/resume/<key>`, and `<key>.N` for the N-th earlier one.
    fn resume_path_n(&self, key: &Digest, n: usize) -> PathBuf {
        let name = match n {
            0 => key.encoded().to_string(),
            n => format!("{}.{n}", key.encoded()),
        };
        self.store.root().join("cache/resume").join(name)
    }

    /// A layer's index (its headers without data): `cache/layer-index/<digest>`.
    fn index_path(&self, layer: &Digest) -> PathBuf {
        self.store
            .root()
            .join("cache/layer-index")
            .join(layer.encoded())
    }
}

impl Cache for StoreCache<'_> {
    fn get(&self, key: &Digest) -> Option<Option<CachedLayer>> {
        let bytes = fs::read(self.path(key)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        if v.is_null() {
            return Some(None);
        }
        let descriptor: Descriptor = serde_json::from_value(v.get("descriptor")?.clone()).ok()?;
        let diff_id = Digest::parse(v.get("diffId")?.as_str()?).ok()?;
        Some(Some(CachedLayer {
            descriptor,
            diff_id,
        }))
    }
    fn put(&mut self, key: &Digest, value: Option<CachedLayer>) {
        let v = match value {
            None => serde_json::Value::Null,
            Some(l) => {
                serde_json::json!({"descriptor": l.descriptor, "diffId": l.diff_id.to_string()})
            }
        };
        let p = self.path(key);
        if fs::create_dir_all(p.parent().expect("cache dir")).is_ok() {
            // A lost cache entry only costs a rebuild, so a failed write is not an error.
            let _ = crate::store::write_atomic_via(
                &self.store.tmp_dir(),
                &p,
                &serde_json::to_vec(&v).expect("serializable"),
            );
        }
    }
    fn layer_index(&self, layer: &Digest) -> Option<Vec<u8>> {
        fs::read(self.index_path(layer)).ok()
    }
    fn put_layer_index(&self, layer: &Digest, index: &[u8]) {
        let p = self.index_path(layer);
        if fs::create_dir_all(p.parent().expect("index dir")).is_ok() {
            // Remade from the layer when missing, so a failed write is not an error.
            let _ = crate::store::write_atomic_via(&self.store.tmp_dir(), &p, index);
        }
    }
    /// A step's member checkpoints: `cache/resume/<position key>` (the blob they name may be pruned: then the
    /// next build is cold).
    fn resume_points(&self, key: &Digest) -> Option<Vec<u8>> {
        fs::read(self.resume_path_n(key, 0)).ok()
    }
    /// The last [`RESUME_KEPT`] records are kept (`<key>`, `<key>.1`, ...), shifted down by each new one.
    fn put_resume_points(&self, key: &Digest, points: &[u8]) {
        let p = self.resume_path_n(key, 0);
        if fs::create_dir_all(p.parent().expect("resume dir")).is_ok() {
            for n in (1..RESUME_KEPT).rev() {
                let _ = fs::rename(self.resume_path_n(key, n - 1), self.resume_path_n(key, n));
            }
            // Without them the next build is cold, so a failed write is not an error.
            let _ = crate::store::write_atomic_via(&self.store.tmp_dir(), &p, points);
        }
    }
    fn resume_candidates(&self, key: &Digest) -> Vec<Vec<u8>> {
        (0..RESUME_KEPT)
            .filter_map(|n| fs::read(self.resume_path_n(key, n)).ok())
            .collect()
    }
}

/// Pulls an image (reference, platform) into the store.
pub type Puller<'s> = Box<dyn FnMut(&str, &Platform) -> anyhow::Result<()> + 's>;

/// Base images from the store (pulling from a registry when a puller is given).
pub struct StoreImages<'s> {
    pub store: &'s Store,
    pub pull: Option<Puller<'s>>,
}

impl ImageSource for StoreImages<'_> {
    fn resolve(&mut self, reference: &str, platform: &Platform) -> Result<BaseImage, Error> {
        let found = match names::resolve(self.store, reference) {
            Ok(f) => f,
            Err(local) => match self.pull.as_mut() {
                Some(pull) => {
                    pull(reference, platform).map_err(|e| Error::Host(format!("{e:#}")))?;
                    names::resolve(self.store, reference)
                        .map_err(|e| Error::Host(format!("{e:#}")))?
                }
                None => return Err(Error::Host(format!("{local:#}"))),
            },
        };
        let img = self
            .store
            .resolve(&found.descriptor, Some(platform))
            .map_err(|e| Error::Host(format!("{e:#}")))?;
        for l in &img.manifest.layers {
            if !self.store.has_blob(&l.digest) {
                return Err(Error::Host(format!(
                    "layer {} of {reference} is missing from the store",
                    l.digest
                )));
            }
        }
        Ok(BaseImage {
            name: found.name.unwrap_or_else(|| reference.to_string()),
            manifest_digest: img.manifest_digest,
            manifest: img.manifest,
            config: img.config,
        })
    }
}

/// Compressed gzip members on disk under `members/`, each file framed by lw-layer (`frame_member`: a CRC-32 and
/// length) so a damaged entry is ignored rather than written into a layer.
pub struct StoreMembers {
    pub dir: PathBuf,
    /// Where members are written before they are renamed into `dir` (the store's `tmp/`, which the next command
    /// sweeps of a killed process's files).
    pub staging: PathBuf,
}

impl lw_layer::pgzip::MemberCache for StoreMembers {
    fn get(&mut self, key: &Digest) -> Option<Vec<u8>> {
        lw_layer::pgzip::unframe_member(fs::read(self.dir.join(key.encoded())).ok()?)
    }
    fn put(&mut self, key: &Digest, compressed: &[u8]) {
        if fs::create_dir_all(&self.dir).is_ok() {
            let v = lw_layer::pgzip::frame_member(compressed);
            // Written and renamed into place without fsync: a member torn by a crash fails its check in `get` and
            // is recompressed, so durability would only cost time (two fsyncs per member).
            let Ok((tmp, mut f)) = tempfile_in(&self.staging) else {
                return;
            };
            if f.write_all(&v).is_err() || fs::rename(&tmp, self.dir.join(key.encoded())).is_err() {
                let _ = fs::remove_file(&tmp);
            }
        }
    }
}

/// `ADD <url>` sources fetched over HTTP(S) (rustls, trusting what [`crate::tls`] names), following redirects,
/// bounded in size. `secrets` are the build's `--secret`s: BuildKit's `HTTP_AUTH_HEADER_<host>` and
/// `HTTP_AUTH_TOKEN_<host>` authorize an ADD from that host, `GIT_AUTH_HEADER[.<host:port>]` and
/// `GIT_AUTH_TOKEN[.<host:port>]` a git fetch over HTTP(S); `ssh_agent` is the `--ssh default` agent for git over
/// SSH.
#[derive(Default)]
pub struct HttpFetcher {
    pub max_bytes: Option<u64>,
    pub secrets: std::collections::BTreeMap<String, PathBuf>,
    pub ssh_agent: Option<PathBuf>,
}

impl HttpFetcher {
    fn secret(&self, id: &str) -> Result<Option<String>, Error> {
        match self.secrets.get(id) {
            None => Ok(None),
            Some(p) => fs::read(p)
                .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
                .map_err(|e| Error::Host(format!("reading secret {id} ({}): {e}", p.display()))),
        }
    }

    /// The `Authorization` value for an ADD from `url`: the core's rule (`lw_engine::remote_auth`), the tab's too.
    fn http_auth(&self, url: &str) -> Result<Option<String>, Error> {
        lw_engine::remote_auth::http_authorization(url, |id| self.secret(id))
    }

    /// The `Authorization` value for a git fetch over HTTP(S): the core's rule (`lw_engine::remote_auth`), the
    /// tab's too.
    fn git_auth(&self, remote: &str) -> Result<Option<String>, Error> {
        lw_engine::remote_auth::git_authorization(remote, |id| self.secret(id))
    }
}

impl lw_engine::host::UrlFetcher for HttpFetcher {
    fn fetch(&mut self, url: &str) -> Result<Vec<u8>, Error> {
        let roots = crate::tls::roots().map_err(|e| Error::Host(format!("ADD {url}: {e:#}")))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .max_redirects(10)
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        let mut req = agent.get(url);
        if let Some(auth) = self.http_auth(url)? {
            req = req.header("Authorization", auth);
        }
        let resp = req
            .call()
            .map_err(|e| Error::Host(format!("ADD {url}: {e}")))?;
        let max = self.max_bytes.unwrap_or(4 << 30);
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(max + 1)
            .read_to_end(&mut body)
            .map_err(|e| Error::Host(format!("ADD {url}: {e}")))?;
        if body.len() as u64 > max {
            return Err(Error::Host(format!("ADD {url}: larger than {max} bytes")));
        }
        Ok(body)
    }

    fn fetch_git(
        &mut self,
        remote: &str,
        reference: &str,
        keep_git_dir: bool,
    ) -> Result<lw_engine::host::GitCheckout, Error> {
        let auth = crate::gitfetch::GitAuth {
            header: self.git_auth(remote)?,
            ssh_agent: self.ssh_agent.clone(),
        };
        crate::gitfetch::checkout(remote, reference, keep_git_dir, &auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lw_layer::pgzip::MemberCache;

    /// BuildKit's secret names and precedence for remote sources.
    #[test]
    fn authorization_from_secrets() {
        let dir = std::env::temp_dir().join(format!("lw-auth-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut secrets = std::collections::BTreeMap::new();
        for (id, v) in [
            ("HTTP_AUTH_HEADER_a.example", "Basic abc"),
            ("HTTP_AUTH_HEADER_b.example", "Basic b"),
            ("HTTP_AUTH_TOKEN_b.example", "tok"),
            ("GIT_AUTH_TOKEN", "gt"),
            ("GIT_AUTH_HEADER.h.example:8443", "Custom h"),
        ] {
            fs::write(dir.join(id), v).unwrap();
            secrets.insert(id.to_string(), dir.join(id));
        }
        let f = HttpFetcher {
            secrets,
            ..Default::default()
        };
        let auth = |u: &str| f.http_auth(u).unwrap();
        assert_eq!(auth("https://a.example:9/x").as_deref(), Some("Basic abc"));
        assert_eq!(auth("https://b.example/x").as_deref(), Some("Bearer tok"));
        assert_eq!(auth("https://c.example/x"), None);
        let git = |u: &str| f.git_auth(u).unwrap();
        assert_eq!(
            git("https://h.example:8443/r.git").as_deref(),
            Some("Custom h")
        );
        // base64("x-access-token:gt")
        assert_eq!(
            git("https://other.example/r.git").as_deref(),
            Some("basic eC1hY2Nlc3MtdG9rZW46Z3Q=")
        );
        assert_eq!(git("git@h.example:r.git"), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn members_round_trip_and_damaged_ones_are_ignored() {
        let td = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(td.path().join("tmp")).unwrap();
        let mut m = StoreMembers {
            dir: td.path().join("members"),
            staging: td.path().join("tmp"),
        };
        let key = Digest::sha256_of(b"input");
        assert_eq!(m.get(&key), None);
        m.put(&key, b"compressed bytes\nwith a newline");
        assert_eq!(
            m.get(&key).as_deref(),
            Some(&b"compressed bytes\nwith a newline"[..])
        );
        let p = m.dir.join(key.encoded());
        let mut raw = fs::read(&p).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(&p, &raw).unwrap();
        assert_eq!(m.get(&key), None, "a flipped bit");
        raw.truncate(last);
        fs::write(&p, &raw).unwrap();
        assert_eq!(m.get(&key), None, "a torn write");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&m.dir).unwrap().count(), 1);
    }
}
