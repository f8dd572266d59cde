//! The engine's side of `RUN --mount=type=bind`: sources resolved (context filtered by .dockerignore and written as a
//! layer, a stage's or an image's layers), `from=` stages built as dependencies, the step's cache key following the
//! source's content, and errors naming the line. A recording executor stands in for runc.

use lw_engine::context::{Context, FilteredContext, MemoryContext};
use lw_engine::engine::{build, BuildOptions, BuildResult, Host};
use lw_engine::events::BuildEvent;
use lw_engine::host::{
    BlobStore, MemoryBlobs, MemoryCache, NoImages, RunExecutor, RunRequest, RunResult,
};
use lw_engine::Error;
use lw_oci::Platform;

#[derive(Default)]
struct Recorder {
    requests: Vec<RunRequest>,
}

impl RunExecutor for Recorder {
    fn run(
        &mut self,
        req: &RunRequest,
        _: &mut dyn BlobStore,
        _: &mut dyn FnMut(&[u8]),
    ) -> Result<RunResult, Error> {
        self.requests.push(req.clone());
        Ok(RunResult { layer: None })
    }
}

struct Env {
    blobs: MemoryBlobs,
    cache: MemoryCache,
    exec: Recorder,
}

impl Env {
    fn build(
        &mut self,
        df: &str,
        ctx: &dyn Context,
    ) -> (Result<BuildResult, Error>, Vec<BuildEvent>) {
        let opts = BuildOptions::new(
            df.as_bytes().to_vec(),
            Platform::parse("linux/amd64").unwrap(),
        );
        let mut events = Vec::new();
        let mut on = |e: BuildEvent| events.push(e);
        let mut images = NoImages;
        let mut host = Host {
            context: ctx,
            blobs: &mut self.blobs,
            images: &mut images,
            run: Some(&mut self.exec),
            fetch: None,
            cache: &mut self.cache,
            events: &mut on,
        };
        let r = build(&opts, &mut host);
        (r, events)
    }
}

fn context(files: &[(&str, &str)]) -> FilteredContext<MemoryContext> {
    let mut c = MemoryContext::new();
    for (p, d) in files {
        c.insert_file(p, d.as_bytes().to_vec()).unwrap();
    }
    FilteredContext::from_ignore_file(c, Some("Dockerfile")).unwrap()
}

const DF: &str = "FROM scratch AS gen\nCOPY gen.txt /out/g.txt\n\
FROM scratch AS unused\nCOPY nothing-here /\n\
FROM scratch\n\
RUN --mount=type=bind,source=src,target=/s --mount=type=cache,target=/c --mount=type=bind,from=gen,source=/out,target=/g true\n";

#[test]
fn bind_sources_are_resolved_and_key_the_cache() {
    let files = [
        ("src/a.txt", "A"),
        ("src/skip.log", "ignored"),
        ("gen.txt", "G"),
        ("other.txt", "O"),
        (".dockerignore", "src/*.log\n"),
    ];
    let mut env = Env {
        blobs: MemoryBlobs::default(),
        cache: MemoryCache::default(),
        exec: Recorder::default(),
    };
    let (r, events) = env.build(DF, &context(&files));
    r.unwrap();
    // The stage named only by `from=` was built; the unused one was not.
    assert!(events
        .iter()
        .any(|e| matches!(e, BuildEvent::StageSkipped { stage: 1, .. })));
    assert!(!events
        .iter()
        .any(|e| matches!(e, BuildEvent::StageSkipped { stage: 0, .. })));
    assert_eq!(env.exec.requests.len(), 1);
    let req = env.exec.requests[0].clone();
    assert_eq!(req.binds.len(), 2, "{:?}", req.binds);
    let (ctx_bind, stage_bind) = (&req.binds[0], &req.binds[1]);
    assert_eq!((ctx_bind.mount, ctx_bind.path.as_str()), (0, "/src"));
    assert_eq!((stage_bind.mount, stage_bind.path.as_str()), (2, "/out"));
    // The context subtree, written as a layer, without what .dockerignore excludes.
    let t = lw_engine::engine::rootfs::tree_of(&env.blobs, &ctx_bind.layers, true).unwrap();
    let paths: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["src", "src/a.txt"], "{paths:?}");
    assert_eq!(t.get("src/a.txt").unwrap().data.as_deref(), Some(&b"A"[..]));
    assert_eq!(ctx_bind.layers.len(), ctx_bind.diff_ids.len());
    let g = lw_engine::engine::rootfs::tree_of(&env.blobs, &stage_bind.layers, true).unwrap();
    assert_eq!(g.get("out/g.txt").unwrap().data.as_deref(), Some(&b"G"[..]));

    // Same sources: cached. A file outside the mounted subtree or ignored: still cached.
    let mut changed = files;
    changed[3] = ("other.txt", "O2");
    changed[1] = ("src/skip.log", "changed");
    env.build(DF, &context(&changed)).0.unwrap();
    assert_eq!(env.exec.requests.len(), 1, "re-ran without a source change");
    // A change under the mounted source, or in the `from=` stage, re-runs the step.
    changed[0] = ("src/a.txt", "A2");
    env.build(DF, &context(&changed)).0.unwrap();
    assert_eq!(env.exec.requests.len(), 2);
    changed[2] = ("gen.txt", "G2");
    env.build(DF, &context(&changed)).0.unwrap();
    assert_eq!(env.exec.requests.len(), 3);
}

#[test]
fn bind_errors_name_the_line() {
    let mut env = Env {
        blobs: MemoryBlobs::default(),
        cache: MemoryCache::default(),
        exec: Recorder::default(),
    };
    let ctx = context(&[("a.txt", "A")]);
    for (df, want) in [
        (
            "FROM scratch\nRUN --mount=type=bind,source=nope,target=/m true\n",
            "Dockerfile:2: RUN --mount=type=bind failed: \"nope\" not found in the build context",
        ),
        (
            "FROM scratch\n\nRUN --mount=from=ghost,target=/m true\n",
            "Dockerfile:3: RUN --mount=from=ghost,target=/m: from=ghost is not a stage of this Dockerfile",
        ),
        (
            "FROM scratch AS s\nFROM scratch\nRUN --mount=type=bind,from=s,source=/x,target=/m true\n",
            "source \"/x\" not found in s",
        ),
    ] {
        let e = env.build(df, &ctx).0.unwrap_err().to_string();
        assert!(e.contains(want), "{df}: {e}");
    }
    assert!(env.exec.requests.is_empty());
}
