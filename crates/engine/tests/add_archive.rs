//! ADD of a local archive is decoded as it is read (only the unpacked entries are held): a stream that does not
//! decode to its end, or is no tar, is copied as it is (as when it was decoded whole first); a tar that is broken is
//! an error naming the file; an error reading the file is reported as it is.

use lw_engine::context::{Context, ContextEntry, MemoryContext};
use lw_engine::host::{BlobStore, MemoryBlobs, MemoryCache, NoImages};
use lw_engine::Error;
use lw_layer::tar::{TarReader, WriteOptions};
use lw_layer::{Entry, LayerWriter};
use lw_oci::media::Compression;

use crate::common::build_without_run;

/// A gzip'd tar of `n` files of 100 KiB each.
fn tgz(n: usize) -> Vec<u8> {
    let mut lw = LayerWriter::new(Vec::new(), Compression::Gzip, WriteOptions::default()).unwrap();
    for i in 0..n {
        let data: Vec<u8> = (0..100 * 1024u32)
            .map(|j| (j * 7 + i as u32) as u8)
            .collect();
        let e = Entry::file(&format!("f{i}.bin"), 0o644, data.len() as u64);
        lw.tar().append_bytes(&e, &data).unwrap();
    }
    lw.finish().unwrap().0
}

/// The paths of the first layer of building `ADD` of `bytes` (as `a.tgz`) into `/x/`.
fn add(bytes: Vec<u8>) -> Result<Vec<String>, Error> {
    let mut ctx = MemoryContext::new();
    ctx.insert_file("a.tgz", bytes).unwrap();
    paths(&ctx)
}

fn paths(ctx: &MemoryContext) -> Result<Vec<String>, Error> {
    let mut blobs = MemoryBlobs::default();
    let df = "FROM scratch\nADD a.tgz /x/\n";
    let r = build_without_run(
        &mut blobs,
        &mut MemoryCache::default(),
        &mut NoImages,
        df,
        ctx,
    )?;
    let blob = blobs.open(&r.layers[0].digest).unwrap();
    let mut t = TarReader::new(lw_layer::compress::decoder(blob, Compression::Gzip).unwrap());
    let mut names = Vec::new();
    while let Some(e) = t.next_entry().unwrap() {
        names.push(e.path);
    }
    Ok(names)
}

#[test]
fn an_archive_unpacks_and_what_does_not_decode_is_copied() {
    let good = tgz(3);
    assert_eq!(
        add(good.clone()).unwrap(),
        ["x", "x/f0.bin", "x/f1.bin", "x/f2.bin"]
    );
    // Garbage after the gzip stream: the whole does not decode, so the file is copied as it is.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"not gzip at all, but long enough to be read as a header");
    assert_eq!(add(trailing).unwrap(), ["x", "x/a.tgz"]);
    // Cut short: copied as it is too.
    assert_eq!(
        add(good[..good.len() / 2].to_vec()).unwrap(),
        ["x", "x/a.tgz"]
    );
    // A gzip stream that is no tar.
    let mut not_tar = Vec::new();
    lw_layer::deflate::gzip_member(&[b'x'; 4096], 6, &mut not_tar).unwrap();
    assert_eq!(add(not_tar).unwrap(), ["x", "x/a.tgz"]);
}

#[test]
fn a_broken_tar_inside_is_an_error_naming_the_file() {
    // The second header's checksum no longer matches.
    let mut tar = Vec::new();
    let gz = tgz(2);
    let mut d = lw_layer::compress::decoder(&gz[..], Compression::Gzip).unwrap();
    std::io::Read::read_to_end(&mut d, &mut tar).unwrap();
    let second = 512 + 100 * 1024;
    tar[second + 10] ^= 0x55;
    let mut gz = Vec::new();
    lw_layer::deflate::gzip_member(&tar, 6, &mut gz).unwrap();
    let e = add(gz).unwrap_err().to_string();
    assert!(e.starts_with("Dockerfile:2: ADD a.tgz: "), "{e}");
    assert!(e.contains("header"), "{e}");
}

/// A context whose file cannot be read past its head.
struct Failing(MemoryContext);

impl Context for Failing {
    fn entries(&self) -> Result<Vec<ContextEntry>, Error> {
        self.0.entries()
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match offset {
            0 => {
                let n = buf.len().min(512);
                self.0.read_at(path, 0, &mut buf[..n])
            }
            _ => Err(Error::Host(format!("{path}: the disk went away"))),
        }
    }
}

#[test]
fn an_error_reading_the_file_is_reported_as_it_is() {
    let mut inner = MemoryContext::new();
    inner.insert_file("a.tgz", tgz(3)).unwrap();
    let ctx = Failing(inner);
    let mut events = |_| {};
    let mut host = lw_engine::engine::Host {
        context: &ctx,
        blobs: &mut MemoryBlobs::default(),
        images: &mut NoImages,
        run: None,
        fetch: None,
        cache: &mut MemoryCache::default(),
        events: &mut events,
    };
    let o = lw_engine::engine::BuildOptions::new(
        b"FROM scratch\nADD a.tgz /x/\n".to_vec(),
        lw_oci::Platform::parse("linux/amd64").unwrap(),
    );
    let e = lw_engine::engine::build(&o, &mut host)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.tgz: the disk went away"), "{e}");
}
