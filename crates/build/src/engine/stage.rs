//! One stage: FROM, then each instruction in order with BuildKit's semantics, its history entry, cache key and
//! events; layer-making steps write their layer through the host's blob store.

use std::collections::BTreeMap;

use lw_dockerfile::instructions::{self, CommandLine, Instruction};
use lw_layer::tree::FileTree;
use lw_layer::Entry;
use lw_oci::config::Empty;
use lw_oci::{Descriptor, Digest, DigestHasher, HealthConfig, History, ImageConfig, Platform};

use super::copy::{Data, Item};
use super::layers::write_items;
use super::{expand, history, rootfs, Host, LayerReport, Shared};
use crate::events::BuildEvent;
use crate::host::CachedLayer;
use crate::Error;

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
    fn metadata_step(&mut self, shared: &Shared, text: String) {
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
    shared.plan.stage_ref(name, before)
}

/// Where a step is: its stage, its step number (FROM is 1), its line, and which instruction of the stage's body in
/// the model it is (`None` for an ONBUILD trigger of the base, which the Dockerfile's model does not hold).
#[derive(Clone, Copy)]
pub(super) struct StepAt {
    pub stage: usize,
    pub step: usize,
    pub line: usize,
    pub body: Option<usize>,
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
    let mut st = if base.eq_ignore_ascii_case("scratch") {
        let config = scratch(&platform);
        StageState {
            env: image_env(&config),
            config,
            layers: vec![],
            reports: vec![],
            args: vec![],
            cmd_set: false,
            tree: Some(FileTree::new()),
            key: chain(&Digest::sha256_of(b"scratch"), &[&platform.to_string()]),
            platform: platform.clone(),
        }
    } else if let Some(j) = stage_ref(shared, &base, index) {
        let mut s = done[j]
            .clone()
            .ok_or_else(|| shared.err(line, format!("stage {base} was not built")))?;
        // BuildKit: a stage built FROM another inherits its ARGs (with values) and environment.
        s.cmd_set = false;
        s
    } else {
        let img = host
            .images
            .resolve(&base, &platform)
            .map_err(|e| shared.err(line, format!("FROM {base}: {e}")))?;
        StageState {
            key: chain(
                &Digest::sha256_of(b"image"),
                &[img.manifest_digest.as_str()],
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
    };
    (host.events)(BuildEvent::StageStarted {
        stage: index,
        name: shared.plan.stage_name(index),
        base: base.clone(),
    });
    (host.events)(BuildEvent::StepFinished {
        stage: index,
        step: 1,
        line,
        cached: false,
        layer: None,
        size: 0,
        cache_key: st.key.to_string(),
    });

    // ONBUILD triggers of the base run first, as in a child build; then they are dropped.
    if let Some(triggers) = st.config.config.on_build.take() {
        for t in triggers {
            let df = lw_dockerfile::parser::parse(t.as_bytes())
                .map_err(|e| shared.err(line, format!("ONBUILD {t}: {e}")))?;
            for inst in instructions::parse(&df)
                .map_err(|e| shared.err(line, format!("ONBUILD {t}: {e}")))?
            {
                let at = StepAt {
                    stage: index,
                    step: 1,
                    line,
                    body: None,
                };
                step_any(shared, host, done, &mut st, &inst, at).await?;
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
        let at = StepAt {
            stage: index,
            step: n + 2,
            line: l,
            body: Some(n),
        };
        step_any(shared, host, done, &mut st, inst, at).await?;
    }
    Ok(st)
}

/// One instruction: RUN may wait for its executor; every other instruction completes at once.
async fn step_any(
    shared: &Shared<'_>,
    host: &mut Host<'_>,
    done: &[Option<StageState>],
    st: &mut StageState,
    inst: &Instruction,
    at: StepAt,
) -> Result<(), Error> {
    let (index, line, step) = (at.stage, at.line, at.step);
    match inst {
        Instruction::Run(r) => {
            super::run::run_step(shared, host, done, index, st, r, line, step).await
        }
        // COPY and ADD may await a member pool (the tab's workers) while their layer is compressed.
        Instruction::Copy(_) | Instruction::Add(_) => {
            let env = st.env.clone();
            super::copy_step::copy_step(shared, host, done, index, st, inst, line, step, &env).await
        }
        _ => dispatch(shared, host, st, inst, at),
    }
}

/// The value an ARG gives `def.key`, as BuildKit's dispatchArg: the build arg, else the default expanded, else the
/// global ARG's value. Build args and global values are the model's; so is the expanded default, unless it names a
/// variable the Dockerfile does not set (an image base's ENV) or the ARG is an ONBUILD trigger's, which only the
/// build's state environment holds.
fn arg_value(
    shared: &Shared,
    st: &StageState,
    at: StepAt,
    def: &instructions::ArgDef,
) -> Result<Option<String>, Error> {
    let plan = shared.plan;
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
            _ => Some(expand(shared, at.line, v, &st.env)?),
        },
        (None, None) => plan
            .model
            .global_scope
            .lookup(&def.key)
            .and_then(|v| v.value.clone()),
    })
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

fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:09}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => sec,
        (0, _) => format!("{m}m{sec}"),
        _ => format!("{h}h{m}m{sec}"),
    }
}

