#![no_main]
//! The Dockerfile frontend's heredoc and shell-word paths, end to end: the input is a Dockerfile built by the
//! engine over an in-memory context, blobs and cache, with a RUN executor that only records what it was asked to
//! run. So `RUN <<EOF` scripts (`sh -c BODY`, `#!` bodies as `/dev/pipes/NAME` files, `<<-` chomping, heredocs after
//! a command line), `COPY <<EOF` files with and without expansion, and every word ARG/ENV/COPY/WORKDIR/LABEL/USER
//! expand go through the code a real build runs. Build errors are fine; panics, hangs and runaway allocation are not.

use libfuzzer_sys::fuzz_target;
use lw_engine::context::MemoryContext;
use lw_engine::engine::{build, BuildOptions, Host};
use lw_engine::host::{
    BlobStore, MemoryBlobs, MemoryCache, NoImages, RunExecutor, RunRequest, RunResult,
};
use lw_oci::Platform;

/// Answers every RUN at once with no layer, after checking what the engine handed over is self-consistent.
struct Recorder;

impl RunExecutor for Recorder {
    fn run(
        &mut self,
        req: &RunRequest,
        _store: &mut dyn BlobStore,
        _output: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, lw_engine::Error> {
        // A heredoc file is mounted by absolute path, and a script run as a file is one of them.
        for (path, _) in &req.files {
            assert!(path.starts_with('/'), "heredoc file at {path:?}");
        }
        Ok(RunResult { layer: None })
    }
}

fuzz_target!(|data: &[u8]| {
    // Small contexts keep each execution fast; the Dockerfile is where the interest lies.
    let mut ctx = MemoryContext::new();
    for (p, d) in [("a.txt", "a\n"), ("dir/b.txt", "b\n")] {
        if let Ok(e) = ctx.insert_file(p, d.as_bytes().to_vec()) {
            e.mtime = 1;
        }
    }
    let mut opts = BuildOptions::new(data.to_vec(), Platform::parse("linux/amd64").unwrap());
    opts.build_args.insert("X".into(), "x y".into());
    let mut blobs = MemoryBlobs::default();
    let mut cache = MemoryCache::default();
    let mut images = NoImages;
    let mut exec = Recorder;
    let mut on = |_e| {};
    let mut host = Host {
        context: &ctx,
        blobs: &mut blobs,
        images: &mut images,
        run: Some(&mut exec),
        fetch: None,
        cache: &mut cache,
        events: &mut on,
    };
    let _ = build(&opts, &mut host);
});
