//! WORKDIR as a stage step: the directory joined and cleaned as BuildKit does, and the layer that creates what is
//! missing (owned by the current USER), with the existing parents BuildKit's snapshot diff also holds.

use std::collections::BTreeMap;

use lw_layer::Entry;

use super::copy::{Data, Item};
use super::layers::write_items;
use super::stage::{cached_or, chain, resolve_owner, StageState, StepCtx};
use super::{expand, Host};
use crate::Error;

/// `WORKDIR path` at `cx`.
pub(super) fn workdir_step(
    cx: &StepCtx,
    host: &mut Host,
    st: &mut StageState,
    path: &str,
) -> Result<(), Error> {
    let (shared, line) = (cx.shared, cx.line);
    let p = expand(shared, line, path, &st.env)?;
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
    // BuildKit makes the directories inside the rootfs following symlinks (WORKDIR /link/sub makes the
    // link target's sub): the directories made are those of the resolved path.
    let mut missing = Vec::new();
    let mut dir = tree.resolve(&clean);
    while !dir.is_empty() && tree.get(&dir).is_none() {
        missing.push(dir.clone());
        dir = lw_layer::path::parent(&dir).to_string();
    }
    // BuildKit makes a layer for every WORKDIR but `/`, empty when the directories exist.
    if abs == "/" {
        st.history(shared, text, true);
        cx.finish(host, st, false, None);
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
    let (layer, cached) = cached_or(host, shared, &key, |h| {
        write_items(h, shared.opts.layer_format, &items).map(Some)
    })?;
    let layer = layer.expect("WORKDIR makes a layer");
    if let Some(t) = st.tree.as_mut() {
        for it in &items {
            t.insert(it.entry.clone(), st.layers.len(), None);
        }
    }
    let d = layer.descriptor.clone();
    st.add_layer(shared, layer, text, cached);
    cx.finish(host, st, cached, Some(&d));
    Ok(())
}
