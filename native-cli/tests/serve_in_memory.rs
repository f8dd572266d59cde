//! The registry client against serve's registry, one scenario over two transports and two storages: in memory
//! (quinn-proto's `Pair` style: the client's [`Transport`] hands each request to [`Service::handle`], and the
//! registry keeps everything in a [`MemStorage`], with no socket and no file system), and over a loopback socket
//! against the store on disk (and against memory). The whole protocol runs as it does over the network: the
//! Bearer challenge, the anonymous pull token and the token for pushes, uploads (monolithic, chunked, sha512),
//! mounts, manifests by tag and digest, tag lists, the catalog, blob and manifest deletes, and a delete that must
//! not reach into another repository.

use std::io::{Cursor, Read};
use std::sync::Arc;

use layerwright::http::{HttpOptions, UreqTransport};
use layerwright::serve::http::Request as SRequest;
use layerwright::serve::mem_store::MemStorage;
use layerwright::serve::{Config, Server, Service};
use lw_oci::digest::Algorithm;
use lw_oci::{media, Descriptor, Digest, DigestHasher};
use lw_registry::{
    drive, drive_with, BlobIo, Client, ClientConfig, Credentials, Error, Request, ResponseHead,
    SendBody, Transport, TransportError, UploadOutcome,
};

const TOKEN: &str = "scenario-token";

/// A transport that calls the service directly.
struct Pair {
    svc: Service,
    host: String,
    requests: usize,
}

impl Transport for Pair {
    type Body = Box<dyn Read>;

    fn send(
        &mut self,
        request: &Request,
        body: SendBody<'_>,
    ) -> Result<(ResponseHead, Self::Body), TransportError> {
        self.requests += 1;
        let path = request
            .url
            .strip_prefix(&format!("http://{}", self.host))
            .unwrap_or_else(|| panic!("the client asked for another origin: {}", request.url));
        let bytes = match body {
            SendBody::Empty => Vec::new(),
            SendBody::Bytes(b) => b.to_vec(),
            SendBody::Reader { reader, len } => {
                let mut v = Vec::new();
                reader.take(len).read_to_end(&mut v).unwrap();
                v
            }
        };
        let mut headers = request.headers.clone();
        headers.push(("Host".into(), self.host.clone()));
        let len = bytes.len() as u64;
        headers.push(("Content-Length".into(), len.to_string()));
        let mut req = SRequest::new(
            request.method,
            path,
            headers,
            Box::new(Cursor::new(bytes)),
            Some(len),
        );
        let (resp, _close) = self.svc.handle(&mut req);
        let mut head = ResponseHead::new(resp.status);
        head.headers = resp.headers;
        if let Some(n) = resp.len {
            head.headers.push(("Content-Length".into(), n.to_string()));
        }
        Ok((head, resp.body))
    }

    fn sleep(&mut self, _: std::time::Duration) {}
}

/// Blob bytes for uploads, and what downloads wrote.
#[derive(Default)]
struct Mem {
    blobs: Vec<(Digest, Vec<u8>)>,
    downloaded: Vec<u8>,
}

impl BlobIo for Mem {
    fn open_upload(
        &mut self,
        d: &Digest,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn Read + '_>, Error> {
        let (_, b) = self
            .blobs
            .iter()
            .find(|(x, _)| x == d)
            .expect("a blob the test has");
        Ok(Box::new(Cursor::new(
            b[offset as usize..(offset + len) as usize].to_vec(),
        )))
    }
    fn write_download(&mut self, data: &[u8]) -> Result<(), Error> {
        self.downloaded.extend_from_slice(data);
        Ok(())
    }
}

fn client(host: &str, creds: Credentials) -> Client {
    let mut c = ClientConfig::new(host);
    c.plain_http = true;
    c.credentials = creds;
    Client::new(c)
}

fn status_of<T: std::fmt::Debug>(r: Result<T, Error>) -> u16 {
    match r {
        Err(Error::Registry { status, .. }) => status,
        other => panic!("expected a registry error, got {other:?}"),
    }
}

fn sha512_of(b: &[u8]) -> Digest {
    let mut h = DigestHasher::new(Algorithm::Sha512);
    h.update(b);
    h.finish()
}

