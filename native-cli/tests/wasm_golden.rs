//! The same-digest goldens of wasm-tests/src/golden.rs, checked against the real CLI: `layerwright build` of each
//! case must give the golden manifest digest and `layerwright save` the golden tarball sha256 — the values the
//! browser build (lw-wasm, wasm-tests/tests/api_build.rs) must also hit.

#[path = "../../wasm-tests/src/golden.rs"]
mod golden;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn cli(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_layerwright"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "0")
        .output()
        .expect("running layerwright");
    assert!(
        out.status.success(),
        "layerwright {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Write a case's context with fixed modes (0644 files, 0755 dirs) so the umask cannot change the layers.
fn write_context(dir: &Path, files: &[(&str, &[u8])]) {
    for (p, bytes) in files {
        let path = dir.join(p);
        let parent = path.parent().unwrap();
        fs::create_dir_all(parent).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    for entry in walk(dir) {
        if entry.is_dir() {
            fs::set_permissions(&entry, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
            out.push(p);
        }
    }
    out
}

#[test]
fn cli_builds_and_saves_the_wasm_goldens() {
    let mut failures = Vec::new();
    for c in golden::CASES {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        let root = tmp.path().join("store");
        fs::create_dir_all(&ctx).unwrap();
        write_context(&ctx, c.files);
        let mut args: Vec<String> = vec![
            "build".into(),
            "-q".into(),
            "--platform".into(),
            golden::PLATFORM.into(),
            "-t".into(),
            c.tag.into(),
        ];
        if let Some(comp) = c.compression {
            args.push("--compression".into());
            args.push(comp.into());
        }
        for (k, v) in c.build_args {
            args.push("--build-arg".into());
            args.push(format!("{k}={v}"));
        }
        args.push(ctx.to_string_lossy().into_owned());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&root, &argv);
        let listed: serde_json::Value =
            serde_json::from_str(&cli(&root, &["images", "--json"])).unwrap();
        let digest = listed[0]["Digest"].as_str().unwrap_or_default().to_string();
        let tar = tmp.path().join("out.tar");
        cli(&root, &["save", c.tag, "-o", tar.to_str().unwrap()]);
        let sha = lw_oci::Digest::sha256_of(&fs::read(&tar).unwrap())
            .encoded()
            .to_string();
        println!("golden {}: manifest {digest} tarball sha256 {sha}", c.name);
        if digest != c.manifest_digest || sha != c.tarball_sha256 {
            failures.push(format!("{}: manifest {digest} tarball {sha}", c.name));
        }
    }
    println!(
        "same-digest goldens (CLI): {}/{} passed",
        golden::CASES.len() - failures.len(),
        golden::CASES.len()
    );
    assert!(failures.is_empty(), "golden mismatches: {failures:#?}");
}
