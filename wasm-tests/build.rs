//! Puts the docker-archive fixture that `cargo xtask test` makes with skopeo (LW_TEST_DOCKER_ARCHIVE, a path) into
//! OUT_DIR for `include_bytes!`; an empty file when unset, and the suite says it did not run. Also lists the
//! BuildKit corpus cases (native-cli/tests/buildkit/cases) the browser build can take as they are.

use std::path::{Path, PathBuf};

/// The corpus cases a tab build takes as they are: FROM scratch only (no base image in the tab), no RUN (no
/// executor here), no ADD <url> (no loopback server in the tab), no named contexts or SSH agents (the Chromium
/// corpus test, www/tests/buildkit-corpus.test.mjs, builds those), and a context of plain 0644 files.
fn corpus_cases(out: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../native-cli/tests/buildkit/cases");
    println!("cargo:rerun-if-changed={}", dir.display());
    // Cases known to differ (deliberately or not yet fixed) are the native test's to report.
    let known_file = dir.join("../known-differences.txt");
    println!("cargo:rerun-if-changed={}", known_file.display());
    let known: Vec<String> = std::fs::read_to_string(&known_file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(c, _)| c.trim().to_string()))
        .collect();
    let mut code = String::from("pub const CASES: &[CorpusCase] = &[\n");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|r| r.map(|e| e.expect("reading the corpus").path()).collect())
        .unwrap_or_default();
    names.sort();
    'case: for case in names {
        println!("cargo:rerun-if-changed={}", case.display());
        let df = std::fs::read_to_string(case.join("Dockerfile")).unwrap_or_default();
        let uses_base = df.contains("busybox");
        let runs = df
            .lines()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("RUN "));
        let listed = known.iter().any(|k| case.ends_with(k));
        if uses_base
            || runs
            || listed
            || case.join("http").exists()
            || case.join("https").exists()
            || case.join("modes").exists()
            // Empty directories (git keeps none): the Chromium corpus test gives them as `fileInfo`.
            || case.join("dirs").exists()
            || case.join("secrets").exists()
            // Named contexts and SSH agents: the Chromium corpus test gives them.
            || case.join("contexts.list").exists()
            || case.join("ssh").exists()
            || !case.join("expected.json").exists()
        {
            continue;
        }
        let mut files = Vec::new();
        let ctx = case.join("context");
        let mut todo = vec![ctx.clone()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten() {
                let p = e.expect("reading the corpus").path();
                let m = std::fs::symlink_metadata(&p).expect("stat");
                use std::os::unix::fs::PermissionsExt;
                if m.file_type().is_symlink()
                    || (m.is_file() && m.permissions().mode() & 0o111 != 0)
                {
                    continue 'case;
                }
                if m.is_dir() {
                    todo.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&ctx)
                        .expect("below the context")
                        .to_string_lossy()
                        .into_owned();
                    files.push(format!(
                        "({rel:?}, include_bytes!({:?}))",
                        p.display().to_string()
                    ));
                }
            }
        }
        files.sort();
        let kv = |name: &str| -> Vec<String> {
            std::fs::read_to_string(case.join(name))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| format!("({k:?}, {v:?})"))
                .collect()
        };
        let target = std::fs::read_to_string(case.join("target"))
            .map(|t| format!("Some({:?})", t.trim()))
            .unwrap_or_else(|_| "None".into());
        code.push_str(&format!(
            "    CorpusCase {{ name: {:?}, dockerfile: {df:?}, files: &[{}], build_args: &[{}], target: {target}, \
             expected: include_str!({:?}) }},\n",
            case.file_name().unwrap().to_string_lossy(),
            files.join(", "),
            kv("build-args").join(", "),
            case.join("expected.json").display().to_string(),
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("buildkit_cases.rs"), code).expect("writing OUT_DIR");
}

fn main() {
    corpus_cases(&PathBuf::from(
        std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"),
    ));
    println!("cargo:rerun-if-env-changed=LW_TEST_DOCKER_ARCHIVE");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("docker-archive.tar");
    match std::env::var_os("LW_TEST_DOCKER_ARCHIVE") {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&p).display());
            std::fs::copy(&p, &out).expect("copying LW_TEST_DOCKER_ARCHIVE");
        }
        None => std::fs::write(&out, b"").expect("writing OUT_DIR"),
    }
}
