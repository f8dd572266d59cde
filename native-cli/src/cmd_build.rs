//! `layerwright build`: docker's flags over the core build engine, with the on-disk store as cache and output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use layerwright::archive::{self, SaveItem};
use layerwright::buildhost::{StoreBlobs, StoreCache, StoreImages};
use layerwright::context::DirContext;
use layerwright::named_contexts::NamedImages;
use layerwright::names;
use layerwright::run::sshfwd::SshAgents;
use layerwright::statcache::StatCache;
use layerwright::store::{self, Store};
use lw_engine::context::{Context as _, MemoryContext};
use lw_engine::engine::{self, BuildOptions, Host};
use lw_engine::events::BuildEvent;
use lw_oci::{Descriptor, Platform};

#[derive(Args)]
pub struct BuildArgs {
    /// Build context directory, or `-` to read a tar archive from STDIN
    #[arg(default_value = ".")]
    context: String,
    /// Name and optionally a tag (name:tag); repeatable
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; `-` reads STDIN)
    #[arg(short, long = "file")]
    file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Target platforms (os/arch[/variant], comma-separated for an index)
    #[arg(long)]
    platform: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Set metadata for an image (KEY=VALUE); repeatable
    #[arg(long)]
    label: Vec<String>,
    /// Output: type=oci|docker,dest=FILE (a tarball) or type=image (the store only), with BuildKit's
    /// compression=gzip|zstd|uncompressed and compression-level=N
    #[arg(short, long)]
    output: Option<String>,
    /// Compression of the layers this build writes: gzip (default), zstd or uncompressed
    #[arg(long)]
    compression: Option<String>,
    /// Compression level (gzip 0-9, default 6; zstd 1-19, default 3)
    #[arg(long)]
    compression_level: Option<String>,
    /// Progress output: auto or plain
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Timestamp for files and history (default: $SOURCE_DATE_EPOCH, else 0)
    #[arg(long)]
    source_date_epoch: Option<i64>,
    /// Keep the context files' own mtimes and the epoch only for `created` (docker's behaviour)
    #[arg(long)]
    keep_mtimes: bool,
    /// Networking mode for RUN instructions (default, none, host)
    #[arg(long, default_value = "default")]
    network: String,
    /// Add a custom host-to-IP mapping (NAME:IP) to every RUN step's /etc/hosts; repeatable
    #[arg(long = "add-host", value_name = "NAME:IP")]
    add_host: Vec<String>,
    /// Secret for RUN --mount=type=secret: id=ID,src=FILE; repeatable
    #[arg(long)]
    secret: Vec<String>,
    /// Named context for FROM/COPY --from/RUN --mount=from: NAME=DIR, NAME=docker-image://REF or
    /// NAME=oci-layout://PATH[:TAG|@DIGEST]; repeatable
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_context: Vec<String>,
    /// SSH agent for RUN --mount=type=ssh: default (the agent at $SSH_AUTH_SOCK), ID, or ID=SOCKET|KEY; repeatable
    #[arg(long)]
    ssh: Vec<String>,
    /// OCI runtime for RUN steps: runc, crun or a path (default: the first of runc, crun installed)
    #[arg(long, env = "LAYERWRIGHT_RUNTIME")]
    runtime: Option<String>,
}

/// A context read from a tar on STDIN.
fn stdin_context() -> Result<MemoryContext> {
    let mut ctx = MemoryContext::new();
    let stdin = io::stdin();
    let mut r = lw_layer::tar::TarReader::new(io::BufReader::new(stdin.lock()));
    while let Some(e) = r
        .next_entry()
        .context("reading the build context from STDIN")?
    {
        if e.path.is_empty() {
            continue;
        }
        match &e.kind {
            lw_layer::EntryKind::Dir => {
                ctx.insert_dir(&e.path)?.mode = e.mode;
            }
            lw_layer::EntryKind::Symlink(t) => {
                ctx.insert_symlink(&e.path, t)?;
            }
            lw_layer::EntryKind::File => {
                let data = r.read_to_vec(1 << 30)?;
                ctx.insert_file(&e.path, data)?.mode = e.mode;
            }
            _ => {}
        }
    }
    Ok(ctx)
}

