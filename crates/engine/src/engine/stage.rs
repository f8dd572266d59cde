//! One stage: FROM, then each instruction in order with BuildKit's semantics, its history entry, cache key and
//! events; layer-making steps write their layer through the host's blob store.

use std::collections::BTreeMap;

use lw_dockerfile::instructions::{self, CommandLine, Instruction};
use lw_layer::tree::FileTree;
use lw_oci::{Descriptor, Digest, DigestHasher, History, ImageConfig, Platform};

use super::config_steps::{expose_step, healthcheck_step, volume_step};
use super::{expand, history, rootfs, Host, LayerReport, Shared};
use crate::events::BuildEvent;
use crate::host::{BaseImage, CachedLayer};
use crate::{Error, StepError};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// The state of a stage as its instructions run.
#[derive(Clone)]
pub(crate) struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
    pub reports: Vec<LayerReport>,
    /// ARGs declared in this stage and the stages it is built FROM, in order, with their values (BuildKit's
    /// `buildArgs`; not persisted in the image).
    pub args: Vec<(String, Option<String>)>,
    /// The environment words expand in and RUN sees: the image's ENV plus every ARG with a value, the later
    /// assignment of a name winning (BuildKit's LLB state environment).
    pub env: Vec<(String, String)>,
    pub cmd_set: bool,
    pub tree: Option<FileTree>,
    pub key: Digest,
    pub platform: Platform,
}

pub(super) fn chain(prev: &Digest, parts: &[&str]) -> Digest {
    let mut h = DigestHasher::sha256();
    h.update(prev.as_str().as_bytes());
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    h.finish()
}

impl StageState {
    pub(super) fn tree(&mut self, host: &Host) -> Result<&FileTree, Error> {
        if self.tree.is_none() {
            self.tree = Some(rootfs::tree_indexed(
                &*host.blobs,
                &*host.cache,
                &self.layers,
            )?);
        }
        Ok(self.tree.as_ref().expect("just built"))
    }

    pub(super) fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        }
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    pub(super) fn history(&mut self, shared: &Shared, created_by: String, empty_layer: bool) {
        self.config.history.push(History {
            created: Some(shared.created()),
            created_by: Some(created_by),
            author: None,
            comment: Some(HISTORY_COMMENT.into()),
            empty_layer,
        });
    }

    /// A step that changes only the config: it extends the cache key and leaves an empty-layer history entry.
    pub(super) fn metadata_step(&mut self, shared: &Shared, text: String) {
        self.key = chain(&self.key, &[&text]);
        self.history(shared, text, true);
    }

    pub(super) fn add_layer(
        &mut self,
        shared: &Shared,
        layer: CachedLayer,
        created_by: String,
        cached: bool,
    ) {
        self.reports.push(LayerReport {
            digest: layer.descriptor.digest.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.descriptor.size,
            created_by: created_by.clone(),
            cached,
        });
        self.config.rootfs.diff_ids.push(layer.diff_id);
        self.layers.push(layer.descriptor);
        self.history(shared, created_by, false);
    }

    /// ARG and ENV assign the state environment alike.
    pub(super) fn add_env(&mut self, key: &str, value: &str) {
        match self.env.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => self.env.push((key.to_string(), value.to_string())),
        }
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.add_env(key, value);
        let env = self.config.config.env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// The `|N K=V` build args of RUN's history, as BuildKit's runCommandString: every declared ARG once (first
    /// position), valued from the current environment (so a later ENV of the name shows), else its own value,
    /// else empty. Proxy args are not recorded.
    pub(super) fn run_args(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        // A declared proxy ARG is listed like any other (BuildKit's runCommandString); an undeclared one reaches
        // RUN without being listed.
        for (k, v) in self.args.iter() {
            let value = self
                .env
                .iter()
                .find(|(ek, _)| ek == k)
                .map(|(_, ev)| ev.clone())
                .or_else(|| v.clone())
                .unwrap_or_default();
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(e) => e.1 = value,
                None => out.push((k.clone(), value)),
            }
        }
        out
    }
}

fn scratch(platform: &Platform) -> ImageConfig {
    let mut c = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        ..Default::default()
    };
    c.config.env = Some(vec![DEFAULT_PATH.into()]);
    // BuildKit's empty image has WorkingDir "/".
    c.config.working_dir = Some("/".into());
    c
}

