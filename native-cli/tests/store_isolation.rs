//! Isolation of effects: random sequences (fixed seed, printed) of tag, rmi, prune, push to serve, DELETE through
//! serve, build and load over several repositories, on a local store and serve's store. After each step nothing
//! outside the step's target changed: every other name still points at the same manifest, and every blob a name
//! reaches (manifest, config, layers) is still there and whole, in both stores.

use crate::common;
use crate::common::kills;
use crate::common::serve as serve_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{busybox_files, make_busybox_image};
use kills::{verify, Cli, Lcg};
use layerwright::store::Store;
use serve_fixtures::Served;

const SEED: u64 = 0x150_1a7e;
const STEPS: usize = 120;
const REPOS: [&str; 3] = ["iso/a", "iso/b", "iso/c"];
const TAGS: [&str; 3] = ["1", "2", "3"];

/// Every name of a store and the manifest digest it points at.
fn names(root: &Path) -> BTreeMap<String, String> {
    Store::open(root)
        .unwrap()
        .records()
        .unwrap()
        .into_iter()
        .filter_map(|r| Some((r.name?, r.descriptor.digest.to_string())))
        .collect()
}

/// What a step may change: names matching the predicate (in the local store, or in serve's).
/// Whether a name is one a step aimed at (and so may change).
type Aimed = dyn Fn(&str) -> bool;

enum Target {
    Local(Box<dyn Fn(&str) -> bool>),
    Served(Box<dyn Fn(&str) -> bool>),
    Nothing,
}

fn pick<'a>(rng: &mut Lcg, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len() as u64) as usize]
}

/// A tagged local name, or any name when there is none.
fn existing(rng: &mut Lcg, map: &BTreeMap<String, String>) -> Option<String> {
    let v: Vec<&String> = map.keys().collect();
    (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize].clone())
}

/// Short names (`iso/a:1`) as the CLI takes them; stored names are normalized (`docker.io/iso/a:1`).
fn short(full: &str) -> String {
    full.strip_prefix("docker.io/").unwrap_or(full).to_string()
}

/// The two stores and what acts on them.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    served_root: PathBuf,
    srv: Served,
    cli: Cli,
    ctx: PathBuf,
    saved: PathBuf,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "iso/base:1", &[busybox_files(&[])]);
    let served_root = tmp.path().join("served");
    let srv = Served::start(&served_root, |_| {});
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    cli.login(&srv.host(), &srv.token);
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // An archive to load, holding a name of its own.
    cli.ok(&["tag", "iso/base:1", "iso/saved:1"]);
    let saved = tmp.path().join("saved.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "iso/saved:1"]);
    cli.ok(&["rmi", "iso/saved:1"]);
    World {
        _tmp: tmp,
        root,
        served_root,
        srv,
        cli,
        ctx,
        saved,
    }
}

