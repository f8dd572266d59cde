#![no_main]
//! Manifests, indexes and configs: the validator (strict, and with Docker's nulls) and the typed parsers on
//! arbitrary bytes, under each media type. Nothing may panic; a UTF-8 document the validator accepts must parse.

use libfuzzer_sys::fuzz_target;
use lw_oci::validate::{validate, validate_with, Nulls};
use lw_oci::{media, ImageConfig, Index, Manifest};

const TYPES: [&str; 6] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::OCI_CONFIG,
    media::DOCKER_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
    media::DOCKER_CONFIG,
];

fuzz_target!(|data: &[u8]| {
    let Some((&k, doc)) = data.split_first() else { return };
    let mt = TYPES[k as usize % TYPES.len()];
    let strict = validate(mt, doc).is_ok();
    let _ = validate_with(mt, doc, Nulls::AsDocker);
    // TYPES is ordered so that `k % 3` picks the typed parser of the media type `k % 6` picked.
    let typed = match k as usize % 3 {
        0 => serde_json::from_slice::<Manifest>(doc).err(),
        1 => serde_json::from_slice::<Index>(doc).err(),
        _ => serde_json::from_slice::<ImageConfig>(doc).err(),
    };
    // Two deliberate differences, both refused at ingest by the typed parsers with a clear error: the validator
    // reads JSON as Go does, which takes invalid UTF-8 in strings, and checks digests with the image-spec schema's
    // generic grammar, which allows algorithms and spellings we cannot verify (the typed `Digest` takes sha256
    // and sha512 in lowercase hex only).
    let utf8 = std::str::from_utf8(doc).is_ok();
    let typed = typed.filter(|e| !e.to_string().contains("digest"));
    if let (true, true, Some(e)) = (strict, utf8, typed) {
        panic!("{mt}: the validator accepted what the typed parser refuses: {e}");
    }
    if let Ok(s) = std::str::from_utf8(doc) {
        let _ = lw_oci::Digest::parse(s.trim());
    }
});
