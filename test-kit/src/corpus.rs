//! Where the shared corpora are: `../shared` beside the checkout (a worktree's `shared` link counts), as
//! `cargo xtask test` and CI lay it out.

use std::path::PathBuf;

/// The repository root (the kit lives in `<root>/test-kit`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-kit sits in the repository root")
        .to_path_buf()
}

/// `../shared` from the repository root; panics with the expected path when it is missing (the corpora are part
/// of the test set-up, not an optional tool).
pub fn shared() -> PathBuf {
    let p = repo_root().join("../shared");
    assert!(
        p.is_dir(),
        "the shared corpora are missing: expected {} (a checkout of the shared data beside the repository)",
        p.display()
    );
    p
}

/// `../shared/conformance/<sub>` (`sub` may be empty).
pub fn conformance(sub: &str) -> PathBuf {
    let p = shared().join("conformance").join(sub);
    assert!(p.exists(), "corpus {} is missing", p.display());
    p
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_corpora_are_found_beside_the_checkout() {
        assert!(super::conformance("").join("dockerignore").is_dir());
    }
}
