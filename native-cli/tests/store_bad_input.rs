//! Bad archives are refused with a message naming the file and the cause, and the store is left unchanged.

use crate::common;

use std::path::Path;

use common::*;
use layerwright::store::Store;
use lw_layer::tar::{TarReader, TarWriter, WriteOptions};
use lw_layer::Entry;

/// index.json bytes and the sorted blob list: what must not change when a load fails.
fn snapshot(root: &Path) -> (Vec<u8>, Vec<String>) {
    let mut blobs: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    (std::fs::read(root.join("index.json")).unwrap(), blobs)
}

/// Rewrite a tar, letting `edit` change (or drop, returning None) each member.
fn rewrite(
    src: &[u8],
    mut edit: impl FnMut(&Entry, Vec<u8>) -> Option<(Entry, Vec<u8>)>,
) -> Vec<u8> {
    let mut r = TarReader::new(src);
    let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
    while let Some(e) = r.next_entry().unwrap() {
        let data = r.read_to_vec(u64::MAX).unwrap();
        if let Some((e2, d2)) = edit(&e, data) {
            w.append_bytes(&e2, &d2).unwrap();
        }
    }
    w.finish().unwrap()
}

fn raw_member(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    block[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = kind;
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut v = block.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

#[test]
fn bad_archives_are_refused_and_the_store_is_unchanged() {
    lw_test_kit::require!("/bin/busybox");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    let m = make_busybox_image(&store, "lwtest/good:1", &[busybox_files(&[])]);
    let img = store.resolve(&m, None).unwrap();
    let layer = img.manifest.layers[0].digest.encoded().to_string();
    let saved = tmp.path().join("good.tar");
    lw_ok(
        &root,
        &["save", "lwtest/good:1", "-o", saved.to_str().unwrap()],
    );
    let good = std::fs::read(&saved).unwrap();

    // A second store that already holds an image, to prove a failed load changes nothing.
    let target = tmp.path().join("target");
    let ts = Store::open(&target).unwrap();
    make_busybox_image(&ts, "lwtest/existing:1", &[busybox_files(&[("x", b"x")])]);
    let before = snapshot(&target);

    let not_json = b"this is not JSON".to_vec();
    let not_json_digest = lw_oci::Digest::sha256_of(&not_json);
    let evil_layer = {
        let mut w = TarWriter::new(Vec::new(), WriteOptions::default());
        w.append_bytes(&Entry::file("../../etc/evil", 0o644, 0), b"x")
            .unwrap();
        w.finish().unwrap()
    };
    let gzipped = {
        let mut gz = lw_layer::compress::gzip_encoder(Vec::new(), 6);
        std::io::Write::write_all(&mut gz, &good).unwrap();
        gz.finish().unwrap()
    };
    let xz_corrupt = {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        std::io::Write::write_all(&mut w, &good).unwrap();
        let mut z = w.finish().unwrap();
        let mid = z.len() / 2;
        z[mid] ^= 0x55;
        z
    };
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "truncated",
            good[..good.len() * 2 / 3].to_vec(),
            vec!["bad.tar", "archive ends"],
        ),
        (
            "truncated gzip",
            gzipped[..gzipped.len() * 2 / 3].to_vec(),
            vec!["bad.tar", "gzip compressed archive", "deflate"],
        ),
        ("corrupt xz", xz_corrupt, vec!["bad.tar", "xz compressed"]),
        (
            "wrong blob digest",
            rewrite(&good, |e, mut d| {
                if e.path.ends_with(&layer) {
                    d[100] ^= 0xff;
                }
                Some((e.clone(), d))
            }),
            vec!["bad.tar", &layer, "does not match"],
        ),
        (
            "manifest is not JSON",
            rewrite(&good, |e, d| {
                if e.path.ends_with(m.digest.encoded()) {
                    return Some((
                        Entry::file(
                            &format!("blobs/sha256/{}", not_json_digest.encoded()),
                            0o644,
                            0,
                        ),
                        not_json.clone(),
                    ));
                }
                if e.path == "index.json" {
                    let s = String::from_utf8(d).unwrap();
                    let s = s
                        .replace(&m.digest.to_string(), &not_json_digest.to_string())
                        .replace(
                            &format!("\"size\":{}", m.size),
                            &format!("\"size\":{}", not_json.len()),
                        );
                    return Some((e.clone(), s.into_bytes()));
                }
                Some((e.clone(), d))
            }),
            vec!["bad.tar", not_json_digest.encoded(), "not valid JSON"],
        ),
        (
            "layer with .. inside",
            rewrite(&good, |e, d| {
                if e.path.ends_with(&layer) {
                    let mut gz = lw_layer::compress::gzip_encoder(Vec::new(), 6);
                    std::io::Write::write_all(&mut gz, &evil_layer).unwrap();
                    return Some((e.clone(), gz.finish().unwrap()));
                }
                Some((e.clone(), d))
            }),
            vec!["bad.tar", &layer],
        ),
        (
            "entry with ..",
            [raw_member("../evil", b'0', "", b"x"), vec![0; 1024]].concat(),
            vec!["bad.tar", "../evil", "escapes"],
        ),
        (
            "absolute entry",
            [raw_member("/etc/evil", b'0', "", b"x"), vec![0; 1024]].concat(),
            vec!["bad.tar", "/etc/evil", "absolute"],
        ),
        (
            "symlink out of the archive",
            [
                raw_member("index.json", b'2', "../../../etc/passwd", b""),
                vec![0; 1024],
            ]
            .concat(),
            vec!["bad.tar", "index.json", "points out of the archive"],
        ),
    ];
    for (what, bytes, needles) in cases {
        let bad = tmp.path().join("bad.tar");
        std::fs::write(&bad, &bytes).unwrap();
        let o = lw(&target, &["load", "-i", bad.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: load must fail");
        for n in needles {
            assert!(err.contains(n), "{what}: error should mention {n:?}: {err}");
        }
        assert_eq!(snapshot(&target), before, "{what}: the store changed");
        assert_eq!(
            std::fs::read_dir(target.join("tmp")).unwrap().count(),
            0,
            "{what}: temporary files left behind"
        );
    }
}