impl World {
    /// Run `op` aimed at `repo:tag` (or at what exists); what it may change, or `None` when it had nothing to act on.
    fn step(
        &self,
        rng: &mut Lcg,
        step: usize,
        op: &str,
        (repo, tag): (&str, &str),
        (local, served): (&BTreeMap<String, String>, &BTreeMap<String, String>),
    ) -> Option<Target> {
        let (cli, srv) = (&self.cli, &self.srv);
        let dst = format!("{repo}:{tag}");
        let full_dst = format!("docker.io/{dst}");
        Some(match op {
            "tag" => {
                let src = existing(rng, local).unwrap_or("docker.io/iso/base:1".into());
                cli.ok(&["tag", &short(&src), &dst]);
                Target::Local(Box::new(move |n| n == full_dst))
            }
            "rmi" => {
                // Never the base: builds need it.
                let n = existing(rng, local).filter(|n| !n.contains("iso/base"))?;
                cli.ok(&["rmi", &short(&n)]);
                Target::Local(Box::new(move |x| x == n))
            }
            "prune" => {
                cli.ok(&["prune"]);
                Target::Nothing
            }
            "push" => {
                let n = existing(rng, local)?;
                cli.ok(&["push", &short(&n), &format!("{}/{dst}", srv.host())]);
                let pushed = format!("localhost/{dst}");
                Target::Served(Box::new(move |x| x == pushed))
            }
            "delete" => {
                // By tag or by digest; a digest DELETE takes the repository's names for it, no other's.
                let prefix = format!("localhost/{repo}:");
                let in_repo: Vec<(&String, &String)> = served
                    .iter()
                    .filter(|(n, _)| n.starts_with(&prefix))
                    .collect();
                if in_repo.is_empty() {
                    return None;
                }
                let (n, d) = in_repo[rng.below(in_repo.len() as u64) as usize];
                let (reference, n, d) = if rng.below(2) == 0 {
                    (n.rsplit(':').next().unwrap().to_string(), n.clone(), None)
                } else {
                    (d.clone(), n.clone(), Some(d.clone()))
                };
                let r = srv.req(
                    "DELETE",
                    &format!("/v2/{repo}/manifests/{reference}"),
                    &[("Authorization", &srv.bearer())],
                    b"",
                );
                assert_eq!(
                    r.status,
                    202,
                    "step {step}: DELETE {reference}: {}",
                    r.text()
                );
                let served_now = served.clone();
                Target::Served(Box::new(move |x| match &d {
                    None => x == n,
                    Some(d) => x.starts_with(&prefix) && served_now.get(x) == Some(d),
                }))
            }
            "build" => {
                std::fs::write(self.ctx.join("f.txt"), format!("step {step}")).unwrap();
                std::fs::write(
                    self.ctx.join("Dockerfile"),
                    "FROM iso/base:1\nCOPY f.txt /f.txt\n",
                )
                .unwrap();
                cli.ok(&["build", "-q", "-t", &dst, self.ctx.to_str().unwrap()]);
                Target::Local(Box::new(move |n| n == full_dst))
            }
            _ => {
                cli.ok(&["load", "-i", self.saved.to_str().unwrap()]);
                Target::Local(Box::new(|n| n == "docker.io/iso/saved:1"))
            }
        })
    }
}

/// Every name outside `aimed` is as it was.
fn unchanged(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    aimed: &dyn Fn(&str) -> bool,
    what: &str,
) {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        if !aimed(k) {
            assert_eq!(before.get(k), after.get(k), "{what}: name {k} changed");
        }
    }
}

#[test]
fn random_commands_change_nothing_outside_their_target() {
    println!("isolation: seed {SEED:#x}, {STEPS} steps");
    let w = world();
    let mut rng = Lcg(SEED);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in 0..STEPS {
        let local = names(&w.root);
        let served = names(&w.served_root);
        let repo = pick(&mut rng, &REPOS);
        let tag = pick(&mut rng, &TAGS);
        let op = ["tag", "rmi", "prune", "push", "delete", "build", "load"][rng.below(7) as usize];
        let Some(target) = w.step(&mut rng, step, op, (repo, tag), (&local, &served)) else {
            continue;
        };
        *counts.entry(op).or_default() += 1;
        let (local_after, served_after) = (names(&w.root), names(&w.served_root));
        let none = |_: &str| false;
        let (aimed_local, aimed_served): (&Aimed, &Aimed) = match &target {
            Target::Local(f) => (f.as_ref(), &none),
            Target::Served(f) => (&none, f.as_ref()),
            Target::Nothing => (&none, &none),
        };
        unchanged(
            &local,
            &local_after,
            aimed_local,
            &format!("step {step} ({op}), local"),
        );
        unchanged(
            &served,
            &served_after,
            aimed_served,
            &format!("step {step} ({op}), served"),
        );
        for (which, r) in [("local", &w.root), ("served", &w.served_root)] {
            let c = verify(r);
            assert!(
                c.problems.is_empty(),
                "step {step} ({op}): {which} store: {:?}",
                c.problems
            );
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "isolation: {} steps over {} repositories ({}); names changed outside their target 0, blobs lost 0; \
         {} local names and {} served names at the end",
        counts.values().sum::<usize>(),
        REPOS.len(),
        summary.join(", "),
        names(&w.root).len(),
        names(&w.served_root).len()
    );
}
