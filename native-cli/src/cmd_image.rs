//! The image-management commands: images, tag, rmi, prune, inspect, history, save, load.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use layerwright::archive::{self, SaveItem};
use layerwright::humanize::{age, human_size};
use layerwright::names;
use layerwright::store::{self, Store};
use serde_json::{json, Value};

#[derive(Args)]
pub struct ImagesArgs {
    /// Show all images, including dangling ones (shown by default, as docker does)
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show manifest digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove the image even when it has several names
    #[arg(short, long)]
    force: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation (accepted for docker compatibility; we never prompt)
    #[arg(short, long)]
    force: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    image: String,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Print sizes in bytes and dates in RFC 3339
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn short(d: &lw_oci::Digest) -> String {
    d.encoded()[..12].to_string()
}

fn progress(len: u64, msg: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

pub fn images(root: &Path, a: ImagesArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut rows = Vec::new();
    for r in store.records()? {
        if store.is_artifact(&r.descriptor) {
            continue;
        }
        let img = store.resolve(&r.descriptor, None)?;
        let size: u64 =
            img.manifest.layers.iter().map(|l| l.size).sum::<u64>() + img.manifest.config.size;
        let (repo, tag) = match &r.name {
            Some(n) => names::repo_and_tag(n),
            None => ("<none>".into(), "<none>".into()),
        };
        rows.push((repo, tag, img, r.descriptor.digest.clone(), size));
    }
    if a.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(repo, tag, img, mdig, size)| {
                json!({"Repository": repo, "Tag": tag, "ID": img.config_digest.to_string(),
                       "Digest": mdig.to_string(), "Created": img.config.created, "Size": size})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for (_, _, img, _, _) in &rows {
            let id = if a.no_trunc {
                img.config_digest.to_string()
            } else {
                short(&img.config_digest)
            };
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(());
    }
    let mut out = vec![{
        let mut h = vec!["REPOSITORY", "TAG"];
        if a.digests {
            h.push("DIGEST");
        }
        h.extend(["IMAGE ID", "CREATED", "SIZE"]);
        h.into_iter().map(String::from).collect::<Vec<_>>()
    }];
    let now = now();
    for (repo, tag, img, mdig, size) in &rows {
        let mut row = vec![repo.clone(), tag.clone()];
        if a.digests {
            row.push(mdig.to_string());
        }
        row.push(if a.no_trunc {
            img.config_digest.to_string()
        } else {
            short(&img.config_digest)
        });
        row.push(age(img.config.created.as_deref(), now));
        row.push(human_size(*size));
        out.push(row);
    }
    print_table(&out);
    Ok(())
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let stdout = io::stdout();
    let mut w = stdout.lock();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            }
        }
        let _ = writeln!(w, "{}", line.trim_end());
    }
}

pub fn tag(root: &Path, a: TagArgs) -> Result<()> {
    let store = Store::open(root)?;
    let found = names::resolve(&store, &a.source)?;
    let target = names::normalize(&a.target)?;
    if target.contains('@') {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            a.target
        );
    }
    store.set_tag(&target, &found.descriptor)
}

