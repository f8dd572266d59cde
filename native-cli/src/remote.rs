//! Blocking pull and push over the sans-I/O registry client, for the CLI.
//!
//! `pull_image` and `push_image` drive lw_registry's whole-image operations ([`PullImage`], [`PushImage`]) over
//! the blocking HTTPS transport; what to fetch, skip, mount and verify is decided there, the same as in the tab.
//! This module keeps only the connection: scheme probing, stored credentials, options.

use anyhow::{Context, Result};
use lw_oci::{Descriptor, Platform};
pub use lw_registry::transfer::MemoryImages;
use lw_registry::{
    BlobIo, Client, ClientConfig, Credentials, Operation, PullImage, PullTarget, PushImage,
    PushSource, RetryPolicy,
};
pub use lw_registry::{PulledImage, PushReport};

use crate::http::{is_loopback, HttpOptions, UreqTransport};

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RemoteOptions {
    /// Allow plain HTTP and unverified TLS to this registry.
    pub insecure: bool,
    /// Force `http://` (`Some(true)`) or `https://` (`Some(false)`). `None`: HTTPS, falling back to plain HTTP for
    /// loopback registries and with `insecure` when HTTPS cannot connect (as docker does).
    pub plain_http: Option<bool>,
    /// Prefix for every URL (a proxy).
    pub proxy_prefix: Option<String>,
    /// `None`: from docker's `config.json` and credential helpers.
    pub credentials: Option<Credentials>,
    pub retry: Option<RetryPolicy>,
    /// Upload blobs larger than this in chunks of this size.
    pub chunk_size: Option<u64>,
}

/// Options for one push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Try to mount blobs from this repository of the same registry first.
    pub mount_from: Option<String>,
}

/// A connection to one registry.
pub struct Remote {
    client: Client,
    transport: UreqTransport,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("client", &self.client)
            .finish()
    }
}

fn client_config(
    host: &str,
    opts: &RemoteOptions,
    creds: Credentials,
    plain: bool,
) -> ClientConfig {
    let mut c = ClientConfig::new(host);
    c.plain_http = plain;
    c.proxy_prefix = opts.proxy_prefix.clone();
    c.credentials = creds;
    if let Some(r) = &opts.retry {
        c.retry = r.clone();
    }
    if let Some(n) = opts.chunk_size {
        c.chunk_size = n;
    }
    c
}

impl Remote {
    /// Connect to `host` (`registry[:port]` as in references). Picks the scheme, loading credentials unless given.
    pub fn connect(host: &str, opts: &RemoteOptions) -> Result<Remote> {
        let creds = match &opts.credentials {
            Some(c) => c.clone(),
            None => match crate::credentials::credentials_for(host) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warning: could not read stored credentials for {host}: {e:#}; continuing anonymously");
                    Credentials::Anonymous
                }
            },
        };
        let transport = UreqTransport::new(&HttpOptions {
            insecure: opts.insecure,
            ..Default::default()
        });
        let may_fall_back = opts.insecure || is_loopback(host);
        let plain = match opts.plain_http {
            Some(p) => p,
            None if may_fall_back => {
                // Probe HTTPS; fall back to plain HTTP when it cannot even connect.
                let mut probe_cfg = client_config(host, opts, Credentials::Anonymous, false);
                probe_cfg.retry = RetryPolicy::none();
                let probe = Client::new(probe_cfg);
                let mut t = UreqTransport::new(&HttpOptions {
                    insecure: true,
                    ..Default::default()
                });
                matches!(
                    lw_registry::drive(&mut probe.ping(), &mut t),
                    Err(lw_registry::Error::Transport { .. })
                )
            }
            None => false,
        };
        Ok(Remote {
            client: Client::new(client_config(host, opts, creds, plain)),
            transport,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Drive any operation of this client to completion.
    pub fn run<O: Operation>(&mut self, op: &mut O) -> Result<O::Output, lw_registry::Error> {
        lw_registry::drive(op, &mut self.transport)
    }

    /// Drive an operation with blob bytes going through `io`.
    pub fn run_with<O: Operation>(
        &mut self,
        op: &mut O,
        io: &mut dyn BlobIo,
    ) -> Result<O::Output, lw_registry::Error> {
        lw_registry::drive_with(op, &mut self.transport, io)
    }

    /// Check that the registry answers, and accepts the credentials (for `login`).
    pub fn ping(&mut self) -> Result<(), lw_registry::Error> {
        let mut op = self.client.ping();
        self.run(&mut op)
    }

    /// Pull `repo:reference` for `platform` into `target` (see [`PullImage`]).
    pub fn pull_image(
        &mut self,
        repo: &str,
        reference: &str,
        platform: &Platform,
        target: &mut dyn PullTarget,
    ) -> Result<PulledImage> {
        let name = format!("{}/{repo}:{reference}", self.client.config().registry);
        let mut op = PullImage::new(&self.client, repo, reference, platform, target)?;
        self.run(&mut op).with_context(|| format!("pulling {name}"))
    }

    /// Push the manifest or index `root` (and everything it references) from `source` to `repo:tag` (see
    /// [`PushImage`]); blob bytes are read from `source` as the registry asks for them.
    pub fn push_image<S: PushSource + BlobIo>(
        &mut self,
        repo: &str,
        tag: &str,
        root: &Descriptor,
        source: &mut S,
        opts: &PushOptions,
    ) -> Result<PushReport> {
        let name = format!("{}/{repo}:{tag}", self.client.config().registry);
        let mut op = PushImage::new(&self.client, repo, tag, root, source)
            .with_context(|| format!("pushing {name}"))?
            .mount_from(opts.mount_from.as_deref());
        self.run_with(&mut op, source)
            .with_context(|| format!("pushing {name}"))
    }
}

/// Pull `repo:reference` from `host` for `platform` into `sink`, with default options (stored credentials).
pub fn pull_image(
    host: &str,
    repo: &str,
    reference: &str,
    platform: &Platform,
    target: &mut dyn PullTarget,
) -> Result<PulledImage> {
    Remote::connect(host, &RemoteOptions::default())?.pull_image(repo, reference, platform, target)
}

/// Push `root` from `source` to `host/repo:tag`, with default options (stored credentials).
pub fn push_image(
    host: &str,
    repo: &str,
    tag: &str,
    root: &Descriptor,
    source: &mut (impl PushSource + BlobIo),
) -> Result<PushReport> {
    Remote::connect(host, &RemoteOptions::default())?.push_image(
        repo,
        tag,
        root,
        source,
        &PushOptions::default(),
    )
}