/// The state environment of an image: its ENV.
fn image_env(config: &ImageConfig) -> Vec<(String, String)> {
    config
        .config
        .env
        .iter()
        .flatten()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub(super) fn stage_ref(shared: &Shared, name: &str, before: usize) -> Option<usize> {
    // A named build context replaces the stage of that name, as in BuildKit: the host's image source has it.
    if shared
        .opts
        .named_contexts
        .contains(&name.to_ascii_lowercase())
    {
        return None;
    }
    shared.plan.stage_ref(name, before)
}

/// What one step works in: the build, the stages built so far, and where the step is: its stage, its step number
/// (FROM is 1), its line, and which instruction of the stage's body in the model it is (`None` for an ONBUILD
/// trigger of the base, which the Dockerfile's model does not hold).
pub(super) struct StepCtx<'a> {
    pub shared: &'a Shared<'a>,
    pub done: &'a [Option<StageState>],
    pub stage: usize,
    pub step: usize,
    pub line: usize,
    pub body: Option<usize>,
}

impl StepCtx<'_> {
    /// Reports the step's end: cached or not, and the layer it made.
    pub(super) fn finish(
        &self,
        host: &mut Host,
        st: &StageState,
        cached: bool,
        layer: Option<&Descriptor>,
    ) {
        (host.events)(BuildEvent::StepFinished {
            stage: self.stage,
            step: self.step,
            line: self.line,
            cached,
            layer: layer.map(|d| d.digest.to_string()),
            size: layer.map_or(0, |d| d.size),
            cache_key: st.key.to_string(),
        });
    }
}

/// The image `reference` names, once the image source has made it resolvable ([`ImageSource::prepare`]: a named
/// directory context's layer is written then, its files streamed).
pub(super) async fn resolve_image(
    host: &mut Host<'_>,
    reference: &str,
    platform: &Platform,
) -> Result<BaseImage, Error> {
    if let Some(f) = host.images.prepare(reference, &mut *host.blobs) {
        f.await?;
    }
    host.images.resolve(reference, platform)
}

/// The state a stage starts from: `scratch`, an earlier stage (its ARGs and environment too, as BuildKit carries
/// them), or an image.
async fn base_state(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    base: &str,
    platform: &Platform,
) -> Result<StageState, Error> {
    let (shared, line) = (cx.shared, cx.line);
    Ok(if base.eq_ignore_ascii_case("scratch") {
        let config = scratch(platform);
        StageState {
            env: image_env(&config),
            config,
            layers: vec![],
            reports: vec![],
            args: vec![],
            cmd_set: false,
            tree: Some(FileTree::new()),
            key: format_key(
                shared,
                chain(&Digest::sha256_of(b"scratch"), &[&platform.to_string()]),
            ),
            platform: platform.clone(),
        }
    } else if let Some(j) = stage_ref(shared, base, cx.stage) {
        let mut s = cx.done[j]
            .clone()
            .ok_or_else(|| shared.err(line, StepError::not_built("", base)))?;
        // BuildKit: a stage built FROM another inherits its ARGs (with values) and environment.
        s.cmd_set = false;
        s
    } else {
        let img = resolve_image(host, base, platform)
            .await
            .map_err(|e| shared.err(line, format!("FROM {base}: {e}")))?;
        StageState {
            key: format_key(
                shared,
                chain(
                    &Digest::sha256_of(b"image"),
                    &[img.manifest_digest.as_str()],
                ),
            ),
            reports: img
                .manifest
                .layers
                .iter()
                .zip(&img.config.rootfs.diff_ids)
                .map(|(l, d)| LayerReport {
                    digest: l.digest.clone(),
                    diff_id: d.clone(),
                    size: l.size,
                    created_by: format!("(from {})", img.name),
                    cached: true,
                })
                .collect(),
            layers: img.manifest.layers.clone(),
            env: image_env(&img.config),
            config: img.config.clone(),
            args: vec![],
            cmd_set: false,
            tree: None,
            platform: platform.clone(),
        }
    })
}

