//! RUN steps: the request an executor gets (argv through SHELL, environment, user, mounts), the step's cache key,
//! and awaiting the host's executor, which may answer later (the browser's executor is a JS Promise).

use lw_dockerfile::instructions::RunCommand as Run;

use super::stage::{cache_lookup, run_argv, StageState, StepCtx};
use super::{expand, history, rootfs, Host, Shared, PROXY_ARGS};
use crate::events::BuildEvent;
use crate::host::{CachedLayer, RunRequest};
use crate::{Error, StepError};

/// What the step's sandbox is, for its cache key: the network it really gets, the `--add-host` entries of its
/// /etc/hosts, its host name and its security mode.
fn step_key_env(shared: &Shared, r: &Run, network: &str) -> String {
    // The key holds the network the step really gets, and the `--add-host` entries its /etc/hosts lists.
    let mut net_key = if shared.opts.extra_hosts.is_empty() {
        network.to_string()
    } else {
        let hosts: Vec<String> = shared
            .opts
            .extra_hosts
            .iter()
            .map(|(n, ip)| format!("{n}:{ip}"))
            .collect();
        format!("{network} add-host={}", hosts.join(","))
    };
    // The sandbox's host name and security mode change what the step sees: both are part of its key.
    let hostname = sandbox_hostname(shared);
    if !hostname.is_empty() {
        net_key.push_str(&format!(" hostname={hostname}"));
    }
    if r.security == "insecure" {
        net_key.push_str(" security=insecure");
    }
    net_key
}

/// The build arg `BUILDKIT_SANDBOX_HOSTNAME` (empty: the default host name).
fn sandbox_hostname(shared: &Shared) -> String {
    shared
        .opts
        .build_args
        .get("BUILDKIT_SANDBOX_HOSTNAME")
        .cloned()
        .unwrap_or_default()
}

/// RUN sees the state environment: ENV and every ARG with a value (BuildKit's AddEnv for both), and proxy args,
/// which are predefined as in docker: `--build-arg HTTP_PROXY=...` reaches RUN without an ARG line.
fn run_env(shared: &Shared, st: &StageState) -> Vec<String> {
    let mut run_env: Vec<String> = st.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for name in PROXY_ARGS {
        let declared = st.env.iter().any(|(k, _)| k == name);
        if let (false, Some(v)) = (declared, shared.opts.build_args.get(name)) {
            run_env.push(format!("{name}={v}"));
        }
    }
    run_env
}

