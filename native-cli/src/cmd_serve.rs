//! `layerwright serve`: command-line flags for the playground's local server (site, registry, proxy, RUN).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use layerwright::serve::{Config, Server};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; anything else makes every request need the token)
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub addr: String,
    /// Serve the site from this directory instead of the copy built into the binary
    #[arg(long, value_name = "DIR")]
    pub www: Option<PathBuf>,
    /// Open the site in a browser
    #[arg(long)]
    pub open: bool,
    /// Also allow this origin (CORS and the Origin check); repeatable
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Only proxy to this registry host; repeatable (default: any)
    #[arg(long = "allow-upstream", value_name = "HOST")]
    pub allow_upstream: Vec<String>,
    /// Use this token instead of a random one (also LAYERWRIGHT_SERVE_TOKEN)
    #[arg(
        long,
        value_name = "TOKEN",
        env = "LAYERWRIGHT_SERVE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Upstream credentials for the proxy, HOST=USER:PASSWORD; repeatable (default: docker's config.json)
    #[arg(
        long = "proxy-credentials",
        value_name = "HOST=USER:PASS",
        hide_env_values = true
    )]
    pub proxy_credentials: Vec<String>,
    /// Worker threads
    #[arg(long, default_value_t = 32)]
    pub threads: usize,
    /// Store pushed repository NAME as PREFIX/NAME (so a push never re-points a name builds use); `docker.io`
    /// stores it under docker's normalised name instead (`busybox` -> `docker.io/library/busybox`)
    #[arg(
        long = "repo-prefix",
        default_value = "localhost",
        value_name = "PREFIX"
    )]
    pub repo_prefix: String,
    /// Drop an upload no request has touched for this many seconds (its blobs' pins go with it)
    #[arg(long = "upload-idle", default_value_t = 3600, value_name = "SECS")]
    pub upload_idle: u64,
    /// SSH agent the tab's RUN steps may mount (--mount=type=ssh, through /api/run), and for `default` the one its
    /// git sources over SSH are fetched with (ADD ssh://..., through /api/git): default (the agent at
    /// $SSH_AUTH_SOCK), ID, or ID=SOCKET|KEY; repeatable (default: none)
    #[arg(long)]
    pub ssh: Vec<String>,
}

fn parse_creds(v: &[String]) -> Result<BTreeMap<String, (String, String)>> {
    let mut out = BTreeMap::new();
    for s in v {
        let (host, up) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--proxy-credentials wants HOST=USER:PASSWORD"))?;
        let (u, p) = up
            .split_once(':')
            .ok_or_else(|| anyhow!("--proxy-credentials wants HOST=USER:PASSWORD"))?;
        out.insert(host.to_string(), (u.to_string(), p.to_string()));
    }
    Ok(out)
}

pub fn serve(root: &Path, args: ServeArgs) -> Result<()> {
    let addr = args
        .addr
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            args.addr
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(())
        })
        .map_err(|_| anyhow!("--addr {}: not an address", args.addr))?;
    if args.token.as_deref() == Some("") {
        bail!("--token must not be empty");
    }
    let mut cfg = Config::new(addr, root.to_path_buf());
    cfg.www = args.www;
    cfg.cors_origins = args.cors_origin;
    cfg.allow_upstream = args.allow_upstream;
    cfg.token = args.token;
    cfg.proxy_credentials = parse_creds(&args.proxy_credentials)?;
    cfg.threads = args.threads;
    cfg.repo_prefix = args.repo_prefix;
    cfg.upload_idle = std::time::Duration::from_secs(args.upload_idle);
    // The agents live as long as the server (key files get an agent of their own, stopped on drop).
    let agents =
        layerwright::run::sshfwd::SshAgents::start(layerwright::run::sshfwd::parse_ssh_flags(
            &args.ssh,
            std::env::var("SSH_AUTH_SOCK").ok().as_deref(),
        )?)?;
    cfg.ssh = agents.sockets.clone();
    let server = Server::start(cfg)?;
    let url = server.url();
    if !server.addr().ip().is_loopback() {
        eprintln!(
            "warning: listening on {}, not loopback: every request needs the token",
            server.addr()
        );
    }
    // The URL goes to stdout (scripts read it); the token is in it on purpose, and nowhere else is it logged.
    println!("{url}");
    eprintln!(
        "layerwright serve: site, registry at http://{0}/v2/ (push with any user and the token as password), \
proxy at http://{0}/proxy/HOST/v2/, RUN at /api/run",
        server.addr()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    if args.open {
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    server.wait();
    Ok(())
}
