//! `RUN --mount` sources, as the engine resolves them: for `type=bind`, the build context (filtered by
//! .dockerignore, written as a layer), another stage's layers or an image's layers; for `type=cache,from=`, the
//! stage or image that seeds a new cache directory; plus their content identity for the cache key.

use lw_layer::tree::FileTree;
use lw_oci::{Descriptor, Digest, DigestHasher};

use super::copy::{CopySpec, Item, SourceFs};
use super::copy_step::items_digest;
use super::layers::write_items_async;
use super::stage::{chain, stage_ref, StageState};
use super::{rootfs, Host, Shared};
use crate::context::normalize_path;
use crate::host::BindSource;
use crate::{Error, StepError};

/// Where a bind mount's files come from, before anything is written.
enum Origin {
    /// Entries of the build context (the subtree at `source`), written as a layer only when the step runs.
    Context(Vec<Item>),
    /// Layers already in the store (a stage or an image).
    Layers(Vec<Descriptor>, Vec<Digest>),
}

/// A resolved `type=bind` mount waiting for the step to run.
pub(crate) struct PendingBind {
    mount: usize,
    origin: Origin,
    path: String,
    identity: Digest,
}

/// The fields of one `--mount` spec (`key=value` or bare `key`), keys lower-cased, as BuildKit reads them.
pub(crate) fn mount_fields(spec: &str) -> Vec<(String, Option<String>)> {
    spec.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"').to_string()),
            ),
            None => (f.to_ascii_lowercase(), None),
        })
        .collect()
}

/// BuildKit keys a cache mount seeded with `from=` by its source as well as its id, so it never shares a
/// directory with the unseeded mounts of that id: give such mounts an id of their own (the id and the seed's
/// content identity) before the executor sees them.
pub(crate) fn key_seeded_caches(mounts: &mut [String], binds: &[PendingBind]) {
    for b in binds {
        let Some(spec) = mounts.get_mut(b.mount) else {
            continue;
        };
        let f = mount_fields(spec);
        if field(&f, &["type"]) != Some("cache") {
            continue;
        }
        let id = field(&f, &["id"])
            .or_else(|| field(&f, &["target", "dst", "destination"]))
            .unwrap_or_default()
            .to_string();
        spec.push_str(&format!(",id={id}@{}", b.identity.encoded()));
    }
}

/// The `type=ssh` mounts of a RUN, as BuildKit's LLB has them: each gets a target (default
/// `/run/buildkit/ssh_agent.N`, N counting the RUN's ssh mounts) and the first one's target is the step's
/// `SSH_AUTH_SOCK` (also when its agent is not forwarded: LLB sets it before the solver drops the mount). A mount
/// whose id (default `default`) the host does not forward is left out when optional (`required=false`, the
/// default) and fails the step when required. A host that cannot forward agents (`unavailable` says why) fails
/// the step at a mount of an id it was asked to forward. Returns the mounts to hand to the executor and
/// `SSH_AUTH_SOCK`.
pub(crate) fn ssh_mounts(
    mounts: Vec<String>,
    forwarded: &std::collections::BTreeSet<String>,
    unavailable: Option<&str>,
) -> Result<(Vec<String>, Option<String>), StepError> {
    let (mut out, mut sock, mut n) = (Vec::new(), None, 0);
    for spec in mounts {
        let f = mount_fields(&spec);
        if field(&f, &["type"]) != Some("ssh") {
            out.push(spec);
            continue;
        }
        let required = match f.iter().rev().find(|(k, _)| k == "required") {
            Some((_, None)) => true,
            Some((_, Some(v))) => matches!(v.to_ascii_lowercase().as_str(), "true" | "1"),
            None => false,
        };
        let target = field(&f, &["target", "dst", "destination"])
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{n}"));
        n += 1;
        sock.get_or_insert_with(|| target.clone());
        let id = field(&f, &["id"])
            .filter(|i| !i.is_empty())
            .unwrap_or("default")
            .to_string();
        if let (true, Some(why)) = (forwarded.contains(&id), unavailable) {
            return Err(StepError::SshUnavailable(id, why.to_string()));
        } else if forwarded.contains(&id) {
            out.push(format!("{spec},id={id},target={target}"));
        } else if required && forwarded.is_empty() {
            return Err(StepError::SshNotForwarded(id));
        } else if required {
            return Err(StepError::SshKeyUnset(id));
        }
    }
    Ok((out, sock))
}

fn field<'a>(fields: &'a [(String, Option<String>)], names: &[&str]) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| names.contains(&k.as_str()))
        .and_then(|(_, v)| v.as_deref())
}

