//! Registry commands: pull, push, login, logout, copy, ls (tags), manifest, digest, catalog.

use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use layerwright::credentials::{AuthEntry, DockerConfig};
use layerwright::names;
use layerwright::remote::{Remote, RemoteOptions};
use layerwright::store::{self, Store};
use layerwright::transfer::{self, split};
use lw_oci::Platform;
use lw_registry::Credentials;

/// Connection flags shared by the registry commands (docker's and skopeo's names).
#[derive(Args, Clone, Default)]
pub struct ConnArgs {
    /// Allow plain HTTP and unverified TLS (always allowed for localhost)
    #[arg(long, global = true)]
    insecure: bool,
    /// Require HTTPS and verify certificates (false = --insecure)
    #[arg(long, value_name = "BOOL", global = true)]
    tls_verify: Option<bool>,
    /// Print JSON for scripts
    #[arg(long, global = true)]
    json: bool,
}

impl ConnArgs {
    fn options(&self) -> RemoteOptions {
        RemoteOptions {
            insecure: self.insecure || self.tls_verify == Some(false),
            ..Default::default()
        }
    }
}

#[derive(Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    image: String,
    /// Platform (os/arch[/variant]) to pull from a multi-platform image
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct PushArgs {
    /// Local image
    image: String,
    /// Destination reference (default: the image name itself)
    dest: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host (default: docker.io)
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct LogoutArgs {
    server: Option<String>,
}

#[derive(Args)]
pub struct CopyArgs {
    /// Source: REF (registry), docker://REF, oci-archive:FILE[:REF], docker-archive:FILE[:REF]
    src: String,
    /// Destination, same forms
    dest: String,
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct RepoArgs {
    /// Repository (registry/name)
    repo: String,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct RefArgs {
    /// Image reference
    image: String,
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Args)]
pub struct CatalogArgs {
    /// Registry host
    registry: String,
    #[command(flatten)]
    conn: ConnArgs,
}

fn platform(p: &Option<String>) -> Result<Platform> {
    match p {
        Some(s) => Platform::parse(s).map_err(|e| anyhow!("--platform: {e}")),
        None => Ok(store::host_platform()),
    }
}

pub fn pull(root: &Path, a: PullArgs) -> Result<()> {
    let store = Store::open(root)?;
    // Blobs written here are unnamed until the end: a concurrent prune must not take them.
    let _lease = store.lease()?;
    let (name, desc) = transfer::pull(
        &store,
        &a.image,
        &platform(&a.platform)?,
        &a.conn.options(),
        a.quiet || a.conn.json,
    )?;
    if a.conn.json {
        println!(
            "{}",
            serde_json::json!({"name": name, "digest": desc.digest.to_string(), "mediaType": desc.media_type})
        );
    } else if a.quiet {
        println!("{name}");
    } else {
        println!(
            "Digest: {}\nStatus: Downloaded image for {}\n{name}",
            desc.digest,
            names::familiar(&name)
        );
    }
    Ok(())
}

pub fn push(root: &Path, a: PushArgs) -> Result<()> {
    let store = Store::open(root)?;
    let dest = a.dest.clone().unwrap_or_else(|| a.image.clone());
    let report = transfer::push(
        &store,
        &a.image,
        &dest,
        &a.conn.options(),
        a.quiet || a.conn.json,
    )?;
    if a.conn.json {
        let blobs: Vec<_> = report
            .blobs
            .iter()
            .map(|(d, o)| serde_json::json!({"digest": d.to_string(), "outcome": format!("{o:?}")}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"digest": report.digest.to_string(), "mediaType": report.media_type, "blobs": blobs})
        );
    } else if !a.quiet {
        for (d, o) in &report.blobs {
            println!("{}: {o:?}", &d.encoded()[..12]);
        }
        let (parsed, ..) = split(&dest)?;
        println!(
            "{}: digest: {}",
            parsed.tag().unwrap_or("latest"),
            report.digest
        );
    }
    Ok(())
}

fn server_key(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "docker.io".to_string())
}