/// The whole flow, over any transport to a registry at `host` whose push token is [`TOKEN`].
fn scenario<T: Transport>(t: &mut T, host: &str) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let extra: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let cd = Descriptor::of(media::OCI_CONFIG, &config);
    let ld = Descriptor::of(media::OCI_LAYER_GZIP, &layer);
    let xd = Descriptor::new(media::OCI_LAYER_GZIP, sha512_of(&extra), extra.len() as u64);
    let mut io = Mem {
        blobs: vec![
            (cd.digest.clone(), config.clone()),
            (ld.digest.clone(), layer.clone()),
            (xd.digest.clone(), extra.clone()),
        ],
        ..Mem::default()
    };

    // Anonymous: the client follows the Bearer challenge to a pull-only token, which cannot push.
    let anon = client(host, Credentials::Anonymous);
    let e = drive_with(&mut anon.upload_blob("mem/app", &cd).unwrap(), t, &mut io).unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");

    // With the token as password: one monolithic upload, one in chunks, one sha512 blob in chunks.
    let pusher = client(
        host,
        Credentials::Basic {
            username: "anyone".into(),
            password: TOKEN.into(),
        },
    );
    let up = |t: &mut T, io: &mut Mem, repo: &str, d: &Descriptor, chunk: u64| {
        let op = pusher.upload_blob(repo, d).unwrap().chunk_size(chunk);
        drive_with(&mut { op }, t, io).unwrap()
    };
    assert_eq!(
        up(t, &mut io, "mem/app", &cd, 1 << 20),
        UploadOutcome::Uploaded
    );
    assert_eq!(
        up(t, &mut io, "mem/app", &ld, 30_000),
        UploadOutcome::UploadedChunked(4)
    );
    assert_eq!(
        up(t, &mut io, "mem/app", &xd, 30_000),
        UploadOutcome::UploadedChunked(3)
    );
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": cd, "layers": [ld, xd],
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let put = |t: &mut T, repo: &str, r: &str| {
        let mut op = pusher
            .put_manifest(repo, r, media::OCI_MANIFEST, manifest.clone())
            .unwrap();
        drive(&mut op, t).unwrap()
    };
    assert_eq!(put(t, "mem/app", "v1"), md);

    // Pulled back anonymously: the same bytes, verified by the client (the sha512 blob too).
    let got = drive(&mut anon.get_manifest("mem/app", "v1").unwrap(), t).unwrap();
    assert_eq!((&got.digest, &got.bytes), (&md, &manifest));
    for (d, bytes) in [(&ld, &layer), (&xd, &extra)] {
        io.downloaded.clear();
        let mut op = anon.get_blob("mem/app", &d.digest, Some(d.size)).unwrap();
        drive_with(&mut op, t, &mut io).unwrap();
        assert_eq!(&io.downloaded, bytes);
    }

    // Mounted into another repository, which then holds the same manifest under its own tag.
    for d in [&cd, &ld, &xd] {
        let mut op = pusher
            .upload_blob("mem/copy", d)
            .unwrap()
            .skip_existing(false)
            .mount_from("mem/app")
            .unwrap();
        assert_eq!(
            drive_with(&mut op, t, &mut io).unwrap(),
            UploadOutcome::Mounted
        );
    }
    assert_eq!(put(t, "mem/copy", "t2"), md);
    let tags = |t: &mut T, repo: &str| drive(&mut anon.list_tags(repo).unwrap(), t).unwrap();
    assert_eq!(tags(t, "mem/app"), vec!["v1".to_string()]);
    assert_eq!(tags(t, "mem/copy"), vec!["t2".to_string()]);
    let catalog = |t: &mut T| drive(&mut anon.catalog(), t).unwrap();
    assert_eq!(
        catalog(t),
        vec!["mem/app".to_string(), "mem/copy".to_string()]
    );

    // Another repository holds none of it.
    let other = anon.get_manifest("mem/other", md.as_str()).unwrap();
    assert_eq!(status_of(drive(&mut { other }, t)), 404);
    let head = |t: &mut T, repo: &str, d: &Digest| {
        drive(&mut anon.head_blob(repo, d).unwrap(), t).unwrap()
    };
    assert_eq!(head(t, "mem/other", &ld.digest), None);
    assert_eq!(head(t, "mem/app", &ld.digest), Some(ld.size));

    // A blob a manifest of the repository needs cannot be deleted (405): delete the manifest first.
    let del_blob =
        |t: &mut T, repo: &str, d: &Digest| drive(&mut pusher.delete_blob(repo, d).unwrap(), t);
    assert_eq!(status_of(del_blob(t, "mem/app", &ld.digest)), 405);

    // Deleting the manifest by digest in one repository leaves the other's tag and manifest alone.
    let del_manifest =
        |t: &mut T, repo: &str| drive(&mut pusher.delete_manifest(repo, md.as_str()).unwrap(), t);
    del_manifest(t, "mem/app").unwrap();
    assert_eq!(status_of(del_manifest(t, "mem/app")), 404, "deleted once");
    let gone = anon.get_manifest("mem/app", "v1").unwrap();
    assert_eq!(status_of(drive(&mut { gone }, t)), 404);
    let kept = drive(&mut anon.get_manifest("mem/copy", "t2").unwrap(), t).unwrap();
    assert_eq!(kept.bytes, manifest);
    assert_eq!(tags(t, "mem/copy"), vec!["t2".to_string()]);
    assert_eq!(catalog(t), vec!["mem/copy".to_string()]);

    // Now the layer is only a pushed blob of mem/app: its delete unlinks it there, and only there.
    del_blob(t, "mem/app", &ld.digest).unwrap();
    assert_eq!(head(t, "mem/app", &ld.digest), None);
    assert_eq!(head(t, "mem/copy", &ld.digest), Some(ld.size));
    assert_eq!(head(t, "mem/app", &xd.digest), Some(xd.size));
}

