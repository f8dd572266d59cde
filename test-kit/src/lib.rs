//! `lw-test-kit`: what the workspace's integration tests share, as a dev-dependency only (`publish = false`).
//!
//! - [`policy`]: the one rule for a test that cannot run here. `require!("skopeo", "umoci");` at the top of a
//!   test returns early when a tool is missing: with a `SKIPPED <test>: ... (Debian package ...)` line under plain
//!   `cargo test`, as a failure under `cargo xtask test` (which sets `LW_REQUIRE_TOOLS=1` after installing every
//!   tool). `require!(root: "mounting a tmpfs")` does the same for root; [`policy::cannot_run`] for anything else
//!   (every other helper that gives up goes through it).
//! - [`corpus`]: the shared corpora (`../shared` beside the checkout): [`corpus::shared`],
//!   [`corpus::conformance`].
//! - [`process`]: [`process::run_ok`] / [`process::output_ok`] (run, require success, return stdout),
//!   [`process::free_port`], and the leftovers a test checks for: [`process::mounts_under`],
//!   [`process::mount_points_under`], [`process::processes_with`].
//! - [`containers`]: podman with storage and configuration private to a directory ([`containers::Podman`]), and
//!   [`containers::write_containers_config`], which buildah shares; [`buildah`]: [`buildah::Buildah`] and the
//!   readers that turn an exported image into config and file rows.
//! - [`docker`]: a private Docker 20.10 daemon ([`docker::Dockerd::shared`] per test binary, or
//!   [`docker::Dockerd::start`] with extra flags).
//! - [`registry`]: the real Distribution registry ([`registry::Registry`], htpasswd or token auth), a token server
//!   issuing ES256 JWTs ([`registry::TokenServer`]), a scriptable fake server for faults
//!   ([`registry::FakeServer`] answering [`registry::Reply`]s), [`registry::skopeo_digest`].
//! - [`githttp`]: `git http-backend` behind a loopback HTTP server ([`githttp::GitHttp`]: smart v2, v0 only,
//!   dumb files, optional required `Authorization`).
//! - [`http`]: a raw HTTP/1.1 client ([`http::raw`]) that sends exactly the headers it is given.
//! - [`ssh`]: an ssh-agent holding a new key ([`ssh::Agent`]).
//!
//! Every server binds 127.0.0.1 only. Nothing here touches /etc or the system's container storage.

pub mod buildah;
pub mod containers;
pub mod corpus;
pub mod docker;
pub mod githttp;
pub mod http;
pub mod policy;
pub mod process;
pub mod registry;
pub mod ssh;

pub use policy::{cannot_run, have, require_root, require_tools};
pub use process::{output_ok, run_ok};
