//! Docker archives (`docker save`, `podman save --format docker-archive`, skopeo's `docker-archive:`): only
//! `manifest.json`, `<id>.json` configs and layer tars. Each image becomes an OCI image in the tab's store.
//!
//! Media types: OCI ones (`application/vnd.oci.image.manifest.v1+json`, `…config.v1+json`, `…layer.v1.tar` or
//! `…tar+gzip` by the layer's own bytes), as the CLI's `load` does: the store is an OCI layout, so the same archive
//! gives the same manifest digest in the tab and in the CLI, and docker's config JSON is valid OCI config JSON. The
//! config bytes are kept as they are (the image ID stays the config digest docker showed), and each layer's bytes
//! are kept as the blob (its digest computed here); the layer is decompressed as it streams in, its tar checked
//! entry by entry (no `..` or absolute names), and its diff ID compared with the config's `rootfs.diff_ids`.

use std::collections::BTreeMap;
use std::io::Read;

use lw_engine::archive::{DockerArchiveEntry, MAX_DOCUMENT};
use lw_engine::host::BlobSink;
use lw_layer::tar::TarReader;
use lw_oci::media::{self, Compression};
use lw_oci::{Descriptor, Digest, DigestHasher, ImageConfig, Manifest};
use wasm_bindgen::prelude::*;

use crate::js::err;
use crate::members::{read_member, Member, Members, Source};
use crate::store::normalize;
use lw_layer::push::LayerScan;

/// Images per archive and layers per image: far above real ones (docker allows 127 layers).
const MAX_IMAGES: usize = 1000;
const MAX_LAYERS: usize = 1000;

type Converted = (crate::load::Verified, Vec<(Vec<String>, Descriptor)>);

/// One verified layer: its descriptor and diff ID.
#[derive(Clone)]
struct Layer {
    desc: Descriptor,
    diff_id: Digest,
}

/// A zstd layer cannot be decompressed in push mode: check it from memory with the strict pull reader.
fn diff_id_pull(bytes: &[u8], c: Compression) -> Result<Digest, String> {
    struct Tee<R> {
        inner: R,
        h: DigestHasher,
    }
    impl<R: Read> Read for Tee<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.h.update(&buf[..n]);
            Ok(n)
        }
    }
    let dec = lw_layer::compress::decoder(bytes, c).map_err(|e| e.to_string())?;
    let mut tee = Tee {
        inner: dec,
        h: DigestHasher::sha256(),
    };
    {
        let mut tar = TarReader::new(&mut tee);
        let mut sink = vec![0u8; 64 * 1024];
        while tar.next_entry().map_err(|e| e.to_string())?.is_some() {
            while tar.read_data(&mut sink).map_err(|e| e.to_string())? > 0 {}
        }
    }
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(tee.h.finish())
}

/// Read a layer member in chunks: keep its bytes (the blob), hash them, and decompress + check its tar on the way.
async fn read_layer(
    src: &Source,
    member: Member,
    name: &str,
) -> Result<(Box<dyn BlobSink>, Layer), JsValue> {
    let head = src.read_at(member.off, 4.min(member.size as usize)).await?;
    let comp = lw_layer::compress::sniff(&head);
    let bad = |e: String| err(format!("docker archive: layer {name}: {e}"));
    // Streamed into a new blob of the store as it is read (to browser storage past 16 MiB).
    let mut sink = crate::load::new_sink()?;
    let (digest, diff_id) = if comp == Compression::Zstd {
        crate::archive::need_zstd().await?;
        let bytes = read_member(src, member, name).await?;
        let diff = diff_id_pull(&bytes, comp).map_err(bad)?;
        crate::load::write_sink(&mut *sink, &bytes, name)?;
        (Digest::sha256_of(&bytes), diff)
    } else {
        let mut scan = LayerScan::new(Box::new(|_| Ok(())), true);
        src.chunks(member.off, member.size, |c| {
            crate::load::write_sink(&mut *sink, c, name)?;
            scan.push(c).map_err(|e| bad(e.to_string()))
        })
        .await?;
        let s = scan.finish().map_err(|e| bad(e.to_string()))?;
        match (s.digest, s.diff_id) {
            (Some(d), Some(diff)) => (d, diff),
            _ => return Err(bad("no digest computed".into())),
        }
    };
    let mt = lw_engine::archive::layer_media_type(comp);
    let desc = Descriptor::new(mt, digest, member.size);
    Ok((sink, Layer { desc, diff_id }))
}

