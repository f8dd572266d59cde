//! The registry client against serve's registry in memory, with no socket between them (quinn-proto's `Pair`
//! style): the client's [`Transport`] hands each request to [`Service::handle`]. The whole protocol runs as it does
//! over the network: the Bearer challenge, the anonymous pull token and the token for pushes, uploads, manifests
//! by tag and digest, tags, deletes.

use std::io::{Cursor, Read};

use layerwright::serve::http::{Method as SMethod, Request as SRequest};
use layerwright::serve::{Config, Service};
use lw_oci::{media, Descriptor, Digest};
use lw_registry::{
    drive, drive_with, BlobIo, Client, ClientConfig, Credentials, Error, Method, Request,
    ResponseHead, SendBody, Transport, TransportError,
};

const HOST: &str = "127.0.0.1:5000";

/// A transport that calls the service directly.
struct Pair {
    svc: Service,
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
            .strip_prefix(&format!("http://{HOST}"))
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
        let method = match request.method {
            Method::Get => SMethod::Get,
            Method::Head => SMethod::Head,
            Method::Post => SMethod::Post,
            Method::Put => SMethod::Put,
            Method::Patch => SMethod::Patch,
            Method::Delete => SMethod::Delete,
        };
        let mut headers = request.headers.clone();
        headers.push(("Host".into(), HOST.into()));
        let len = bytes.len() as u64;
        headers.push(("Content-Length".into(), len.to_string()));
        let mut req = SRequest::new(
            method,
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

fn client(creds: Credentials) -> Client {
    let mut c = ClientConfig::new(HOST);
    c.plain_http = true;
    c.credentials = creds;
    Client::new(c)
}

#[test]
fn the_registry_client_pushes_and_pulls_through_serve_in_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(HOST.parse().unwrap(), tmp.path().join("s"));
    cfg.token = Some("in-memory-token".into());
    let svc = Service::open(cfg, HOST.parse().unwrap()).unwrap();
    let mut t = Pair { svc, requests: 0 };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let cd = Descriptor::of(media::OCI_CONFIG, &config);
    let ld = Descriptor::of(media::OCI_LAYER_GZIP, &layer);
    let mut io = Mem {
        blobs: vec![
            (cd.digest.clone(), config.clone()),
            (ld.digest.clone(), layer.clone()),
        ],
        ..Mem::default()
    };

    // Anonymous: the client follows the Bearer challenge to a pull-only token, which cannot push.
    let anon = client(Credentials::Anonymous);
    let e = drive_with(
        &mut anon.upload_blob("mem/app", &cd).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");

    // With the token as password: uploads (one monolithic, one in chunks) and the manifest by tag.
    let pusher = client(Credentials::Basic {
        username: "anyone".into(),
        password: "in-memory-token".into(),
    });
    drive_with(
        &mut pusher.upload_blob("mem/app", &cd).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    drive_with(
        &mut pusher
            .upload_blob("mem/app", &ld)
            .unwrap()
            .chunk_size(30_000),
        &mut t,
        &mut io,
    )
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": cd, "layers": [ld],
    }))
    .unwrap();
    let md = Digest::sha256_of(&manifest);
    let put = drive(
        &mut pusher
            .put_manifest("mem/app", "v1", media::OCI_MANIFEST, manifest.clone())
            .unwrap(),
        &mut t,
    )
    .unwrap();
    assert_eq!(put, md);

    // Pulled back anonymously: the same bytes, verified by the client.
    let got = drive(&mut anon.get_manifest("mem/app", "v1").unwrap(), &mut t).unwrap();
    assert_eq!(got.digest, md);
    assert_eq!(got.bytes, manifest);
    drive_with(
        &mut anon.get_blob("mem/app", &ld.digest, Some(ld.size)).unwrap(),
        &mut t,
        &mut io,
    )
    .unwrap();
    assert_eq!(io.downloaded, layer);
    let tags = drive(&mut anon.list_tags("mem/app").unwrap(), &mut t).unwrap();
    assert_eq!(tags, vec!["v1".to_string()]);
    // Another repository holds none of it.
    let e = drive(
        &mut anon.get_manifest("mem/other", &md.to_string()).unwrap(),
        &mut t,
    )
    .unwrap_err();
    assert!(matches!(&e, Error::Registry { status: 404, .. }), "{e}");
    // Deleting by digest removes the tag; the manifest is gone from the repository.
    drive(
        &mut pusher.delete_manifest("mem/app", &md.to_string()).unwrap(),
        &mut t,
    )
    .unwrap();
    assert!(drive(&mut anon.get_manifest("mem/app", "v1").unwrap(), &mut t).is_err());
    println!(
        "registry client ↔ serve in memory: {} requests, no socket",
        t.requests
    );
}