pub(crate) async fn run_stage(
    shared: &Shared<'_>,
    host: &mut Host<'_>,
    done: &[Option<StageState>],
    index: usize,
) -> Result<StageState, Error> {
    let stage = &shared.plan.stages[index];
    let model = &shared.plan.model.stages[index];
    let from = &stage.from;
    let line = from.source.span.start.line;
    let total = stage.commands.len() + 1;
    (host.events)(BuildEvent::StepStarted {
        stage: index,
        step: 1,
        total,
        line,
        text: from.source.code.clone(),
    });
    // The model expanded FROM's words with the global scope.
    if let Some(e) = &model.from.error {
        return Err(shared.err(line, e.clone()));
    }
    let base = model.base_name.clone();
    let platform = match &model.platform {
        None => shared.opts.platform.clone(),
        Some(p) => {
            Platform::parse(p).map_err(|e| shared.err(line, format!("FROM --platform: {e}")))?
        }
    };
    let from_cx = StepCtx {
        shared,
        done,
        stage: index,
        step: 1,
        line,
        body: None,
    };
    let mut st = base_state(&from_cx, host, &base, &platform).await?;
    // The base's file list, through the pre-step for a layer the host cannot read at once.
    rootfs::prepare_files(&mut *host.blobs, &*host.cache, &st.layers, &[]).await?;
    (host.events)(BuildEvent::StageStarted {
        stage: index,
        name: shared.plan.stage_name(index),
        base: base.clone(),
    });
    from_cx.finish(host, &st, false, None);

    // ONBUILD triggers of the base run first, as in a child build; then they are dropped.
    if let Some(triggers) = st.config.config.on_build.take() {
        for t in triggers {
            let df = lw_dockerfile::parser::parse(t.as_bytes())
                .map_err(|e| shared.err(line, format!("ONBUILD {t}: {e}")))?;
            for inst in instructions::parse(&df)
                .map_err(|e| shared.err(line, format!("ONBUILD {t}: {e}")))?
            {
                step_any(&from_cx, host, &mut st, &inst).await?;
            }
        }
    }
    for (n, inst) in stage.commands.iter().enumerate() {
        let l = inst.source().span.start.line;
        (host.events)(BuildEvent::StepStarted {
            stage: index,
            step: n + 2,
            total,
            line: l,
            text: inst.source().code.clone(),
        });
        let cx = StepCtx {
            shared,
            done,
            stage: index,
            step: n + 2,
            line: l,
            body: Some(n),
        };
        step_any(&cx, host, &mut st, inst).await?;
    }
    Ok(st)
}

/// One instruction: RUN may wait for its executor; every other instruction completes at once.
async fn step_any(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), Error> {
    // What an earlier step's pre-step read for it is dropped: a step reads only what its own pre-step asked for.
    host.blobs.forget_prepared();
    match inst {
        Instruction::Run(r) => super::run::run_step(cx, host, st, r).await,
        // COPY and ADD may await a member pool (the tab's workers) while their layer is compressed.
        Instruction::Copy(_) | Instruction::Add(_) => {
            super::copy_step::copy_step(cx, host, st, inst).await
        }
        Instruction::Workdir(_) => {
            // WORKDIR makes its directories as the current USER, whose name may need the stage's passwd.
            let user = st.config.config.user.clone().unwrap_or_default();
            if let Ok(spec) = crate::chown::parse_chown(&user) {
                if !user.is_empty() {
                    prepare_owner(host, st, &spec).await?;
                }
            }
            dispatch(cx, host, st, inst)
        }
        _ => dispatch(cx, host, st, inst),
    }
}

/// The value an ARG gives `def.key`, as BuildKit's dispatchArg: the build arg, else the default expanded, else the
/// global ARG's value. Build args and global values are the model's; so is the expanded default, unless it names a
/// variable the Dockerfile does not set (an image base's ENV) or the ARG is an ONBUILD trigger's, which only the
/// build's state environment holds.
fn arg_value(
    cx: &StepCtx,
    st: &StageState,
    def: &instructions::ArgDef,
) -> Result<Option<String>, Error> {
    let (plan, at) = (cx.shared.plan, cx);
    Ok(match (plan.options.build_args.get(&def.key), &def.value) {
        (Some(v), _) => Some(v.clone()),
        (None, Some(v)) => match at.body {
            Some(k)
                if plan.model.stages[at.stage].instructions[k]
                    .unmatched
                    .is_empty() =>
            {
                plan.model.stages[at.stage].arg_value(k, &def.key)
            }
            _ => Some(expand(cx.shared, at.line, v, &st.env)?),
        },
        (None, None) => plan
            .model
            .global_scope
            .lookup(&def.key)
            .and_then(|v| v.value.clone()),
    })
}

