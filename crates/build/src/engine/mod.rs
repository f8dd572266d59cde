//! The build engine: a Dockerfile and a context become an image, stage by stage, with BuildKit's semantics,
//! content-addressed cache keys, reproducible timestamps and a stream of [`BuildEvent`]s.

mod checks;
mod copy;
mod copy_step;
mod git_source;
mod history;
mod layers;
mod resume;
pub mod rootfs;
mod run;
mod run_mounts;
mod stage;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use lw_dockerfile::instructions::{self, Instruction};
use lw_dockerfile::parser;
use lw_dockerfile::shell::Lexer;
use lw_oci::config::rfc3339_from_epoch;
use lw_oci::{media, Descriptor, Digest, ImageConfig, Manifest, Platform};
use serde::Serialize;

use crate::context::Context;
use crate::events::BuildEvent;
use crate::host::{put_bytes, AsyncRunExecutor, BlobStore, Cache, ImageSource, UrlFetcher};
use crate::Error;
use stage::StageState;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub dockerfile: Vec<u8>,
    /// The name used in messages (`Dockerfile`).
    pub dockerfile_name: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Platform,
    pub build_platform: Platform,
    /// Every `created` field and every file mtime we write (seconds since the epoch).
    pub source_date_epoch: i64,
    /// Keep files' own mtimes (docker's behaviour) instead of the epoch.
    pub keep_mtimes: bool,
    /// Labels added to the final image (`--label`).
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    /// Default network for RUN (`--network`).
    pub network: String,
    /// `--add-host NAME:IP` entries for every RUN step's /etc/hosts, in order.
    pub extra_hosts: Vec<(String, String)>,
    /// Whether the context has a .dockerignore (only for hints).
    pub has_dockerignore: bool,
    /// How the layers this build writes are compressed (`--output ...,compression=zstd`); base image layers stay
    /// as they are, as in BuildKit without `force-compression`.
    pub layer_format: lw_layer::compress::LayerFormat,
}

impl BuildOptions {
    pub fn new(dockerfile: impl Into<Vec<u8>>, platform: Platform) -> BuildOptions {
        BuildOptions {
            dockerfile: dockerfile.into(),
            dockerfile_name: "Dockerfile".into(),
            build_args: BTreeMap::new(),
            target: None,
            build_platform: platform.clone(),
            platform,
            source_date_epoch: 0,
            keep_mtimes: false,
            labels: BTreeMap::new(),
            no_cache: false,
            network: "default".into(),
            extra_hosts: Vec::new(),
            has_dockerignore: false,
            layer_format: lw_layer::compress::LayerFormat::GZIP,
        }
    }
}

/// What the engine may use from its host.
pub struct Host<'a> {
    pub context: &'a dyn Context,
    pub blobs: &'a mut dyn BlobStore,
    pub images: &'a mut dyn ImageSource,
    /// Every [`crate::host::RunExecutor`] is an [`AsyncRunExecutor`].
    pub run: Option<&'a mut dyn AsyncRunExecutor>,
    pub fetch: Option<&'a mut dyn UrlFetcher>,
    pub cache: &'a mut dyn Cache,
    pub events: &'a mut dyn FnMut(BuildEvent),
}

/// One layer of the result and the step that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub created_by: String,
    pub cached: bool,
}

/// The built image.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub manifest: Descriptor,
    pub manifest_bytes: Vec<u8>,
    pub config: ImageConfig,
    pub config_bytes: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<LayerReport>,
}

/// Everything a step needs to know about the build as a whole.
pub(crate) struct Shared<'o> {
    pub opts: &'o BuildOptions,
    pub lexer: Lexer,
    /// Global ARGs with values (meta args and platform args), for FROM lines.
    pub global_args: Vec<(String, String)>,
    pub stage_names: Vec<Option<String>>,
}

impl Shared<'_> {
    pub fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::Step {
            file: self.opts.dockerfile_name.clone(),
            line,
            message: message.into(),
        }
    }

    /// The value of a build arg: `--build-arg`, else for `SOURCE_DATE_EPOCH` the build's epoch (we build
    /// reproducibly by default, as BuildKit does when given that build arg).
    pub fn build_arg(&self, key: &str) -> Option<String> {
        match self.opts.build_args.get(key) {
            Some(v) => Some(v.clone()),
            None if key == "SOURCE_DATE_EPOCH" && !self.opts.keep_mtimes => {
                Some(self.opts.source_date_epoch.to_string())
            }
            None => None,
        }
    }

    pub fn mtime(&self, own: i64) -> i64 {
        if self.opts.keep_mtimes {
            own
        } else {
            self.opts.source_date_epoch
        }
    }

    pub fn created(&self) -> String {
        rfc3339_from_epoch(self.opts.source_date_epoch)
    }
}