/// Resolve the source of every `type=bind` mount (and seeded `type=cache` mount) among the (expanded) `mounts` of
/// a RUN at `line`.
pub(crate) async fn resolve_binds(
    shared: &Shared<'_>,
    host: &mut Host<'_>,
    done: &[Option<StageState>],
    index: usize,
    platform: &lw_oci::Platform,
    line: usize,
    mounts: &[String],
) -> Result<Vec<PendingBind>, Error> {
    let mut out = Vec::new();
    for (i, spec) in mounts.iter().enumerate() {
        let fields = mount_fields(spec);
        let from = field(&fields, &["from"]).unwrap_or("");
        // BuildKit's default mount type is bind; a cache mount has a source only with from= (its seed).
        match field(&fields, &["type"]).unwrap_or("bind") {
            "bind" => {}
            "cache" if !from.is_empty() => {}
            _ => continue,
        }
        let what = format!("RUN --mount={spec}");
        let source = field(&fields, &["source", "src"]).unwrap_or("");
        let clean = normalize_path(source).map_err(|_| {
            shared.err(
                line,
                format!("{what}: source {source:?} is outside the build context"),
            )
        })?;
        let (origin, path) = if from.is_empty() {
            (
                Origin::Context(context_items(shared, host, line, &clean)?),
                format!("/{clean}"),
            )
        } else {
            let (layers, diff_ids) = if let Some(j) = stage_ref(shared, from, index) {
                let s = done[j].as_ref().ok_or_else(|| {
                    shared.err(line, StepError::not_built(&format!("{what}: "), from))
                })?;
                (s.layers.clone(), s.config.rootfs.diff_ids.clone())
            } else {
                let img = super::stage::resolve_image(host, from, platform).await.map_err(|e| {
                    shared.err(
                        line,
                        format!("{what}: from={from} is not a stage of this Dockerfile, and as an image: {e}"),
                    )
                })?;
                (
                    img.manifest.layers.clone(),
                    img.config.rootfs.diff_ids.clone(),
                )
            };
            // Only the paths are needed here (the executor reads the layers): the layers' indexes, asked of the
            // host first for a layer whose index is not kept yet.
            rootfs::prepare_files(&mut *host.blobs, &*host.cache, &layers, &[]).await?;
            let tree: FileTree = rootfs::tree_indexed(&*host.blobs, &*host.cache, &layers)?;
            if !clean.is_empty() && tree.get(&tree.resolve(&clean)).is_none() {
                return Err(shared.err(
                    line,
                    format!("{what}: source \"/{clean}\" not found in {from}"),
                ));
            }
            (Origin::Layers(layers, diff_ids), format!("/{clean}"))
        };
        let mut h = DigestHasher::sha256();
        h.update(format!("bind {i} {path}\n").as_bytes());
        match &origin {
            Origin::Context(items) => h.update(
                items_digest(host, items, &std::collections::BTreeMap::new())?
                    .as_str()
                    .as_bytes(),
            ),
            Origin::Layers(_, diff_ids) => {
                for d in diff_ids {
                    h.update(d.as_str().as_bytes());
                    h.update(b"\n");
                }
            }
        }
        out.push(PendingBind {
            mount: i,
            origin,
            path,
            identity: h.finish(),
        });
    }
    Ok(out)
}

/// The context subtree at `clean` (the whole context when empty), as entries at their own paths.
fn context_items(
    shared: &Shared,
    host: &mut Host,
    line: usize,
    clean: &str,
) -> Result<Vec<Item>, Error> {
    let spec = CopySpec {
        line,
        keyword: "RUN --mount=type=bind",
        srcs: vec![if clean.is_empty() {
            ".".into()
        } else {
            clean.to_string()
        }],
        raw_srcs: vec![],
        heredocs: vec![],
        dest: format!("/{clean}"),
        workdir: "/".into(),
        from: SourceFs::Context(host.context),
        chown: None,
        chmod: None,
        parents: false,
        excludes: vec![],
        is_add: false,
        checksum: None,
        unpack: None,
        keep_git_dir: None,
    };
    super::copy_plan::plan(shared, spec, &FileTree::new(), None)
}