/// Convert every image of `manifest.json` into OCI blobs and named descriptors; nothing is stored here.
pub async fn convert(src: &Source, m: &Members) -> Result<Converted, JsValue> {
    let doc = m
        .read(src, "manifest.json", MAX_DOCUMENT)
        .await?
        .ok_or_else(|| err("docker archive: no manifest.json"))?;
    let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(&doc)
        .map_err(|e| err(format!("docker archive: manifest.json is not valid: {e}")))?;
    if entries.is_empty() || entries.len() > MAX_IMAGES {
        return Err(err(format!(
            "docker archive: manifest.json lists {} images (1 to {MAX_IMAGES} expected)",
            entries.len()
        )));
    }
    let mut blobs = crate::load::Verified::default();
    let mut layers_seen: BTreeMap<String, Layer> = BTreeMap::new();
    let mut images = Vec::new();
    for e in &entries {
        let config_bytes = m.read(src, &e.config, MAX_DOCUMENT).await?.ok_or_else(|| {
            err(format!(
                "docker archive: manifest.json names config {}, which the archive lacks",
                e.config
            ))
        })?;
        // A typed parse (digests parsed, fields typed) plus the checks below; the JSON-schema validator the CLI
        // runs would add 18 KB gzipped to the bundle for no check the conversion relies on.
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|x| err(format!("docker archive: config {}: {x}", e.config)))?;
        if config.rootfs.kind != "layers" || config.os.is_empty() || config.architecture.is_empty()
        {
            return Err(err(format!(
                "docker archive: config {} is not an image config (rootfs.type {:?}, os {:?}, architecture {:?})",
                e.config, config.rootfs.kind, config.os, config.architecture
            )));
        }
        let want = &config.rootfs.diff_ids;
        if want.len() != e.layers.len() || e.layers.len() > MAX_LAYERS {
            return Err(err(format!(
                "docker archive: manifest.json lists {} layers for {}, but its config has {} diff IDs",
                e.layers.len(),
                e.config,
                want.len()
            )));
        }
        let mut descs = Vec::new();
        for (name, diff_id) in e.layers.iter().zip(want) {
            let key = lw_layer::path::clean(name)
                .map_err(|x| err(format!("docker archive: layer name {name:?}: {x}")))?;
            let layer = match layers_seen.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let member = m.get(&key)?.ok_or_else(|| {
                        err(format!(
                            "docker archive: manifest.json names layer {name}, which the archive lacks"
                        ))
                    })?;
                    let (sink, l) = read_layer(src, member, name).await?;
                    if !blobs.has(&l.desc.digest) {
                        blobs.layers.push((l.desc.digest.clone(), sink));
                    }
                    layers_seen.insert(key, l.clone());
                    l
                }
            };
            if layer.diff_id != *diff_id {
                return Err(err(format!(
                    "docker archive: layer {name} has diff ID {}, but config {} expects {diff_id}",
                    layer.diff_id, e.config
                )));
            }
            descs.push(layer.desc);
        }
        let config_desc = Descriptor::of(media::OCI_CONFIG, &config_bytes);
        blobs.docs.insert(config_desc.digest.clone(), config_bytes);
        let manifest = lw_oci::to_canonical_json(&Manifest::oci(config_desc, descs));
        let mdesc = Descriptor::of(media::OCI_MANIFEST, &manifest);
        blobs.docs.insert(mdesc.digest.clone(), manifest);
        let mut names = Vec::new();
        for t in e.repo_tags.iter().flatten() {
            let n = normalize(t)?;
            if !names.contains(&n) {
                names.push(n);
            }
        }
        images.push((names, mdesc));
    }
    Ok((blobs, images))
}
