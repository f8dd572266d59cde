//! Whole-image pull and push: platform choice, the index kept, each blob once, children by digest.

use std::collections::BTreeMap;

use super::*;
use crate::transfer::{PullImage, PullTarget, PushImage, PushSource};

/// A registry in memory: answers GET/HEAD of manifests and blobs, accepts uploads and manifest puts.
fn registry(docs: BTreeMap<String, Vec<u8>>, requests: usize) -> Mock {
    let mut m = Mock::default();
    for _ in 0..requests {
        let docs = docs.clone();
        m = m.on(move |r, body| {
            let path = r.url.split('?').next().unwrap().to_string();
            let key = path.rsplit('/').next().unwrap().to_string();
            match (
                r.method,
                path.contains("/manifests/"),
                path.contains("/uploads/"),
            ) {
                (Method::Get, _, false) => match docs.get(&key) {
                    Some(b) => resp(200, &[], b),
                    None => resp(404, &[], b""),
                },
                (Method::Head, false, false) => resp(404, &[], b""),
                (Method::Post, _, true) => resp(202, &[("Location", "/v2/r/blobs/uploads/u")], b""),
                (Method::Put, false, true) => resp(201, &[], b""),
                (Method::Put, true, _) => {
                    let d = Digest::sha256_of(body).to_string();
                    resp(201, &[("Docker-Content-Digest", &d)], b"")
                }
                _ => panic!("unexpected {} {}", r.method, r.url),
            }
        });
    }
    m
}

#[derive(Default)]
struct Target {
    have: Vec<Digest>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    manifests: Vec<Digest>,
    open: Option<Vec<u8>>,
}

impl PullTarget for Target {
    fn has_blob(&mut self, desc: &Descriptor) -> bool {
        self.have.contains(&desc.digest)
    }
    fn begin_blob(&mut self, _: &Descriptor) -> Result<(), Error> {
        self.open = Some(Vec::new());
        Ok(())
    }
    fn write_blob(&mut self, data: &[u8]) -> Result<(), Error> {
        self.open.as_mut().unwrap().extend_from_slice(data);
        Ok(())
    }
    fn commit_blob(&mut self, desc: &Descriptor) -> Result<(), Error> {
        let b = self.open.take().unwrap();
        self.blobs.insert(desc.digest.clone(), b);
        Ok(())
    }
    fn abort_blob(&mut self, _: &Descriptor) {
        self.open = None;
    }
    fn put_manifest(&mut self, desc: &Descriptor, _: &[u8]) -> Result<(), Error> {
        self.manifests.push(desc.digest.clone());
        Ok(())
    }
}

struct Image {
    docs: BTreeMap<String, Vec<u8>>,
    index: Descriptor,
    amd64: Descriptor,
    shared: Descriptor,
    configs: Vec<Descriptor>,
    own: Descriptor,
}

/// Two platforms sharing a layer; amd64 lists its own layer twice.
fn two_platforms() -> Image {
    let mut docs = BTreeMap::new();
    let mut blob = |b: &[u8], mt: &str| {
        let d = Descriptor::of(mt, b);
        docs.insert(d.digest.to_string(), b.to_vec());
        d
    };
    let shared = blob(b"shared layer", media::OCI_LAYER_GZIP);
    let own = blob(b"amd64 layer", media::OCI_LAYER_GZIP);
    let c1 = blob(br#"{"architecture":"amd64"}"#, media::OCI_CONFIG);
    let c2 = blob(br#"{"architecture":"arm64"}"#, media::OCI_CONFIG);
    let m1 = lw_oci::to_canonical_json(&Manifest::oci(
        c1.clone(),
        vec![shared.clone(), own.clone(), own.clone()],
    ));
    let m2 = lw_oci::to_canonical_json(&Manifest::oci(c2.clone(), vec![shared.clone()]));
    let mut d1 = blob(&m1, media::OCI_MANIFEST);
    d1.platform = Some(Platform::parse("linux/amd64").unwrap());
    let mut d2 = blob(&m2, media::OCI_MANIFEST);
    d2.platform = Some(Platform::parse("linux/arm64").unwrap());
    let idx = lw_oci::to_canonical_json(&Index::oci(vec![d1.clone(), d2]));
    let index = blob(&idx, media::OCI_INDEX);
    docs.insert("v1".into(), idx);
    Image {
        docs,
        index,
        amd64: d1,
        shared,
        configs: vec![c1, c2],
        own,
    }
}

#[test]
fn pull_picks_the_platform_keeps_the_index_and_fetches_each_missing_blob_once() {
    let img = two_platforms();
    // index, manifest, config, own layer (the shared one is present; the repeated one comes once)
    let mut t = registry(img.docs.clone(), 4);
    let mut target = Target {
        have: vec![img.shared.digest.clone()],
        ..Default::default()
    };
    let platform = Platform::parse("linux/amd64").unwrap();
    let mut op = PullImage::new(&client(), "r", "v1", &platform, &mut target).unwrap();
    let pulled = drive(&mut op, &mut t).unwrap();
    t.done();
    assert_eq!(pulled.descriptor.digest, img.amd64.digest);
    assert_eq!(pulled.index.unwrap().digest, img.index.digest);
    assert_eq!(
        pulled.downloaded,
        vec![img.configs[0].digest.clone(), img.own.digest.clone()]
    );
    assert_eq!(target.blobs[&img.own.digest], b"amd64 layer");
    assert_eq!(target.manifests, vec![img.amd64.digest, img.index.digest]);
}

struct Source(BTreeMap<String, Vec<u8>>);
impl PushSource for Source {
    fn manifest_bytes(&mut self, digest: &Digest) -> Result<Vec<u8>, Error> {
        self.0
            .get(digest.as_str())
            .cloned()
            .ok_or_else(|| Error::Host(format!("no {digest}")))
    }
}

impl BlobIo for Source {
    fn open_upload(&mut self, d: &Digest, off: u64, len: u64) -> Result<Box<dyn Read + '_>, Error> {
        let b = &self.0[d.as_str()];
        Ok(Box::new(&b[off as usize..(off + len) as usize]))
    }
}

#[test]
fn push_sends_every_platform_and_the_index_with_each_blob_once() {
    let img = two_platforms();
    let mut src = Source(img.docs.clone());
    // 4 distinct blobs × (HEAD, POST, PUT) + 2 child manifests + the index
    let mut t = registry(img.docs.clone(), 4 * 3 + 3);
    let mut op = PushImage::new(&client(), "r", "v2", &img.index, &mut src).unwrap();
    let report = drive_with(&mut op, &mut t, &mut src).unwrap();
    t.done();
    assert_eq!(report.digest, img.index.digest);
    assert_eq!(report.blobs.len(), 4);
    assert!(report
        .blobs
        .iter()
        .all(|(_, o)| *o == UploadOutcome::Uploaded));
    assert_eq!(report.manifests.len(), 2);
    let puts: Vec<&str> = t
        .log
        .iter()
        .filter(|(r, _)| r.method == Method::Put && r.url.contains("/manifests/"))
        .map(|(r, _)| r.url.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        puts[0],
        img.amd64.digest.as_str(),
        "children by digest first"
    );
    assert_eq!(puts[2], "v2", "the index last, under the tag");
}
