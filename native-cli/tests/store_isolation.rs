//! Isolation of effects: random sequences (fixed seed, printed) of tag, rmi, prune, push to serve, DELETE through
//! serve, build and load over several repositories, on a local store and serve's store. After each step nothing
//! outside the step's target changed: every other name still points at the same manifest, and every blob a name
//! reaches (manifest, config, layers) is still there and whole, in both stores.

mod common;
#[path = "common/kills.rs"]
mod kills;
#[path = "common/serve.rs"]
mod serve_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

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

#[test]
fn random_commands_change_nothing_outside_their_target() {
    println!("isolation: seed {SEED:#x}, {STEPS} steps");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let store = Store::open(&root).unwrap();
    make_busybox_image(&store, "iso/base:1", &[busybox_files(&[])]);
    let served_root = tmp.path().join("served");
    let srv = Served::start(&served_root, |_| {});
    let host = srv.host();
    let cli = Cli {
        root: root.clone(),
        docker_config: tmp.path().join("docker"),
    };
    std::fs::create_dir_all(&cli.docker_config).unwrap();
    {
        use std::io::Write as _;
        let mut login = cli.cmd(&["login", &host, "-u", "u", "--password-stdin"]);
        let mut child = login.stdin(Stdio::piped()).spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(srv.token.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // An archive to load, holding a name of its own.
    cli.ok(&["tag", "iso/base:1", "iso/saved:1"]);
    let saved = tmp.path().join("saved.tar");
    cli.ok(&["save", "-o", saved.to_str().unwrap(), "iso/saved:1"]);
    cli.ok(&["rmi", "iso/saved:1"]);

    let mut rng = Lcg(SEED);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in 0..STEPS {
        let local = names(&root);
        let served = names(&served_root);
        let repo = pick(&mut rng, &REPOS);
        let tag = pick(&mut rng, &TAGS);
        let dst = format!("{repo}:{tag}");
        let full_dst = format!("docker.io/{dst}");
        let op = ["tag", "rmi", "prune", "push", "delete", "build", "load"][rng.below(7) as usize];
        let target = match op {
            "tag" => {
                let src = existing(&mut rng, &local).unwrap_or("docker.io/iso/base:1".into());
                cli.ok(&["tag", &short(&src), &dst]);
                Target::Local(Box::new(move |n| n == full_dst))
            }
            "rmi" => {
                // Never the base: builds need it.
                let Some(n) = existing(&mut rng, &local).filter(|n| !n.contains("iso/base")) else {
                    continue;
                };
                cli.ok(&["rmi", &short(&n)]);
                Target::Local(Box::new(move |x| x == n))
            }
            "prune" => {
                cli.ok(&["prune"]);
                Target::Nothing
            }
            "push" => {
                let Some(n) = existing(&mut rng, &local) else {
                    continue;
                };
                cli.ok(&["push", &short(&n), &format!("{host}/{dst}")]);
                let pushed = format!("localhost/{dst}");
                Target::Served(Box::new(move |x| x == pushed))
            }
            "delete" => {
                // By tag or by digest; a digest DELETE takes the repository's names for it, no other's.
                let in_repo: Vec<(&String, &String)> = served
                    .iter()
                    .filter(|(n, _)| n.starts_with(&format!("localhost/{repo}:")))
                    .collect();
                if in_repo.is_empty() {
                    continue;
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
                let prefix = format!("localhost/{repo}:");
                let served_now = served.clone();
                Target::Served(Box::new(move |x| match &d {
                    None => x == n,
                    Some(d) => x.starts_with(&prefix) && served_now.get(x) == Some(d),
                }))
            }
            "build" => {
                std::fs::write(ctx.join("f.txt"), format!("step {step}")).unwrap();
                std::fs::write(
                    ctx.join("Dockerfile"),
                    "FROM iso/base:1\nCOPY f.txt /f.txt\n",
                )
                .unwrap();
                cli.ok(&["build", "-q", "-t", &dst, ctx.to_str().unwrap()]);
                Target::Local(Box::new(move |n| n == full_dst))
            }
            _ => {
                cli.ok(&["load", "-i", saved.to_str().unwrap()]);
                Target::Local(Box::new(|n| n == "docker.io/iso/saved:1"))
            }
        };
        *counts.entry(op).or_default() += 1;
        let (local_after, served_after) = (names(&root), names(&served_root));
        let unchanged = |before: &BTreeMap<String, String>,
                         after: &BTreeMap<String, String>,
                         aimed: &dyn Fn(&str) -> bool,
                         which: &str| {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for k in keys {
                if !aimed(k) {
                    assert_eq!(
                        before.get(k),
                        after.get(k),
                        "step {step} ({op}): {which} name {k} changed"
                    );
                }
            }
        };
        let none = |_: &str| false;
        match &target {
            Target::Local(f) => {
                unchanged(&local, &local_after, f.as_ref(), "local");
                unchanged(&served, &served_after, &none, "served");
            }
            Target::Served(f) => {
                unchanged(&local, &local_after, &none, "local");
                unchanged(&served, &served_after, f.as_ref(), "served");
            }
            Target::Nothing => {
                unchanged(&local, &local_after, &none, "local");
                unchanged(&served, &served_after, &none, "served");
            }
        }
        for (which, r) in [("local", &root), ("served", &served_root)] {
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
        names(&root).len(),
        names(&served_root).len()
    );
}
