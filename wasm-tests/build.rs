//! Puts the docker-archive fixture that `cargo xtask test` makes with skopeo (LW_TEST_DOCKER_ARCHIVE, a path) into
//! OUT_DIR for `include_bytes!`; an empty file when unset, and the suite says it did not run.

use std::path::PathBuf;

fn main() {
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