/// The pre-step of a name lookup ([`resolve_owner`]): the layers that hold the stage's `/etc/passwd` and
/// `/etc/group` made readable (all the stage's layers when its tree cannot be read yet).
pub(super) async fn prepare_owner(
    host: &mut Host<'_>,
    st: &mut StageState,
    spec: &crate::chown::Chown,
) -> Result<(), Error> {
    if !(spec.needs_passwd() || spec.needs_group()) {
        return Ok(());
    }
    let mut want = vec!["etc/passwd".to_string(), "etc/group".to_string()];
    let mut layers = st.layers.clone();
    if let Ok(t) = st.tree(host) {
        want = want.iter().map(|p| t.resolve(p)).collect();
        let mut held: Vec<usize> = want
            .iter()
            .filter_map(|p| t.get(p))
            .map(|n| n.layer)
            .collect();
        held.sort();
        held.dedup();
        layers = held
            .iter()
            .filter_map(|&i| st.layers.get(i))
            .cloned()
            .collect();
        want.extend(["etc/passwd".to_string(), "etc/group".to_string()]);
    }
    rootfs::prepare_files(&mut *host.blobs, &*host.cache, &layers, &want).await
}

/// A user[:group] to (uid, gid), reading the stage's /etc/passwd and /etc/group only when names need them.
pub(super) fn resolve_owner(
    shared: &Shared,
    host: &Host,
    st: &mut StageState,
    spec: &crate::chown::Chown,
    line: usize,
    what: &str,
) -> Result<(u32, u32), Error> {
    let (mut passwd, mut group) = (None, None);
    if spec.needs_passwd() || spec.needs_group() {
        let layers = st.layers.clone();
        let tree = st.tree(host)?;
        passwd = rootfs::read_file(tree, &*host.blobs, &layers, "etc/passwd")?;
        group = rootfs::read_file(tree, &*host.blobs, &layers, "etc/group")?;
    }
    spec.resolve(passwd.as_deref(), group.as_deref())
        .map_err(|e| shared.err(line, format!("{what}: {e}")))
}

pub(super) fn command_argv(st: &StageState, c: &CommandLine) -> Vec<String> {
    run_argv(st, c).0
}

/// RUN's argv and the files mounted for it, as BuildKit's dispatchRun: a command line that is a single heredoc
/// runs its body as the script (`sh -c BODY`), or, when the body starts with `#!`, as an executable file mounted at
/// `/dev/pipes/NAME`; any other heredocs follow the command line, as a POSIX shell reads them.
pub(super) fn run_argv(st: &StageState, c: &CommandLine) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    let mut files = Vec::new();
    if !c.prepend_shell {
        return (c.cmd_line.clone(), files);
    }
    let mut script = c.cmd_line.join(" ");
    let single = c.cmd_line.len() == 1
        && lw_dockerfile::parser::parse_heredoc(&c.cmd_line[0])
            .ok()
            .flatten()
            .is_some();
    match c.files.first() {
        Some(f) if single => {
            let data = if f.chomp {
                lw_dockerfile::parser::chomp_heredoc_content(&f.data)
            } else {
                f.data.clone()
            };
            if data.starts_with(b"#!") && st.config.os != "windows" {
                let path = format!("/dev/pipes/{}", f.name);
                files.push((path.clone(), data));
                script = path;
            } else {
                script = String::from_utf8_lossy(&data).into_owned();
            }
        }
        _ => {
            for f in &c.files {
                script.push('\n');
                script.push_str(&String::from_utf8_lossy(&f.data));
                script.push_str(&f.name);
            }
        }
    }
    let mut v = st.shell();
    v.push(script);
    (v, files)
}

/// A stage's first key, with the layer format when it is not the default: a gzip layer is never reused for a
/// zstd build, and the other way round.
fn format_key(shared: &Shared, key: Digest) -> Digest {
    match shared.opts.layer_format.cache_tag() {
        Some(tag) => chain(&key, &[&tag]),
        None => key,
    }
}

/// The cached result for `key` when the cache may be used and the layer is still in the store.
pub(super) fn cache_lookup(
    host: &Host,
    shared: &Shared,
    key: &Digest,
) -> Option<Option<CachedLayer>> {
    if shared.opts.no_cache {
        return None;
    }
    host.cache.get(key).filter(|hit| {
        hit.as_ref()
            .is_none_or(|l| host.blobs.has(&l.descriptor.digest))
    })
}

/// Use the cached layer for `key` when allowed and present; otherwise make it with `make`.
pub(super) fn cached_or<F>(
    host: &mut Host,
    shared: &Shared,
    key: &Digest,
    make: F,
) -> Result<(Option<CachedLayer>, bool), Error>
where
    F: FnOnce(&mut Host) -> Result<Option<CachedLayer>, Error>,
{
    if let Some(hit) = cache_lookup(host, shared, key) {
        return Ok((hit, true));
    }
    let made = make(host)?;
    host.cache.put(key, made.clone());
    Ok((made, false))
}

