//! Helpers the engine's test modules share.

use lw_engine::context::MemoryContext;
use lw_engine::engine::{build, BuildOptions, BuildResult, Host};
use lw_engine::host::{BlobStore, ImageSource, MemoryCache};
use lw_engine::Error;
use lw_oci::Platform;

/// Build `df` for linux/amd64 over `ctx`, with no RUN executor and no fetcher.
pub fn build_without_run(
    blobs: &mut dyn BlobStore,
    cache: &mut MemoryCache,
    images: &mut dyn ImageSource,
    df: &str,
    ctx: &MemoryContext,
) -> Result<BuildResult, Error> {
    let mut events = |_| {};
    let mut host = Host {
        context: ctx,
        blobs,
        images,
        run: None,
        fetch: None,
        cache,
        events: &mut events,
    };
    let o = BuildOptions::new(
        df.as_bytes().to_vec(),
        Platform::parse("linux/amd64").unwrap(),
    );
    build(&o, &mut host)
}
