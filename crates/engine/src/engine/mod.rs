//! The build engine: a Dockerfile and a context become an image, stage by stage, with BuildKit's semantics,
//! content-addressed cache keys, reproducible timestamps and a stream of [`BuildEvent`]s.

mod checks;
mod config_steps;
mod copy;
mod copy_plan;
mod copy_step;
mod fetch;
mod git_source;
mod history;
pub(crate) mod layers;
mod plan;
mod resume;
pub mod rootfs;
mod run;
mod run_mounts;
mod stage;
mod workdir;

use std::collections::BTreeMap;
use std::future::Future;

use lw_dockerfile::shell::Lexer;
use lw_oci::config::rfc3339_from_epoch;
use lw_oci::{media, Descriptor, Digest, ImageConfig, Manifest, Platform};
use serde::Serialize;

use crate::context::Context;
use crate::events::BuildEvent;
use crate::host::{put_bytes, AsyncRunExecutor, AsyncUrlFetcher, BlobStore, Cache, ImageSource};
use crate::{Error, StepError};
pub use checks::{has_build_checker, needs_build_checks, set_build_checker, BuildChecker};
pub use plan::{model_options, plan, InstructionScope, Plan};
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
    /// The SSH agent ids the host forwards to `RUN --mount=type=ssh` (`build --ssh ID=...`; `default` when no id is
    /// given). A mount whose id is not here is left out when optional and fails the step when `required`.
    pub ssh_ids: std::collections::BTreeSet<String>,
    /// Why the host cannot forward the agents of `ssh_ids` (a browser tab reaches no SSH agent): a RUN that would
    /// mount one fails at its line with this text, as a required mount of an id not forwarded does.
    pub ssh_unavailable: Option<String>,
    /// The names of the named build contexts the host's image source answers for (`build --build-context
    /// NAME=...`, lower-cased): `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME` read them from the image
    /// source even where a stage has that name, as BuildKit replaces the stage.
    pub named_contexts: std::collections::BTreeSet<String>,
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
            ssh_ids: Default::default(),
            ssh_unavailable: None,
            named_contexts: Default::default(),
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
    /// Every [`crate::host::UrlFetcher`] is an [`AsyncUrlFetcher`].
    pub fetch: Option<&'a mut dyn AsyncUrlFetcher>,
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
    /// The model: stages, their names and dependencies, and every instruction's scope.
    pub plan: &'o Plan,
}

impl Shared<'_> {
    pub fn err(&self, line: usize, kind: impl Into<StepError>) -> Error {
        Error::Step {
            file: self.opts.dockerfile_name.clone(),
            line,
            kind: kind.into(),
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
        .map_err(|e| shared.err(line, StepError::Expansion(e.to_string())))
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
    let plan = plan(opts)?;
    checks::enforce(opts, &plan.dockerfile)?;
    let shared = Shared {
        opts,
        lexer: Lexer::new(plan.dockerfile.escape() as char),
        plan: &plan,
    };
    let target = plan.target();
    let needed = plan.needed(&mut *host.images, &opts.platform);
    let mut done: Vec<Option<StageState>> = Vec::new();
    for i in 0..plan.stages.len() {
        if i > target || !needed.contains(&i) {
            (host.events)(BuildEvent::StageSkipped {
                stage: i,
                name: plan.stage_name(i),
            });
            done.push(None);
            continue;
        }
        let state = stage::run_stage(&shared, host, &done, i).await?;
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
    omit_empty(&mut fin.config.config);
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

/// Go's `omitempty` on the image config's fields, as BuildKit writes them: an empty `User`, `WorkingDir` or
/// `StopSignal`, an empty list (`ENTRYPOINT []`, `CMD []`) or map, and a false `ArgsEscaped` are left out.
fn omit_empty(c: &mut lw_oci::config::ContainerConfig) {
    for s in [&mut c.user, &mut c.working_dir, &mut c.stop_signal] {
        if s.as_deref() == Some("") {
            *s = None;
        }
    }
    for v in [
        &mut c.env,
        &mut c.entrypoint,
        &mut c.cmd,
        &mut c.on_build,
        &mut c.shell,
    ] {
        if v.as_ref().is_some_and(Vec::is_empty) {
            *v = None;
        }
    }
    for m in [&mut c.exposed_ports, &mut c.volumes] {
        if m.as_ref().is_some_and(BTreeMap::is_empty) {
            *m = None;
        }
    }
    if c.labels.as_ref().is_some_and(BTreeMap::is_empty) {
        c.labels = None;
    }
    if c.args_escaped == Some(false) {
        c.args_escaped = None;
    }
}

#[cfg(test)]
mod tests {
    use super::omit_empty;
    use lw_oci::config::ContainerConfig;

    #[test]
    fn empty_config_fields_are_left_out_as_go_omits_them() {
        let mut c = ContainerConfig {
            user: Some(String::new()),
            cmd: Some(vec![]),
            entrypoint: Some(vec![]),
            labels: Some(Default::default()),
            args_escaped: Some(false),
            working_dir: Some("/".into()),
            ..Default::default()
        };
        omit_empty(&mut c);
        assert_eq!(
            c,
            ContainerConfig {
                working_dir: Some("/".into()),
                ..Default::default()
            }
        );
    }
}