pub fn rmi(root: &Path, a: RmiArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut failed = None;
    for r in &a.images {
        let result = (|| -> Result<()> {
            let found = names::resolve(&store, r)?;
            let names_of = store
                .names_by_digest()?
                .remove(&found.descriptor.digest)
                .unwrap_or_default();
            match &found.name {
                // By name, with other names left: only untag, as docker does.
                Some(n) if names_of.len() > 1 => {
                    store.remove_tag(n)?;
                    println!("Untagged: {}", names::familiar(n));
                }
                _ => {
                    let users: Vec<String> = store
                        .container_images()
                        .into_iter()
                        .filter(|(_, d)| d.digest == found.descriptor.digest)
                        .map(|(id, _)| id[..12.min(id.len())].to_string())
                        .collect();
                    // As docker: forced, the name goes and the image stays for its containers.
                    if !users.is_empty() && !a.force {
                        bail!(
                            "conflict: unable to remove {r} (must be forced) - container {} is using it",
                            users.join(", ")
                        );
                    }
                    if names_of.len() > 1 && !a.force {
                        bail!(
                            "conflict: unable to delete {r} (must be forced) - image is referenced in multiple names"
                        );
                    }
                    let img = store.resolve(&found.descriptor, None).ok();
                    for n in store.remove_image(&found.descriptor.digest)? {
                        println!("Untagged: {}", names::familiar(&n));
                    }
                    store.gc()?;
                    if let Some(img) = img {
                        println!("Deleted: {}", img.config_digest);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            eprintln!("Error: {e:#}");
            failed = Some(e);
        }
    }
    match failed {
        // The last cause goes with it, so a full disk is reported as one.
        Some(e) => Err(e.context("some images could not be removed")),
        None => Ok(()),
    }
}

pub fn prune(root: &Path, a: PruneArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut deleted = Vec::new();
    for r in store.records()? {
        if r.name.is_none() || a.all {
            if let Ok(img) = store.resolve(&r.descriptor, None) {
                deleted.push(img.config_digest.to_string());
            }
            store.remove_image(&r.descriptor.digest)?;
        }
    }
    let gc = store.gc()?;
    let freed = gc.map_or(0, |g| g.freed);
    // RUN snapshots of layer stacks no image has any more; left alone (with tmp/) while a RUN step runs.
    let snaps = layerwright::run::prune::prune_snapshots(&store, false)?;
    if !snaps.busy {
        layerwright::run::prune::clean_tmp(&store)?;
    }
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    if gc.is_none() {
        println!(
            "Unused blobs: a build, pull or load is running, left in place (prune again later)"
        );
    }
    if let Some(g) = gc.filter(|g| g.pinned > 0) {
        println!(
            "Unused blobs: {} pushed to `layerwright serve` and waiting for their manifest, left in place",
            g.pinned
        );
    }
    if snaps.busy {
        println!("RUN snapshots: in use by a running build, left in place");
    } else if snaps.snapshots > 0 {
        println!("Deleted RUN snapshots: {}", snaps.snapshots);
    }
    println!("Total reclaimed space: {}", human_size(freed + snaps.bytes));
    Ok(())
}

#[derive(Args)]
pub struct BuilderPruneArgs {
    /// Accepted for docker compatibility: everything not in use is removed
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation (accepted for docker compatibility; we never prompt)
    #[arg(short, long)]
    force: bool,
}

/// `builder prune`: remove RUN's cache mounts and unpacked layer snapshots (what a running build holds stays).
pub fn builder_prune(root: &Path, _a: BuilderPruneArgs) -> Result<()> {
    let store = Store::open(root)?;
    let (snaps, caches) = layerwright::run::prune::prune_builder(&store)?;
    if snaps.busy {
        println!("RUN snapshots: in use by a running build, left in place");
    } else {
        println!("Deleted RUN snapshots: {}", snaps.snapshots);
    }
    println!("Deleted cache mounts: {}", caches.removed);
    if caches.in_use > 0 {
        println!("Cache mounts in use, left in place: {}", caches.in_use);
    }
    println!(
        "Total reclaimed space: {}",
        human_size(snaps.bytes + caches.bytes)
    );
    Ok(())
}

pub fn inspect(root: &Path, a: InspectArgs) -> Result<()> {
    let store = Store::open(root)?;
    let by_digest = store.names_by_digest()?;
    let mut out = Vec::new();
    for r in &a.images {
        let found = names::resolve(&store, r)?;
        let img = store.resolve(&found.descriptor, None)?;
        let names_of = by_digest
            .get(&found.descriptor.digest)
            .cloned()
            .unwrap_or_default();
        // Digest names (`localhost/a@sha256:…`, a manifest pushed to serve by digest) are not tags.
        let repo_tags: Vec<String> = names_of
            .iter()
            .filter(|n| !n.contains('@'))
            .map(|n| names::familiar(n))
            .collect();
        let mut repo_digests: Vec<String> = names_of
            .iter()
            .map(|n| format!("{}@{}", names::repo_and_tag(n).0, found.descriptor.digest))
            .collect();
        repo_digests.dedup();
        let size: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
        let c = &img.config;
        out.push(json!({
            "Id": img.config_digest.to_string(),
            "RepoTags": repo_tags,
            "RepoDigests": repo_digests,
            "Created": c.created,
            "Author": c.author.clone().unwrap_or_default(),
            "Config": c.config,
            "Architecture": c.architecture,
            "Variant": c.variant,
            "Os": c.os,
            "Size": size,
            "RootFS": {"Type": c.rootfs.kind, "Layers": c.rootfs.diff_ids},
            "Descriptor": found.descriptor,
            "Manifest": img.manifest,
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn history(root: &Path, a: HistoryArgs) -> Result<()> {
    let store = Store::open(root)?;
    let found = names::resolve(&store, &a.image)?;
    let img = store.resolve(&found.descriptor, None)?;
    let mut layer_sizes = img.manifest.layers.iter().map(|l| l.size);
    let mut rows = Vec::new();
    let history = if img.config.history.is_empty() {
        // Images without history still have layers; show one row per layer.
        img.config
            .rootfs
            .diff_ids
            .iter()
            .map(|_| lw_oci::History::default())
            .collect()
    } else {
        img.config.history.clone()
    };
    for h in &history {
        let size = if h.empty_layer {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        rows.push((h.clone(), size));
    }
    rows.reverse();
    if a.json {
        let v: Vec<Value> = rows
            .iter()
            .enumerate()
            .map(|(i, (h, size))| {
                json!({"ID": if i == 0 { img.config_digest.to_string() } else { "<missing>".into() },
                       "Created": h.created, "CreatedBy": h.created_by, "Size": size,
                       "Comment": h.comment, "EmptyLayer": h.empty_layer})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if a.quiet {
        println!(
            "{}",
            if a.no_trunc {
                img.config_digest.to_string()
            } else {
                short(&img.config_digest)
            }
        );
        return Ok(());
    }
    let now = now();
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for (i, (h, size)) in rows.iter().enumerate() {
        let id = if i == 0 {
            if a.no_trunc {
                img.config_digest.to_string()
            } else {
                short(&img.config_digest)
            }
        } else {
            "<missing>".into()
        };
        let mut by = h
            .created_by
            .clone()
            .unwrap_or_default()
            .replace(['\t', '\n'], " ");
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let created = if a.human {
            age(h.created.as_deref(), now)
        } else {
            h.created.clone().unwrap_or_default()
        };
        let size = if a.human {
            human_size(*size)
        } else {
            size.to_string()
        };
        table.push(vec![
            id,
            created,
            by,
            size,
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    print_table(&table);
    Ok(())
}

pub fn save(root: &Path, a: SaveArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut items: Vec<SaveItem> = Vec::new();
    for r in &a.images {
        let found = names::resolve(&store, r)?;
        match items
            .iter_mut()
            .find(|i| i.descriptor.digest == found.descriptor.digest)
        {
            Some(i) => i.names.extend(found.name),
            None => items.push(SaveItem {
                names: found.name.into_iter().collect(),
                descriptor: found.descriptor,
            }),
        }
    }
    let pb = progress(0, "Saving");
    match &a.output {
        Some(path) => {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let (tmp, f) = store::tempfile_in(&dir)?;
            let result = (|| -> Result<()> {
                let mut w = io::BufWriter::with_capacity(1 << 20, f);
                archive::save(&store, &items, &mut w, &pb)?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            if io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            archive::save(&store, &items, &mut w, &pb)?;
            w.flush()?;
        }
    }
    pb.finish_and_clear();
    Ok(())
}

pub fn load(root: &Path, a: LoadArgs) -> Result<()> {
    let store = Store::open(root)?;
    // Blobs written here are unnamed until the end: a concurrent prune must not take them.
    let _lease = store.lease()?;
    let loaded = match &a.input {
        Some(p) => {
            let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let pb = progress(f.metadata()?.len(), "Loading");
            let mut r = io::BufReader::with_capacity(1 << 20, pb.wrap_read(f));
            let l = archive::load(&store, &mut r, &p.display().to_string())?;
            pb.finish_and_clear();
            l
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty; use -i FILE or redirect");
            }
            archive::load(&store, &mut io::BufReader::new(io::stdin().lock()), "stdin")?
        }
    };
    if !a.quiet {
        for (names_of, d) in &loaded.images {
            if names_of.is_empty() {
                // The image ID, as docker prints it and as `images` shows it: the config digest.
                println!("Loaded image ID: {}", store.resolve(d, None)?.config_digest);
            }
            for n in names_of {
                println!("Loaded image: {}", names::familiar(n));
            }
        }
    }
    Ok(())
}