/// `ARG`: each name's value (see [`arg_value`]) assigns the state environment and is kept for RUN's history.
fn arg_step(cx: &StepCtx, st: &mut StageState, a: &instructions::ArgCommand) -> Result<(), Error> {
    let mut parts = Vec::new();
    for def in &a.args {
        let value = arg_value(cx, st, def)?;
        match &value {
            Some(v) => {
                parts.push(format!("{}={v}", def.key));
                st.add_env(&def.key, v);
            }
            None => parts.push(def.key.clone()),
        }
        st.args.push((def.key.clone(), value));
    }
    st.metadata_step(cx.shared, format!("ARG {}", parts.join(" ")));
    Ok(())
}

/// The instructions that complete at once: metadata steps (config and history only) and WORKDIR.
fn dispatch(
    cx: &StepCtx,
    host: &mut Host,
    st: &mut StageState,
    inst: &Instruction,
) -> Result<(), Error> {
    let (shared, line) = (cx.shared, cx.line);
    let env = st.env.clone();
    let ex = |w: &str| expand(shared, line, w, &env);
    let code = inst.source().code.clone();
    match inst {
        Instruction::From(_) => unreachable!("FROM starts a stage"),
        Instruction::Arg(a) => arg_step(cx, st, a)?,
        Instruction::Env(e) => {
            let mut parts = Vec::new();
            for kv in &e.env {
                let v = ex(&kv.value)?;
                st.set_env(&kv.key, &v);
                parts.push(format!("{}={v}", kv.key));
            }
            let text = format!("ENV {}", parts.join(" "));
            st.metadata_step(shared, text);
        }
        Instruction::Label(l) => {
            let mut parts = Vec::new();
            for kv in &l.labels {
                let (k, v) = (ex(&kv.key)?, ex(&kv.value)?);
                st.config
                    .config
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(k.clone(), v.clone());
                parts.push(format!("{k}={v}"));
            }
            let text = format!("LABEL {}", parts.join(" "));
            st.metadata_step(shared, text);
        }
        Instruction::Expose(e) => expose_step(cx, st, e, &env)?,
        Instruction::User(u) => {
            let user = ex(&u.user)?;
            st.config.config.user = Some(user.clone());
            st.metadata_step(shared, format!("USER {user}"));
        }
        Instruction::Volume(v) => volume_step(cx, st, v)?,
        Instruction::StopSignal(s) => {
            let sig = ex(&s.signal)?;
            st.config.config.stop_signal = Some(sig.clone());
            st.metadata_step(shared, format!("STOPSIGNAL {sig}"));
        }
        Instruction::Maintainer(m) => {
            st.config.author = Some(m.maintainer.clone());
            st.key = chain(&st.key, &[&code]);
            st.history(shared, format!("MAINTAINER {}", m.maintainer), true);
        }
        Instruction::Cmd(c) => {
            let argv = command_argv(st, &c.command);
            st.config.config.cmd = Some(argv.clone());
            // BuildKit sets ArgsEscaped on every CMD (for Docker's Windows compatibility), never on ENTRYPOINT.
            st.config.config.args_escaped = Some(true);
            st.cmd_set = true;
            let text = format!("CMD {}", history::go_slice(&argv));
            st.metadata_step(shared, text);
        }
        Instruction::Entrypoint(c) => {
            let argv = command_argv(st, &c.command);
            st.config.config.entrypoint = Some(argv.clone());
            if !st.cmd_set {
                st.config.config.cmd = None;
            }
            let text = format!("ENTRYPOINT {}", history::go_slice(&argv));
            st.metadata_step(shared, text);
        }
        Instruction::Shell(s) => {
            st.config.config.shell = Some(s.shell.clone());
            // Go's %v of a []string.
            let text = format!("SHELL [{}]", s.shell.join(" "));
            st.metadata_step(shared, text);
        }
        Instruction::Healthcheck(h) => healthcheck_step(cx, st, h),
        Instruction::Onbuild(o) => {
            st.config
                .config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(o.expression.clone());
            // BuildKit records no history for ONBUILD; the cache key still changes with the config.
            st.key = chain(&st.key, &[&code]);
        }
        Instruction::Workdir(w) => return super::workdir::workdir_step(cx, host, st, &w.path),
        Instruction::Copy(_) | Instruction::Add(_) | Instruction::Run(_) => {
            unreachable!("COPY, ADD and RUN steps go through step_any")
        }
    }
    cx.finish(host, st, false, None);
    Ok(())
}