/// The predefined platform ARGs for `target` and `build` platforms.
pub fn platform_args(target: &Platform, build: &Platform) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        v.push((format!("{prefix}PLATFORM"), p.to_string()));
        v.push((format!("{prefix}OS"), p.os.clone()));
        v.push((format!("{prefix}ARCH"), p.architecture.clone()));
        v.push((
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        ));
    }
    v
}

/// Proxy ARGs are predefined: usable without an ARG line, and never recorded in history.
pub use lw_dockerfile::model::PROXY_ARGS;

pub(crate) fn expand(
    shared: &Shared,
    line: usize,
    word: &str,
    env: &[(String, String)],
) -> Result<String, Error> {
    shared
        .lexer
        .process_word(word, &env.to_vec())
        .map_err(|e| shared.err(line, e.to_string()))
}

/// Parse and check a Dockerfile without building (errors name `file:line:column`).
pub fn parse_stages(
    opts: &BuildOptions,
) -> Result<
    (
        parser::Dockerfile,
        Vec<instructions::Stage>,
        Vec<instructions::ArgCommand>,
    ),
    Error,
> {
    let df = parser::parse(&opts.dockerfile).map_err(|e| Error::Dockerfile {
        file: opts.dockerfile_name.clone(),
        source: e,
    })?;
    let (stages, meta) = instructions::parse_stages(&df).map_err(|e| Error::Dockerfile {
        file: opts.dockerfile_name.clone(),
        source: e,
    })?;
    if stages.is_empty() {
        return Err(Error::Step {
            file: opts.dockerfile_name.clone(),
            line: 1,
            message: "the Dockerfile has no FROM instruction".into(),
        });
    }
    Ok((df, stages, meta))
}

/// Which stages the target needs (indexes, ascending): FROM <stage>, COPY --from, RUN --mount from=.
fn needed_stages(
    shared: &Shared,
    images: &mut dyn ImageSource,
    stages: &[instructions::Stage],
    target: usize,
) -> BTreeSet<usize> {
    let find = |name: &str, before: usize| -> Option<usize> {
        if let Ok(i) = name.parse::<usize>() {
            return (i < before).then_some(i);
        }
        let lower = name.to_ascii_lowercase();
        shared.stage_names[..before]
            .iter()
            .rposition(|n| n.as_deref() == Some(lower.as_str()))
    };
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        let s = &stages[i];
        let base = expand(shared, 0, &s.from.base_name, &shared.global_args).unwrap_or_default();
        let mut froms: Vec<String> = s.commands.iter().flat_map(command_froms).collect();
        if let Some(j) = find(&base, i) {
            todo.push(j);
        } else if !base.eq_ignore_ascii_case("scratch") {
            // An image base's ONBUILD triggers may name stages too (`ONBUILD COPY --from=helper`): BuildKit
            // resolves the base first, so a stage only a trigger uses is built. A base that does not resolve
            // fails later, in its own step.
            froms.extend(trigger_froms(shared, images, s, &base));
        }
        for f in froms {
            // Global ARGs may name the stage (`--from=${BUILDER}`).
            let f = expand(shared, 0, &f, &shared.global_args).unwrap_or(f);
            if let Some(j) = find(&f, i) {
                todo.push(j);
            }
        }
    }
    needed
}

/// The stages or images an instruction reads from: `COPY --from`, `RUN --mount=from=`.
fn command_froms(c: &Instruction) -> Vec<String> {
    match c {
        Instruction::Copy(c) if !c.from.is_empty() => vec![c.from.clone()],
        Instruction::Run(r) => r
            .mounts
            .iter()
            .flat_map(|m| run_mounts::mount_fields(m))
            .filter(|(k, _)| k == "from")
            .filter_map(|(_, v)| v)
            .collect(),
        _ => vec![],
    }
}

/// What the ONBUILD triggers of image `base` read from (nothing when it does not resolve or has none).
fn trigger_froms(
    shared: &Shared,
    images: &mut dyn ImageSource,
    stage: &instructions::Stage,
    base: &str,
) -> Vec<String> {
    let platform = if stage.from.platform.is_empty() {
        Some(shared.opts.platform.clone())
    } else {
        expand(shared, 0, &stage.from.platform, &shared.global_args)
            .ok()
            .and_then(|p| Platform::parse(&p).ok())
    };
    let Some(img) = platform.and_then(|p| images.resolve(base, &p).ok()) else {
        return vec![];
    };
    let mut out = Vec::new();
    for t in img.config.config.on_build.iter().flatten() {
        let Ok(df) = parser::parse(t.as_bytes()) else {
            continue;
        };
        for inst in instructions::parse(&df).unwrap_or_default() {
            out.extend(command_froms(&inst));
        }
    }
    out
}

