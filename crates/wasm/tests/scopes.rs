//! One Dockerfile model: the editor's scope view (`parse`'s `scopes`) equals the scopes the build engine evaluates
//! every instruction with (`lw_engine::engine::plan`), on every corpus Dockerfile: the BuildKit build corpus, the lint
//! cases and BuildKit's parser corpus.
// Tests read their corpora from disk; crates/clippy.toml's purity rules are for library code.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};

use lw_engine::engine::{self, BuildOptions};
use lw_oci::Platform;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file named `Dockerfile` or `*.Dockerfile` under `dir`, sorted.
fn dockerfiles(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            // A case's build context is not a corpus entry.
            if name != "context" {
                dockerfiles(&p, out);
            }
        } else if name == "Dockerfile" || name.ends_with(".Dockerfile") {
            out.push(p);
        }
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let conformance = lw_test_kit::corpus::conformance("");
    let parser_dirs: Vec<PathBuf> = std::fs::read_dir(&conformance)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", conformance.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("buildkit-parser"))
        })
        .collect();
    for dir in [
        root().join("native-cli/tests/buildkit/cases"),
        root().join("crates/dockerfile/tests/lint_cases"),
    ]
    .into_iter()
    .chain(parser_dirs)
    {
        dockerfiles(&dir, &mut files);
    }
    files
}

/// The engine's scope per instruction, in the shape of the editor's view.
fn engine_view(src: &[u8]) -> Result<Vec<engine::InstructionScope>, lw_engine::Error> {
    let opts = BuildOptions::new(src.to_vec(), Platform::new("linux", "amd64", None));
    Ok(engine::plan(&opts)?.scopes())
}

/// The instruction-level error `parse` shows as a diagnostic.
fn syntax_error(src: &[u8]) -> Option<String> {
    let df = lw_dockerfile::parser::parse(src).ok()?;
    lw_dockerfile::instructions::parse(&df)
        .err()
        .map(|e| e.to_string())
}

#[test]
fn editor_scopes_equal_engine_scopes_on_every_corpus_dockerfile() {
    let files = corpus();
    let (mut compared, mut vars, mut neither, mut refused) = (0, 0, 0, 0);
    let mut differ = Vec::new();
    for f in &files {
        let src = std::fs::read(f).unwrap();
        let editor = lw_wasm::scope_view(&String::from_utf8_lossy(&src));
        match (editor, engine_view(&src)) {
            (Some(e), Ok(b)) => {
                compared += 1;
                vars += b.iter().map(|s| s.vars.len()).sum::<usize>();
                if e != b {
                    differ.push(format!("{}:\n editor {e:?}\n engine {b:?}", f.display()));
                }
            }
            (None, Err(_)) => neither += 1,
            // A typed-syntax error (`ONBUILD ONBUILD`, an unknown flag): the build refuses it, and the editor
            // keeps its model and shows the same error as a diagnostic.
            (Some(_), Err(lw_engine::Error::Dockerfile { source, .. }))
                if Some(source.to_string()) == syntax_error(&src) =>
            {
                refused += 1
            }
            (e, b) => differ.push(format!(
                "{}: the editor has a model: {}, the engine: {:?}",
                f.display(),
                e.is_some(),
                b.map(|_| "a plan")
            )),
        }
    }
    eprintln!(
        "{} corpus Dockerfiles: {compared} compared ({vars} variables), {neither} without a model on both sides, \
         {refused} with a syntax error the editor shows over its model",
        files.len()
    );
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // The three corpora were found (115 BuildKit cases, 74 lint cases, 41 parser files).
    assert!(
        files.len() >= 230,
        "only {} corpus Dockerfiles",
        files.len()
    );
}