pub fn login(a: LoginArgs) -> Result<()> {
    let server = server_key(&a.server);
    let username = match &a.username {
        Some(u) => u.clone(),
        None => bail!("login needs --username (interactive prompts are not supported)"),
    };
    let password = match (&a.password, a.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut s = String::new();
            io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("login needs --password-stdin or --password"),
    };
    let creds = Credentials::Basic {
        username: username.clone(),
        password: password.clone(),
    };
    let mut opts = a.conn.options();
    opts.credentials = Some(creds);
    let mut remote = Remote::connect(&server, &opts)?;
    remote
        .ping()
        .map_err(|e| anyhow!("login to {server} failed: {e}"))?;
    let mut cfg = DockerConfig::load_default()?;
    cfg.store(
        &server,
        &AuthEntry {
            username,
            secret: password,
            identity_token: false,
        },
    )?;
    cfg.save()?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(a: LogoutArgs) -> Result<()> {
    let server = server_key(&a.server);
    let mut cfg = DockerConfig::load_default()?;
    if cfg.erase(&server)? {
        cfg.save()?;
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(())
}

enum Endpoint {
    Registry(String),
    Archive { file: String, name: Option<String> },
}

fn endpoint(s: &str) -> Endpoint {
    for prefix in ["oci-archive:", "docker-archive:"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            // FILE[:REF]: a reference never contains '/' after the last ':' of a path, so split at the first ':'.
            return match rest.split_once(':') {
                Some((f, r)) => Endpoint::Archive {
                    file: f.into(),
                    name: Some(r.into()),
                },
                None => Endpoint::Archive {
                    file: rest.into(),
                    name: None,
                },
            };
        }
    }
    Endpoint::Registry(s.strip_prefix("docker://").unwrap_or(s).to_string())
}

pub fn copy(root: &Path, a: CopyArgs) -> Result<()> {
    let store = Store::open(root)?;
    // Blobs written here are unnamed until the end: a concurrent prune must not take them.
    let _lease = store.lease()?;
    let opts = a.conn.options();
    // Through the store: digests are kept because manifests travel as their exact bytes.
    let local = match endpoint(&a.src) {
        Endpoint::Registry(r) => {
            transfer::pull(&store, &r, &platform(&a.platform)?, &opts, a.conn.json)?.0
        }
        Endpoint::Archive { file, name } => {
            let f = std::fs::File::open(&file).with_context(|| format!("opening {file}"))?;
            let loaded = layerwright::archive::load(&store, &mut io::BufReader::new(f), &file)?;
            let (names_of, d) = loaded
                .images
                .first()
                .cloned()
                .ok_or_else(|| anyhow!("{file} holds no image"))?;
            match name.map(|n| names::normalize(&n)).transpose()? {
                Some(n) => n,
                None => names_of
                    .first()
                    .cloned()
                    .unwrap_or_else(|| d.digest.to_string()),
            }
        }
    };
    match endpoint(&a.dest) {
        Endpoint::Registry(r) => {
            let report = transfer::push(&store, &local, &r, &opts, a.conn.json)?;
            println!("{}", report.digest);
        }
        Endpoint::Archive { file, name } => {
            let found = names::resolve(&store, &local)?;
            let tag = match name {
                Some(n) => vec![names::normalize(&n)?],
                None => found.name.into_iter().collect(),
            };
            let items = [layerwright::archive::SaveItem {
                names: tag,
                descriptor: found.descriptor.clone(),
            }];
            let path = std::path::PathBuf::from(&file);
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ".".into());
            let (tmp, f) = store::tempfile_in(&dir)?;
            let mut w = io::BufWriter::new(f);
            layerwright::archive::save(&store, &items, &mut w, &indicatif::ProgressBar::hidden())?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            println!("{}", found.descriptor.digest);
        }
    }
    Ok(())
}

pub fn ls(a: RepoArgs) -> Result<()> {
    let (parsed, host, repo, _) = split(&a.repo)?;
    let _ = parsed;
    let mut remote = Remote::connect(&host, &a.conn.options())?;
    let mut op = remote.client().list_tags(&repo)?;
    let tags = remote.run(&mut op)?;
    if a.conn.json {
        println!("{}", serde_json::to_string_pretty(&tags)?);
    } else {
        for t in tags {
            println!("{t}");
        }
    }
    Ok(())
}

pub fn manifest(a: RefArgs) -> Result<()> {
    let (_, host, repo, rf) = split(&a.image)?;
    let mut remote = Remote::connect(&host, &a.conn.options())?;
    let mut op = remote.client().get_manifest(&repo, &rf)?;
    let m = remote.run(&mut op)?;
    let mut out = io::stdout().lock();
    out.write_all(&m.bytes)?;
    if io::stdout().is_terminal() {
        writeln!(out)?;
    }
    Ok(())
}

pub fn digest(a: RefArgs) -> Result<()> {
    let (_, host, repo, rf) = split(&a.image)?;
    let mut remote = Remote::connect(&host, &a.conn.options())?;
    let mut op = remote.client().get_manifest(&repo, &rf)?;
    let m = remote.run(&mut op)?;
    println!("{}", m.digest);
    Ok(())
}

pub fn catalog(a: CatalogArgs) -> Result<()> {
    let mut remote = Remote::connect(&a.registry, &a.conn.options())?;
    let mut op = remote.client().catalog();
    let repos = remote.run(&mut op)?;
    if a.conn.json {
        println!("{}", serde_json::to_string_pretty(&repos)?);
    } else {
        for r in repos {
            println!("{r}");
        }
    }
    Ok(())
}