#[test]
fn the_registry_client_runs_the_scenario_in_memory_with_no_file_system() {
    const HOST: &str = "127.0.0.1:5000";
    // A root under /dev/null can never be created: any attempt to touch the disk store would fail the scenario.
    let root = std::path::PathBuf::from("/dev/null/no-store");
    let mut cfg = Config::new(HOST.parse().unwrap(), root.clone());
    cfg.token = Some(TOKEN.into());
    let mem = MemStorage::new(8 << 20);
    let svc = Service::with_storage(cfg, HOST.parse().unwrap(), Arc::new(mem.clone())).unwrap();
    let mut t = Pair {
        svc,
        host: HOST.into(),
        requests: 0,
    };
    scenario(&mut t, HOST);
    // Unlinked bytes go only when room is needed, and every one here is still named by mem/copy's manifest.
    assert_eq!(mem.blob_count(), 4, "config, layer, sha512 layer, manifest");
    assert!(!root.exists());
    println!(
        "registry client ↔ serve in memory: {} requests, no socket, {} bytes in memory",
        t.requests,
        mem.used()
    );
}

#[test]
fn the_registry_client_runs_the_scenario_over_loopback_on_the_disk_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let mut cfg = Config::new("127.0.0.1:0".parse().unwrap(), root.clone());
    cfg.token = Some(TOKEN.into());
    cfg.threads = 4;
    let server = Server::start(cfg).unwrap();
    let host = server.addr().to_string();
    let mut t = UreqTransport::new(&HttpOptions::default());
    scenario(&mut t, &host);
    // The bytes are in the store on disk, sha512 under its own directory.
    let xd = sha512_of(
        &(0..70_000u32)
            .map(|i| (i * 7 % 253) as u8)
            .collect::<Vec<_>>(),
    );
    assert!(root.join("blobs/sha512").join(xd.encoded()).is_file());
    server.shutdown();
}

#[test]
fn the_registry_client_runs_the_scenario_over_loopback_on_the_memory_store() {
    let root = std::path::PathBuf::from("/dev/null/no-store");
    let mut cfg = Config::new("127.0.0.1:0".parse().unwrap(), root.clone());
    cfg.token = Some(TOKEN.into());
    cfg.threads = 4;
    let mem = MemStorage::new(8 << 20);
    let server = Server::start_with_storage(cfg, Arc::new(mem.clone())).unwrap();
    let host = server.addr().to_string();
    scenario(&mut UreqTransport::new(&HttpOptions::default()), &host);
    assert_eq!(mem.blob_count(), 4, "config, layer, sha512 layer, manifest");
    assert!(!root.exists());
    server.shutdown();
}