/// The RUN step's cache key: its command, mounts and network, plus the mounted sources' contents (so a changed
/// context file or stage re-runs the step); without bind sources, the key RUN always had.
pub(crate) fn run_key(
    prev: &Digest,
    text: &str,
    mounts: &[String],
    network: &str,
    binds: &[PendingBind],
) -> Digest {
    let joined = mounts.join("\n");
    let identity = binds
        .iter()
        .map(|b| b.identity.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let mut parts = vec![text, joined.as_str(), network];
    if !binds.is_empty() {
        parts.push(&identity);
    }
    chain(prev, &parts)
}

/// Write what still needs writing (context layers) and hand the executor its bind sources.
pub(crate) async fn materialize(
    host: &mut Host<'_>,
    binds: &[PendingBind],
) -> Result<Vec<BindSource>, Error> {
    let mut out = Vec::new();
    for b in binds {
        let (layers, diff_ids) = match &b.origin {
            Origin::Context(items) => {
                // Only the executor reads these: gzip, which every executor takes. Written as COPY writes its
                // layers, so a context file the host reads in blocks (the tab's `File`s and `Blob`s) streams in.
                let gzip = lw_layer::compress::LayerFormat::GZIP;
                let l = write_items_async(host, gzip, items, None, None).await?;
                (vec![l.descriptor], vec![l.diff_id])
            }
            Origin::Layers(l, d) => (l.clone(), d.clone()),
        };
        out.push(BindSource {
            mount: b.mount,
            layers,
            diff_ids,
            path: b.path.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::ssh_mounts;

    #[test]
    fn ssh_mounts_get_targets_and_the_first_is_the_agent_socket() {
        let ids: std::collections::BTreeSet<String> = ["default".to_string()].into();
        let specs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (m, sock) = ssh_mounts(
            specs(&["type=ssh", "type=cache,target=/c", "type=ssh,target=/s"]),
            &ids,
            None,
        )
        .unwrap();
        assert_eq!(
            m,
            specs(&[
                "type=ssh,id=default,target=/run/buildkit/ssh_agent.0",
                "type=cache,target=/c",
                "type=ssh,target=/s,id=default,target=/s",
            ])
        );
        assert_eq!(sock.as_deref(), Some("/run/buildkit/ssh_agent.0"));
        // Not forwarded: optional mounts go, SSH_AUTH_SOCK stays; a required one fails with BuildKit's message.
        let none = std::collections::BTreeSet::new();
        let (m, sock) = ssh_mounts(specs(&["type=ssh,id=k,required=false"]), &none, None).unwrap();
        assert!(m.is_empty());
        assert_eq!(sock.as_deref(), Some("/run/buildkit/ssh_agent.0"));
        let e = ssh_mounts(specs(&["type=ssh,id=k,required"]), &none, None).unwrap_err();
        assert_eq!(e.to_string(), "no SSH key \"k\" forwarded from the client");
        assert!(ssh_mounts(specs(&["type=ssh,required=true"]), &ids, None).is_ok());
        let e = ssh_mounts(specs(&["type=ssh,id=k,required"]), &ids, None).unwrap_err();
        assert_eq!(e.to_string(), "unset ssh forward key k");
        // A host that reaches no agent fails at a mount of an id it was asked for, optional or not, and still
        // leaves out (or fails) the others as BuildKit does.
        let why = Some("not here");
        let e = ssh_mounts(specs(&["type=ssh"]), &ids, why).unwrap_err();
        assert_eq!(e.to_string(), "SSH agent \"default\": not here");
        let (m, _) = ssh_mounts(specs(&["type=ssh,id=k"]), &ids, why).unwrap();
        assert!(m.is_empty());
        let e = ssh_mounts(specs(&["type=ssh,id=k,required"]), &ids, why).unwrap_err();
        assert_eq!(e.to_string(), "unset ssh forward key k");
    }

    #[test]
    fn a_seeded_cache_gets_an_id_of_its_own() {
        let identity = lw_oci::Digest::sha256_of(b"seed");
        let binds = [
            super::PendingBind {
                mount: 0,
                origin: super::Origin::Layers(vec![], vec![]),
                path: "/".into(),
                identity: identity.clone(),
            },
            super::PendingBind {
                mount: 1,
                origin: super::Origin::Layers(vec![], vec![]),
                path: "/".into(),
                identity: identity.clone(),
            },
        ];
        let mut mounts = vec![
            "type=cache,target=/k,from=seed".to_string(),
            "type=bind,target=/b".to_string(),
        ];
        super::key_seeded_caches(&mut mounts, &binds);
        assert_eq!(
            mounts[0],
            format!(
                "type=cache,target=/k,from=seed,id=/k@{}",
                identity.encoded()
            )
        );
        assert_eq!(mounts[1], "type=bind,target=/b");
    }
}
