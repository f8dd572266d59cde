//! The BuildKit corpus against the Dockerfile reference it claims to cover (`shared/spec/buildkit/reference.md`):
//! every instruction flag, every `--mount` type's options, every `--network`/`--security` value the reference
//! names is used by some case, and every case is listed in `COVERAGE.md`. A new flag in the reference, or a case
//! nobody documented, fails here rather than going unnoticed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildkit")
}

/// The leading `--name` flags of an instruction line (`COPY [--chown=<user>] --link src dst` gives chown and link):
/// the words after the keyword up to the first that is not a flag, so a command's own options are not taken.
fn leading_flags(line: &str) -> Vec<String> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Vec::new();
    };
    let keyword = first.trim_start_matches('[').to_ascii_uppercase();
    if !INSTRUCTIONS.contains(&keyword.as_str()) {
        return Vec::new();
    }
    words
        .map(|w| w.trim_start_matches('['))
        .take_while(|w| w.starts_with("--") && *w != "--")
        .map(|w| {
            w.trim_start_matches("--")
                .split(['=', ']', '<', '['])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|f| !f.is_empty())
        .collect()
}

/// What the reference names: instruction flags (from its code blocks' instruction lines and HEALTHCHECK's option
/// list), each mount type's options (the first column of its section's table) and the `--network`/`--security`
/// values its headings name.
struct Reference {
    flags: BTreeSet<String>,
    mount_options: BTreeSet<(String, String)>,
    values: BTreeSet<(String, String)>,
}

fn read_reference() -> Reference {
    let path = corpus().join("../../../../shared/spec/buildkit/reference.md");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut flags, mut mount_options, mut values) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut in_code, mut mount_type) = (false, None::<String>);
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            flags.extend(leading_flags(line.trim_start()));
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            mount_type = h.strip_prefix("RUN --mount=type=").map(str::to_string);
            for flag in ["network", "security"] {
                if let Some(v) = h.strip_prefix(&format!("RUN --{flag}=")) {
                    values.insert((flag.to_string(), v.trim().to_string()));
                }
            }
            continue;
        }
        if line.starts_with("## ") {
            mount_type = None;
        }
        if let Some(rest) = line.strip_prefix("- `--") {
            flags.insert(rest.split(['=', '`']).next().unwrap_or("").to_string());
        }
        if let (Some(t), Some(cell)) = (&mount_type, line.strip_prefix("| ")) {
            // An option row's first cell is its names, each in backticks (`` `target`, `dst` ``).
            let first = cell.split('|').next().unwrap_or("");
            if first.starts_with('`') {
                for name in first.split('`').skip(1).step_by(2) {
                    mount_options.insert((t.clone(), name.trim().to_string()));
                }
            }
        }
    }
    mount_options.retain(|(_, n)| !n.is_empty());
    Reference {
        flags,
        mount_options,
        values,
    }
}

/// Every case's Dockerfile lines, joined at line continuations.
fn case_lines() -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(corpus().join("cases")).unwrap() {
        let p = e.unwrap().path().join("Dockerfile");
        if let Ok(t) = fs::read_to_string(&p) {
            out.extend(t.replace("\\\n", " ").lines().map(str::to_string));
        }
    }
    out
}

/// The (type, option) pairs of every `--mount=` in `lines` (no `type=` is a bind mount, as in BuildKit).
fn used_mount_options(lines: &[String]) -> BTreeSet<(String, String)> {
    let mut used = BTreeSet::new();
    for l in lines {
        for w in l.split_whitespace() {
            let Some(spec) = w.strip_prefix("--mount=") else {
                continue;
            };
            let kv: Vec<(&str, &str)> = spec
                .split(',')
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect();
            let t = kv
                .iter()
                .find(|(k, _)| *k == "type")
                .map_or("bind", |(_, v)| v);
            used.extend(kv.iter().map(|(k, _)| (t.to_string(), k.to_string())));
        }
    }
    used
}

#[test]
fn the_corpus_covers_every_flag_mount_option_and_value_of_the_reference() {
    let r = read_reference();
    let lines = case_lines();
    let used_flags: BTreeSet<String> = lines.iter().flat_map(|l| leading_flags(l)).collect();
    let used_mounts = used_mount_options(&lines);
    let joined = lines.join("\n");
    let missing_flags: Vec<_> = r.flags.difference(&used_flags).collect();
    let missing_mounts: Vec<_> = r.mount_options.difference(&used_mounts).collect();
    let missing_values: Vec<_> = r
        .values
        .iter()
        .filter(|(f, v)| !joined.contains(&format!("--{f}={v}")))
        .collect();
    println!(
        "buildkit coverage: {} instruction flags, {} mount options, {} flag values in the reference; missing {}, {}, {}",
        r.flags.len(),
        r.mount_options.len(),
        r.values.len(),
        missing_flags.len(),
        missing_mounts.len(),
        missing_values.len()
    );
    // The parse found what the reference is known to hold, so an empty result cannot pass.
    assert!(r.flags.is_superset(
        &["chown", "link", "parents", "mount", "interval"]
            .map(String::from)
            .into()
    ));
    assert!(r
        .mount_options
        .contains(&("cache".into(), "sharing".into())));
    assert!(r.values.contains(&("network".into(), "none".into())));
    assert!(
        missing_flags.is_empty(),
        "flags no case uses: {missing_flags:?}"
    );
    assert!(
        missing_mounts.is_empty(),
        "mount options no case uses: {missing_mounts:?}"
    );
    assert!(
        missing_values.is_empty(),
        "values no case uses: {missing_values:?}"
    );
}

#[test]
fn every_case_is_listed_in_coverage_md() {
    let coverage = fs::read_to_string(corpus().join("COVERAGE.md")).unwrap();
    let mut missing = Vec::new();
    let mut n = 0;
    for e in fs::read_dir(corpus().join("cases")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        n += 1;
        if !coverage.contains(&format!("`{name}`")) {
            missing.push(name);
        }
    }
    assert!(n > 100, "{n} cases");
    assert!(
        missing.is_empty(),
        "cases COVERAGE.md does not list: {missing:?}"
    );
}