/// What `--output` asks for: a tarball (`oci` or `docker`) at `dest`, or the store only (`image`), and the
/// layers' compression when it names one.
#[derive(Debug, PartialEq)]
struct OutputSpec {
    kind: String,
    dest: Option<PathBuf>,
    compression: Option<String>,
    level: Option<String>,
}

fn parse_output(out: &str) -> Result<OutputSpec> {
    let mut spec = OutputSpec {
        kind: "oci".into(),
        dest: None,
        compression: None,
        level: None,
    };
    for part in out.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => spec.kind = v.to_string(),
            Some(("dest", v)) => spec.dest = Some(PathBuf::from(v)),
            Some(("compression", v)) => spec.compression = Some(v.to_string()),
            Some(("compression-level", v)) => spec.level = Some(v.to_string()),
            // BuildKit's force-compression also recompresses base image layers; ours are always left as they are.
            Some(("force-compression", "false")) => {}
            Some(("force-compression", v)) => bail!(
                "--output {out:?}: force-compression={v} is not supported (base image layers keep their compression)"
            ),
            _ => bail!(
                "--output {out:?}: expected type=oci|docker|image,dest=FILE[,compression=gzip|zstd|uncompressed][,compression-level=N]"
            ),
        }
    }
    match spec.kind.as_str() {
        "oci" | "docker" | "tar" if spec.dest.is_none() => bail!("--output needs dest=FILE"),
        "oci" | "docker" | "tar" => {}
        "image" if spec.dest.is_some() => bail!("--output type=image takes no dest"),
        "image" => {}
        kind => bail!("--output type={kind} is not supported (use oci, docker or image)"),
    }
    Ok(spec)
}

/// The layer format from `--compression`/`--compression-level` and `--output`'s options (they must agree).
fn layer_format(
    a: &BuildArgs,
    out: Option<&OutputSpec>,
) -> Result<lw_layer::compress::LayerFormat> {
    let flag = a.compression.as_deref();
    let opt = out.and_then(|o| o.compression.as_deref());
    let name = match (flag, opt) {
        (Some(f), Some(o)) if f != o => {
            bail!("--compression {f} and --output compression={o} disagree")
        }
        (f, o) => f.or(o),
    };
    let level = match (
        a.compression_level.as_deref(),
        out.and_then(|o| o.level.as_deref()),
    ) {
        (Some(f), Some(o)) if f != o => {
            bail!("--compression-level {f} and --output compression-level={o} disagree")
        }
        (f, o) => f.or(o),
    };
    if name.is_none() && level.is_some() {
        bail!("compression-level needs a compression (gzip or zstd)");
    }
    match name {
        None => Ok(lw_layer::compress::LayerFormat::GZIP),
        Some(n) => lw_layer::compress::LayerFormat::parse(n, level).map_err(|e| anyhow!("{e}")),
    }
}