/// Run one RUN instruction at `cx`.
pub(super) async fn run_step(
    cx: &StepCtx<'_>,
    host: &mut Host<'_>,
    st: &mut StageState,
    r: &Run,
) -> Result<(), Error> {
    let (shared, done, index, line, step) = (cx.shared, cx.done, cx.stage, cx.line, cx.step);
    let env = st.env.clone();
    let ex = |w: &str| expand(shared, line, w, &env);
    let code = r.source.code.clone();
    // BuildKit's stable frontend builds without the labs `RUN --device`.
    if !r.devices.is_empty() {
        return Err(shared.err(line, StepError::DeviceNeedsLabs));
    }
    let (argv, files) = run_argv(st, &r.command);
    let run_args = st.run_args();
    let text = history::run(&run_args, &argv);
    let expanded = r
        .mounts
        .iter()
        .map(|m| ex(m))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut mounts, ssh_sock) = super::run_mounts::ssh_mounts(
        expanded,
        &shared.opts.ssh_ids,
        shared.opts.ssh_unavailable.as_deref(),
    )
    .map_err(|e| shared.err(line, e))?;
    let binds =
        super::run_mounts::resolve_binds(shared, host, done, index, &st.platform, line, &mounts)
            .await?;
    // The RUN flag wins when written; otherwise the build's `--network` (the parser fills in `default` either way).
    let network = if r.flags_used.iter().any(|f| f == "network") {
        r.network.clone()
    } else {
        shared.opts.network.clone()
    };
    let net_key = step_key_env(shared, r, &network);
    let mut key = super::run_mounts::run_key(&st.key, &text, &mounts, &net_key, &binds);
    super::run_mounts::key_seeded_caches(&mut mounts, &binds);
    // A heredoc run as a file shows only its path in the history text: its body keys the step.
    for (path, data) in &files {
        let body = lw_oci::Digest::sha256_of(data);
        key = super::stage::chain(&key, &[path, body.as_str()]);
    }
    st.key = key.clone();
    let mut run_env = run_env(shared, st);
    // BuildKit points SSH_AUTH_SOCK at the first ssh mount unless the stage's environment sets it.
    if let Some(sock) = ssh_sock {
        if !run_env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK=")) {
            run_env.push(format!("SSH_AUTH_SOCK={sock}"));
        }
    }
    let mut req = RunRequest {
        layers: st.layers.clone(),
        diff_ids: st.config.rootfs.diff_ids.clone(),
        args: argv,
        env: run_env,
        user: st.config.config.user.clone().unwrap_or_default(),
        workdir: st.workdir(),
        network,
        extra_hosts: shared.opts.extra_hosts.clone(),
        mounts,
        binds: vec![],
        files,
        platform: st.platform.clone(),
        source_date_epoch: (!shared.opts.keep_mtimes).then_some(shared.opts.source_date_epoch),
        location: format!("{}:{line}", shared.opts.dockerfile_name),
        hostname: sandbox_hostname(shared),
        insecure: r.security == "insecure",
    };
    let (layer, cached) = match cache_lookup(host, shared, &key) {
        Some(hit) => (hit, true),
        None => {
            // Bind sources become blobs only when the step really runs.
            req.binds = super::run_mounts::materialize(host, &binds).await?;
            let made = execute(shared, host, &req, &code, index, step, line).await?;
            let made = match made {
                Some(l) => Some(super::layers::in_format(host, shared.opts.layer_format, l)?),
                None => None,
            };
            host.cache.put(&key, made.clone());
            (made, false)
        }
    };
    // BuildKit keeps a layer for every RUN: an empty one when the step changed nothing.
    let l = match layer {
        Some(l) => l,
        None => super::layers::write_items(host, shared.opts.layer_format, &[])?,
    };
    let d = l.descriptor.clone();
    if st.tree.is_some() {
        // A RUN layer the host keeps out of reach (the tab's, past 16 MiB): its index through the pre-step.
        rootfs::prepare_files(
            &mut *host.blobs,
            &*host.cache,
            std::slice::from_ref(&d),
            &[],
        )
        .await?;
    }
    if let Some(t) = st.tree.as_mut() {
        rootfs::apply_indexed(t, &*host.blobs, &*host.cache, st.layers.len(), &d)?;
    }
    st.add_layer(shared, l, text, cached);
    cx.finish(host, st, cached, Some(&d));
    Ok(())
}

/// Hand the request to the host's executor, streaming its output as events tagged with the step.
async fn execute(
    shared: &Shared<'_>,
    host: &mut Host<'_>,
    req: &RunRequest,
    code: &str,
    index: usize,
    step: usize,
    line: usize,
) -> Result<Option<CachedLayer>, Error> {
    let Host {
        run, blobs, events, ..
    } = host;
    let Some(exec) = run.as_deref_mut() else {
        return Err(shared.err(
            line,
            format!("{code}: RUN needs an executor, and none is available here (the native CLI runs RUN steps)"),
        ));
    };
    let mut output = |data: &[u8]| {
        events(BuildEvent::Output {
            stage: index,
            step,
            data: String::from_utf8_lossy(data).into_owned(),
        });
    };
    let res = exec.run_async(req, &mut **blobs, &mut output).await?;
    Ok(res.layer.map(|(descriptor, diff_id)| CachedLayer {
        descriptor,
        diff_id,
    }))
}