/// Build the image with an executor that answers at once (every [`crate::host::RunExecutor`]). On error
/// nothing is tagged (the host tags only on success); blobs already written are complete and content-addressed,
/// so the host's garbage collection may drop them.
pub fn build(opts: &BuildOptions, host: &mut Host) -> Result<BuildResult, Error> {
    let mut fut = std::pin::pin!(build_async(opts, host));
    // Synchronous executors' futures are ready when created, so one poll finishes the build; a pending one
    // means the host passed an executor that needs an event loop.
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Err(Error::Host(
            "the RUN executor answered asynchronously: use engine::build_async".into(),
        )),
    }
}

/// Build the image, awaiting the host's executor for RUN steps (the browser's answers through a Promise).
pub async fn build_async(opts: &BuildOptions, host: &mut Host<'_>) -> Result<BuildResult, Error> {
    let (df, stages, meta) = parse_stages(opts)?;
    checks::enforce(opts, &df)?;
    let lexer = Lexer::new(df.escape() as char);
    let mut shared = Shared {
        opts,
        lexer,
        global_args: platform_args(&opts.platform, &opts.build_platform),
        stage_names: stages
            .iter()
            .map(|s| (!s.from.name.is_empty()).then(|| s.from.name.to_ascii_lowercase()))
            .collect(),
    };
    // Global (meta) ARGs: a --build-arg overrides the default; defaults may use earlier globals.
    for a in &meta {
        for def in &a.args {
            let value = match shared.build_arg(&def.key) {
                Some(v) => Some(v),
                None => match &def.value {
                    Some(v) => Some(expand(
                        &shared,
                        a.source.span.start.line,
                        v,
                        &shared.global_args,
                    )?),
                    None => None,
                },
            };
            shared.global_args.retain(|(k, _)| k != &def.key);
            if let Some(v) = value {
                shared.global_args.push((def.key.clone(), v));
            }
        }
    }
    let target = match &opts.target {
        None => stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            shared
                .stage_names
                .iter()
                .position(|n| n.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| Error::Step {
                    file: opts.dockerfile_name.clone(),
                    line: 1,
                    message: format!("target stage \"{t}\" could not be found"),
                })?
        }
    };
    let needed = needed_stages(&shared, &mut *host.images, &stages, target);
    let mut done: Vec<Option<StageState>> = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        if i > target || !needed.contains(&i) {
            (host.events)(BuildEvent::StageSkipped {
                stage: i,
                name: shared.stage_names[i].clone(),
            });
            done.push(None);
            continue;
        }
        let state = stage::run_stage(&shared, host, &done, i, s).await?;
        done.push(Some(state));
    }
    let mut fin = done
        .swap_remove(target)
        .expect("the target stage was built");
    if !opts.labels.is_empty() {
        let labels = fin.config.config.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in &opts.labels {
            labels.insert(k.clone(), v.clone());
        }
    }
    // BuildKit leaves `created` out of an image without history (SOURCE_DATE_EPOCH dates the last entry).
    fin.config.created = (!fin.config.history.is_empty()).then(|| shared.created());
    let config_bytes = lw_oci::to_canonical_json(&fin.config);
    let config_desc = put_bytes(host.blobs, media::OCI_CONFIG, &config_bytes)?;
    let manifest_bytes =
        lw_oci::to_canonical_json(&Manifest::oci(config_desc.clone(), fin.layers.clone()));
    let manifest = put_bytes(host.blobs, media::OCI_MANIFEST, &manifest_bytes)?;
    (host.events)(BuildEvent::Finished {
        manifest_digest: manifest.digest.to_string(),
        config_digest: config_desc.digest.to_string(),
    });
    Ok(BuildResult {
        manifest,
        manifest_bytes,
        config: fin.config,
        config_bytes,
        config_digest: config_desc.digest,
        layers: fin.reports,
    })
}

/// The environment for expanding words in a stage: ENV and ARG assignments, the later one of a name winning.
pub(crate) fn word_env(st: &stage::StageState) -> Vec<(String, String)> {
    st.env.clone()
}