fn parse_kv(list: &[String], what: &str, from_env: bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(kv) {
                    out.insert(kv.clone(), v);
                }
            }
            None => bail!("invalid {what} {kv:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

struct Progress {
    plain: bool,
    quiet: bool,
    step_start: Instant,
    spinner: Option<indicatif::ProgressBar>,
    counter: usize,
}

impl Progress {
    fn event(&mut self, e: &BuildEvent) {
        if self.quiet {
            return;
        }
        match e {
            BuildEvent::StepStarted {
                stage,
                step,
                total,
                text,
                ..
            } => {
                self.counter += 1;
                self.step_start = Instant::now();
                let line = format!("#{} [stage-{stage} {step}/{total}] {text}", self.counter);
                match &self.spinner {
                    Some(s) => s.set_message(line),
                    None => eprintln!("{line}"),
                }
            }
            BuildEvent::StepFinished {
                cached,
                layer,
                size,
                ..
            } => {
                let t = self.step_start.elapsed().as_secs_f64();
                let what = match (cached, layer) {
                    (true, _) => "CACHED".to_string(),
                    (false, Some(d)) => format!(
                        "DONE {t:.1}s layer {} ({})",
                        &d[..19],
                        layerwright::humanize::human_size(*size)
                    ),
                    (false, None) => format!("DONE {t:.1}s"),
                };
                let line = format!("#{} {what}", self.counter);
                match &self.spinner {
                    Some(s) => s.println(format!("{} {}", s.message(), what)),
                    None => eprintln!("{line}"),
                }
            }
            BuildEvent::StageSkipped { stage, name } if self.plain => {
                eprintln!(
                    "# skipping stage {stage}{} (not needed by the target)",
                    name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
                );
            }
            BuildEvent::StageSkipped { .. } => {}
            BuildEvent::Output { data, .. } => {
                for l in data.lines() {
                    let line = format!("#{} {l}", self.counter);
                    match &self.spinner {
                        Some(s) => s.println(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
            BuildEvent::Warning { line, message } => eprintln!("WARNING: line {line}: {message}"),
            _ => {}
        }
    }
}

impl Progress {
    /// `--progress plain` (or no terminal): a line per event; otherwise a spinner, unless `-q`.
    fn new(mode: &str, quiet: bool) -> Progress {
        let plain = mode == "plain" || !io::stderr().is_terminal();
        Progress {
            plain,
            quiet,
            step_start: Instant::now(),
            spinner: (!plain && !quiet).then(|| {
                let s = indicatif::ProgressBar::new_spinner();
                s.enable_steady_tick(std::time::Duration::from_millis(120));
                s
            }),
            counter: 0,
        }
    }
}

/// The last lines: the image ID alone with `-q`, else what was written and its names.
fn report(
    quiet: bool,
    image_id: &lw_oci::Digest,
    desc: &Descriptor,
    tags: &[String],
    started: Instant,
) -> Result<()> {
    if quiet {
        println!("{image_id}");
    } else {
        eprintln!(
            "writing image {image_id} ({} manifest {}) in {:.1}s",
            desc.media_type,
            desc.digest,
            started.elapsed().as_secs_f64()
        );
        for t in tags {
            eprintln!("naming to {t}");
        }
    }
    io::stdout().flush()?;
    Ok(())
}

/// What a build reads: the Dockerfile, the context, and the stat cache of a directory context.
struct Input {
    dockerfile: Vec<u8>,
    context: Box<dyn lw_engine::context::Context>,
    stat_cache: Option<Arc<StatCache>>,
}

/// `--source-date-epoch`, else `$SOURCE_DATE_EPOCH`, else 0.
fn source_date_epoch(a: &BuildArgs) -> Result<i64> {
    Ok(match a.source_date_epoch {
        Some(e) => e,
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => v
                .parse()
                .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number"))?,
            _ => 0,
        },
    })
}

/// The Dockerfile and the context: a directory (with its .dockerignore and the store's stat cache for it) or a
/// tar on STDIN; the Dockerfile from `-f`, STDIN or the context.
fn read_input(store: &Store, a: &BuildArgs, dockerfile_name: &str) -> Result<Input> {
    let mut stat_cache: Option<Arc<StatCache>> = None;
    let (dockerfile, context): (Vec<u8>, Box<dyn lw_engine::context::Context>) = if a.context == "-"
    {
        if a.file.as_deref() == Some("-") {
            bail!("the Dockerfile and the context cannot both come from STDIN");
        }
        let ctx = stdin_context()?;
        let df = match &a.file {
            Some(f) => std::fs::read(f).with_context(|| format!("reading {f}"))?,
            None => ctx
                .read_file("Dockerfile")
                .map_err(|_| anyhow!("the context on STDIN has no Dockerfile"))?,
        };
        (df, Box::new(ctx))
    } else {
        let dir = PathBuf::from(&a.context);
        if !dir.is_dir() {
            bail!("unable to prepare context: path {:?} not found", a.context);
        }
        let df = match a.file.as_deref() {
            Some("-") => {
                let mut v = Vec::new();
                io::stdin().read_to_end(&mut v)?;
                v
            }
            Some(f) => std::fs::read(f).with_context(|| format!("reading Dockerfile {f}"))?,
            None => std::fs::read(dir.join("Dockerfile"))
                .with_context(|| format!("no Dockerfile in {} (use -f)", dir.display()))?,
        };
        let base = Path::new(&dockerfile_name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let sc = Arc::new(StatCache::open(store.root(), &dir));
        stat_cache = Some(sc.clone());
        (
            df,
            Box::new(DirContext::with_dockerignore(&dir, base.as_deref())?.with_stat_cache(sc)),
        )
    };
    Ok(Input {
        dockerfile,
        context,
        stat_cache,
    })
}

/// `--output type=oci|docker,dest=FILE`: the image as one archive, written atomically.
fn write_output(store: &Store, dest: &Path, tags: &[String], desc: &Descriptor) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    let (tmp, f) = store::tempfile_in(&dir)?;
    let mut w = io::BufWriter::new(f);
    let items = [SaveItem {
        names: tags.to_vec(),
        descriptor: desc.clone(),
    }];
    archive::save(store, &items, &mut w, &indicatif::ProgressBar::hidden())?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// The image source: `--build-context` names first, then the store (pulling what it lacks); and the names, for
/// the engine (lower-cased).
fn images<'s>(
    store: &'s Store,
    a: &BuildArgs,
    epoch: i64,
    quiet: bool,
) -> Result<(NamedImages<'s, StoreImages<'s>>, BTreeSet<String>)> {
    let named = a
        .build_context
        .iter()
        .map(|s| layerwright::named_contexts::parse_build_context(s))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let images = layerwright::named_contexts::named_images(
        StoreImages {
            store,
            pull: Some(Box::new(move |r: &str, p: &Platform| {
                layerwright::transfer::pull(store, r, p, &Default::default(), quiet).map(|_| ())
            })),
        },
        store,
        named,
        (!a.keep_mtimes).then_some(epoch),
    )?;
    let names = images.names();
    Ok((images, names))
}

/// What RUN steps and remote sources use: the executor with the `--secret`s and `--ssh` agents, and the fetcher
/// of `ADD <url>`/git with the same secrets (BuildKit's auth secret names) and the `default` agent.
struct Sources {
    agents: SshAgents,
    runner: Box<dyn lw_engine::host::RunExecutor>,
    fetcher: layerwright::buildhost::HttpFetcher,
}

fn sources(store: &Store, a: &BuildArgs) -> Result<Sources> {
    let secrets = a
        .secret
        .iter()
        .map(|s| layerwright::run::parse_secret_flag(s))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let ssh_paths = layerwright::run::sshfwd::parse_ssh_flags(
        &a.ssh,
        std::env::var("SSH_AUTH_SOCK").ok().as_deref(),
    )?;
    let agents = SshAgents::start(ssh_paths)?;
    let fetcher = layerwright::buildhost::HttpFetcher {
        secrets: secrets.clone(),
        ssh_agent: agents.sockets.get("default").cloned(),
        ..Default::default()
    };
    let runner =
        layerwright::run::executor(store, secrets, agents.sockets.clone(), a.runtime.as_deref());
    Ok(Sources {
        agents,
        runner,
        fetcher,
    })
}

pub fn build(root: &Path, a: BuildArgs) -> Result<()> {
    let store = Store::open(root)?;
    // Blobs written here are unnamed until the end: a concurrent prune must not take them.
    let _lease = store.lease()?;
    let epoch = source_date_epoch(&a)?;
    let dockerfile_name = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
    let Input {
        dockerfile,
        context,
        stat_cache,
    } = read_input(&store, &a, &dockerfile_name)?;
    let platforms: Vec<Platform> = match &a.platform {
        None => vec![store::host_platform()],
        Some(list) => lw_engine::platforms::parse_list(list).context("--platform")?,
    };
    let output = a.output.as_deref().map(parse_output).transpose()?;
    let layer_format = layer_format(&a, output.as_ref())?;
    let tags: Vec<String> = a
        .tag
        .iter()
        .map(|t| names::normalize(t))
        .collect::<Result<_>>()?;
    let mut progress = Progress::new(&a.progress, a.quiet);
    let started = Instant::now();
    let mut blobs = StoreBlobs { store: &store };
    let mut cache = StoreCache { store: &store };
    let quiet = a.quiet;
    let (mut images, named_contexts) = images(&store, &a, epoch, quiet)?;
    layerwright::run::network::Mode::parse(&a.network).context("--network")?;
    let extra_hosts = a
        .add_host
        .iter()
        .map(|h| layerwright::run::network::parse_add_host(h))
        .collect::<Result<Vec<_>>>()?;
    // The agents started for key files live until the build ends, with `src`.
    let mut src = sources(&store, &a)?;
    let ssh_ids: BTreeSet<String> = src.agents.sockets.keys().cloned().collect();
    let mut results = Vec::new();
    for p in &platforms {
        let mut opts = BuildOptions::new(dockerfile.clone(), p.clone());
        opts.dockerfile_name = dockerfile_name.clone();
        opts.build_args = parse_kv(&a.build_arg, "--build-arg", true)?;
        opts.labels = parse_kv(&a.label, "--label", false)?;
        opts.target = a.target.clone();
        opts.source_date_epoch = epoch;
        opts.keep_mtimes = a.keep_mtimes;
        opts.no_cache = a.no_cache;
        opts.network = a.network.clone();
        opts.extra_hosts = extra_hosts.clone();
        opts.layer_format = layer_format;
        opts.ssh_ids = ssh_ids.clone();
        opts.named_contexts = named_contexts.clone();
        let mut on_event = |e: BuildEvent| progress.event(&e);
        let mut host = Host {
            context: &*context,
            blobs: &mut blobs,
            images: &mut images,
            run: Some(&mut src.runner),
            fetch: Some(&mut src.fetcher),
            cache: &mut cache,
            events: &mut on_event,
        };
        let r = engine::build(&opts, &mut host);
        if let Some(sc) = &stat_cache {
            // The digests hashed so far stay valid whether or not the build succeeded.
            if let Err(e) = sc.save() {
                eprintln!("warning: could not save the context's stat cache: {e:#}");
            }
        }
        results.push((p.clone(), r.map_err(|e| anyhow!("{e}"))?));
    }
    if let Some(s) = &progress.spinner {
        s.finish_and_clear();
    }
    // One platform: the manifest; several: an index over them.
    let lw_engine::platforms::Assembled {
        descriptor: desc,
        image_id,
    } = lw_engine::platforms::assemble(&mut blobs, &results).map_err(|e| anyhow!("{e}"))?;
    if tags.is_empty() {
        store.add_untagged(&desc)?;
    }
    for t in &tags {
        store.set_tag(t, &desc)?;
    }
    if let Some(path) = &a.iidfile {
        store::write_atomic(path, image_id.to_string().as_bytes())?;
    }
    if let Some(dest) = output.as_ref().and_then(|o| o.dest.as_deref()) {
        write_output(&store, dest, &tags, &desc)?;
    }
    report(a.quiet, &image_id, &desc, &tags, started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        build: BuildArgs,
    }

    fn format(argv: &[&str]) -> Result<lw_layer::compress::LayerFormat> {
        let cli = Cli::try_parse_from(std::iter::once("build").chain(argv.iter().copied()))?;
        let out = cli.build.output.as_deref().map(parse_output).transpose()?;
        layer_format(&cli.build, out.as_ref())
    }

    #[test]
    fn compression_comes_from_the_flag_or_the_output_options() {
        use lw_oci::media::Compression;
        assert_eq!(format(&[]).unwrap(), lw_layer::compress::LayerFormat::GZIP);
        let z = format(&["--compression", "zstd"]).unwrap();
        assert_eq!((z.compression, z.level), (Compression::Zstd, 3));
        let z = format(&[
            "-o",
            "type=oci,dest=x.tar,compression=zstd,compression-level=7",
        ])
        .unwrap();
        assert_eq!((z.compression, z.level), (Compression::Zstd, 7));
        let z = format(&["--compression", "zstd", "-o", "type=image,compression=zstd"]).unwrap();
        assert_eq!(z.compression, Compression::Zstd);
        for (argv, says) in [
            (
                &[
                    "--compression",
                    "zstd",
                    "-o",
                    "type=oci,dest=x,compression=gzip",
                ][..],
                "disagree",
            ),
            (&["--compression", "lz4"][..], "unknown compression"),
            (&["--compression-level", "3"][..], "needs a compression"),
            (
                &["--compression", "zstd", "--compression-level", "30"][..],
                "out of range",
            ),
            (&["-o", "type=oci,compression=zstd"][..], "needs dest=FILE"),
            (
                &["-o", "type=oci,dest=x,force-compression=true"][..],
                "not supported",
            ),
            (&["-o", "type=registry"][..], "not supported"),
        ] {
            let e = format(argv).unwrap_err().to_string();
            assert!(e.contains(says), "{argv:?}: {e}");
        }
    }
}