fn expose_ports(shared: &Shared, line: usize, words: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for w in words {
        let (port, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (w.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(shared.err(line, format!("EXPOSE {w}: invalid proto {proto:?}")));
        }
        let bad = || shared.err(line, format!("EXPOSE {w}: invalid port"));
        let (lo, hi) = match port.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = port.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn finish_step(
    host: &mut Host,
    st: &StageState,
    stage: usize,
    step: usize,
    line: usize,
    cached: bool,
    layer: Option<&Descriptor>,
) {
    (host.events)(BuildEvent::StepFinished {
        stage,
        step,
        line,
        cached,
        layer: layer.map(|d| d.digest.to_string()),
        size: layer.map_or(0, |d| d.size),
        cache_key: st.key.to_string(),
    });
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
fn cached_or<F>(
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

fn dispatch(
    shared: &Shared,
    host: &mut Host,
    st: &mut StageState,
    inst: &Instruction,
    at: StepAt,
) -> Result<(), Error> {
    let (index, line, step) = (at.stage, at.line, at.step);
    let env = st.env.clone();
    let ex = |w: &str| expand(shared, line, w, &env);
    let code = inst.source().code.clone();
    match inst {
        Instruction::From(_) => unreachable!("FROM starts a stage"),
        Instruction::Arg(a) => {
            let mut parts = Vec::new();
            for def in &a.args {
                let value = arg_value(shared, st, at, def)?;
                match &value {
                    Some(v) => {
                        parts.push(format!("{}={v}", def.key));
                        st.add_env(&def.key, v);
                    }
                    None => parts.push(def.key.clone()),
                }
                st.args.push((def.key.clone(), value));
            }
            st.metadata_step(shared, format!("ARG {}", parts.join(" ")));
        }
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
        Instruction::Expose(e) => {
            let mut words = Vec::new();
            for p in &e.ports {
                words.extend(
                    shared
                        .lexer
                        .process_words(p, &env)
                        .map_err(|er| shared.err(line, er.to_string()))?,
                );
            }
            let ports = expose_ports(shared, line, &words)?;
            let map = st
                .config
                .config
                .exposed_ports
                .get_or_insert_with(BTreeMap::new);
            for p in &ports {
                map.insert(p.clone(), Empty {});
            }
            let text = format!("EXPOSE [{}]", ports.join(" "));
            st.metadata_step(shared, text);
        }
        Instruction::User(u) => {
            let user = ex(&u.user)?;
            st.config.config.user = Some(user.clone());
            st.metadata_step(shared, format!("USER {user}"));
        }
        Instruction::Volume(v) => {
            let mut vols = Vec::new();
            for w in &v.volumes {
                let p = ex(w)?;
                if p.is_empty() {
                    return Err(shared.err(line, "VOLUME specified can not be an empty string"));
                }
                st.config
                    .config
                    .volumes
                    .get_or_insert_with(BTreeMap::new)
                    .insert(p.clone(), Empty {});
                vols.push(p);
            }
            let text = format!("VOLUME [{}]", vols.join(" "));
            st.metadata_step(shared, text);
        }
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
        Instruction::Healthcheck(h) => {
            let hc = &h.health;
            let cfg = HealthConfig {
                test: Some(hc.test.clone()),
                interval: (hc.interval != 0).then_some(hc.interval),
                timeout: (hc.timeout != 0).then_some(hc.timeout),
                start_period: (hc.start_period != 0).then_some(hc.start_period),
                start_interval: (hc.start_interval != 0).then_some(hc.start_interval),
                retries: (hc.retries != 0).then_some(i64::from(hc.retries)),
            };
            st.config.config.healthcheck = Some(cfg);
            // Go's %+v of the HealthcheckConfig struct.
            let text = format!(
                "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                hc.test.join(" "),
                go_duration(hc.interval),
                go_duration(hc.timeout),
                go_duration(hc.start_period),
                go_duration(hc.start_interval),
                hc.retries
            );
            st.metadata_step(shared, text);
        }
        Instruction::Onbuild(o) => {
            st.config
                .config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(o.expression.clone());
            // BuildKit records no history for ONBUILD; the cache key still changes with the config.
            st.key = chain(&st.key, &[&code]);
        }
        Instruction::Workdir(w) => {
            let p = ex(&w.path)?;
            let joined = if p.starts_with('/') {
                p.clone()
            } else {
                format!("{}/{p}", st.workdir())
            };
            let clean = crate::context::normalize_path(&joined)
                .map_err(|e| shared.err(line, format!("WORKDIR {p}: {e}")))?;
            // BuildKit keeps an absolute WORKDIR as written (a trailing slash stays); a relative one is joined to
            // the current directory and cleaned. The directories made are the cleaned path's.
            let abs = if p.starts_with('/') {
                p.clone()
            } else {
                format!("/{clean}")
            };
            st.config.config.working_dir = Some(abs.clone());
            let text = format!("WORKDIR {abs}");
            st.key = chain(&st.key, &[&text]);
            let tree = st.tree(host)?;
            let mut missing = Vec::new();
            let mut dir = clean.clone();
            while !dir.is_empty() && tree.get(&tree.resolve(&dir)).is_none() {
                missing.push(dir.clone());
                dir = lw_layer::path::parent(&dir).to_string();
            }
            // BuildKit makes a layer for every WORKDIR but `/`, empty when the directories exist.
            if abs == "/" {
                st.history(shared, text, true);
                finish_step(host, st, index, step, line, false, None);
                return Ok(());
            }
            missing.reverse();
            // BuildKit creates WORKDIR's directories as the current USER.
            let (uid, gid) = match st.config.config.user.clone().filter(|u| !u.is_empty()) {
                None => (0, 0),
                Some(user) => {
                    let spec = crate::chown::parse_chown(&user)
                        .map_err(|e| shared.err(line, format!("WORKDIR: USER {user}: {e}")))?;
                    resolve_owner(shared, host, st, &spec, line, "WORKDIR")?
                }
            };
            // As a diff of the snapshot, BuildKit's layer also holds the existing parents of the first new
            // directory (their mtime changed), with their own metadata.
            let mut items: Vec<Item> = Vec::new();
            if let Some(first) = missing.first() {
                let tree = st.tree(host)?;
                let mut dir = lw_layer::path::parent(first).to_string();
                while !dir.is_empty() {
                    if let Some(n) = tree.get(&dir).filter(|n| n.entry.is_dir()) {
                        items.push(Item {
                            entry: Entry {
                                mtime: shared.mtime(n.entry.mtime),
                                xattrs: BTreeMap::new(),
                                ..n.entry.clone()
                            },
                            data: Data::None,
                        });
                    }
                    dir = lw_layer::path::parent(&dir).to_string();
                }
                items.reverse();
            }
            items.extend(missing.iter().map(|d| Item {
                entry: Entry {
                    mtime: shared.mtime(0),
                    uid,
                    gid,
                    ..Entry::dir(d, 0o755)
                },
                data: Data::None,
            }));
            let key = st.key.clone();
            let (layer, cached) =
                cached_or(host, shared, &key, |h| write_items(h, &items).map(Some))?;
            let layer = layer.expect("WORKDIR makes a layer");
            if let Some(t) = st.tree.as_mut() {
                for it in &items {
                    t.insert(it.entry.clone(), st.layers.len(), None);
                }
            }
            let d = layer.descriptor.clone();
            st.add_layer(shared, layer, text, cached);
            finish_step(host, st, index, step, line, cached, Some(&d));
            return Ok(());
        }
        Instruction::Copy(_) | Instruction::Add(_) | Instruction::Run(_) => {
            unreachable!("COPY, ADD and RUN steps go through step_any")
        }
    }
    finish_step(host, st, index, step, line, false, None);
    Ok(())
}
