//! The build engine on in-memory contexts and blobs: semantics, determinism, cache and errors.

use std::collections::BTreeMap;

use lw_engine::context::{Context, FilteredContext, MemoryContext};
use lw_engine::engine::{build, BuildOptions, BuildResult, Host};
use lw_engine::events::BuildEvent;
use lw_engine::host::{MemoryBlobs, MemoryCache, NoImages};
use lw_engine::{Error, StepError};
use lw_layer::tree::FileTree;
use lw_oci::Platform;

struct Env {
    blobs: MemoryBlobs,
    cache: MemoryCache,
}

impl Env {
    fn new() -> Env {
        // The zstd encoder a host installs (the CLI: lw-zstd's libzstd), for the zstd builds.
        lw_layer::compress::set_zstd_encoder(lw_layer::compress::ZstdEncoder {
            version: lw_zstd::version(),
            frame: lw_zstd::frame,
        });
        Env {
            blobs: MemoryBlobs::default(),
            cache: MemoryCache::default(),
        }
    }

    fn build(
        &mut self,
        opts: &BuildOptions,
        ctx: &dyn Context,
    ) -> (Result<BuildResult, Error>, Vec<BuildEvent>) {
        let mut events = Vec::new();
        let mut on = |e: BuildEvent| events.push(e);
        let mut images = NoImages;
        let mut host = Host {
            context: ctx,
            blobs: &mut self.blobs,
            images: &mut images,
            run: None,
            fetch: None,
            cache: &mut self.cache,
            events: &mut on,
        };
        let r = build(opts, &mut host);
        (r, events)
    }

    fn tree(&self, r: &BuildResult) -> FileTree {
        lw_engine::engine::rootfs::tree_of(&self.blobs, &r.manifest_layers(), true).unwrap()
    }
}

trait Layers {
    fn manifest_layers(&self) -> Vec<lw_oci::Descriptor>;
}
impl Layers for BuildResult {
    fn manifest_layers(&self) -> Vec<lw_oci::Descriptor> {
        let m: lw_oci::Manifest = serde_json::from_slice(&self.manifest_bytes).unwrap();
        m.layers
    }
}

fn opts(df: &str) -> BuildOptions {
    BuildOptions::new(
        df.as_bytes().to_vec(),
        Platform::parse("linux/amd64").unwrap(),
    )
}

fn ctx(files: &[(&str, &str)]) -> MemoryContext {
    let mut c = MemoryContext::new();
    for (p, d) in files {
        let e = c.insert_file(p, d.as_bytes().to_vec()).unwrap();
        e.mtime = 1_700_000_000;
    }
    c
}

fn data(t: &FileTree, p: &str) -> String {
    String::from_utf8(
        t.get(p)
            .unwrap_or_else(|| panic!("{p} missing"))
            .data
            .clone()
            .unwrap(),
    )
    .unwrap()
}

const APP: &str = "\
# syntax=docker/dockerfile:1
ARG BASE=scratch
FROM ${BASE} AS builder
ARG GREETING=hello
COPY src/ /src/
COPY <<EOF /src/generated.txt
${GREETING} from a heredoc
EOF

FROM builder AS unused
COPY a.txt /never

FROM scratch
ARG BASE
ARG VERSION=1.0
ENV APP_VERSION=$VERSION APP_HOME=/app
WORKDIR $APP_HOME
COPY --from=builder /src/ ./
COPY --chown=1000:1000 --chmod=0640 a.txt b.txt ./conf/
LABEL org.opencontainers.image.version=$VERSION base=${BASE:-none}
EXPOSE 8080 53/udp
USER 1000
VOLUME /data
SHELL [\"/bin/sh\", \"-ec\"]
HEALTHCHECK --interval=30s --retries=3 CMD wget -q -O- localhost:8080
STOPSIGNAL SIGTERM
ONBUILD COPY a.txt /onbuild-a.txt
ENTRYPOINT [\"/app/run\"]
CMD run --port 8080
";

fn app_ctx() -> MemoryContext {
    ctx(&[
        ("a.txt", "A\n"),
        ("b.txt", "B\n"),
        ("src/main.c", "int main(){}\n"),
        ("src/lib/x.h", "#define X\n"),
    ])
}

#[test]
fn semantics_of_every_metadata_instruction_and_multi_stage_copy() {
    let mut env = Env::new();
    let (r, events) = env.build(&opts(APP), &app_ctx());
    let r = r.unwrap();
    let c = &r.config.config;
    assert_eq!(
        c.env.as_ref().unwrap(),
        &vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "APP_VERSION=1.0".into(),
            "APP_HOME=/app".into()
        ]
    );
    assert_eq!(c.working_dir.as_deref(), Some("/app"));
    assert_eq!(c.user.as_deref(), Some("1000"));
    let labels = c.labels.as_ref().unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], "1.0");
    assert_eq!(
        labels["base"], "scratch",
        "a global ARG redeclared without a value takes the global value"
    );
    assert_eq!(
        c.exposed_ports.as_ref().unwrap().keys().collect::<Vec<_>>(),
        ["53/udp", "8080/tcp"]
    );
    assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(
        c.shell.as_ref().unwrap(),
        &vec!["/bin/sh".to_string(), "-ec".into()]
    );
    let hc = c.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test.as_ref().unwrap(),
        &vec!["CMD-SHELL".to_string(), "wget -q -O- localhost:8080".into()]
    );
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(
        c.on_build.as_ref().unwrap(),
        &vec!["COPY a.txt /onbuild-a.txt".to_string()]
    );
    assert_eq!(
        c.entrypoint.as_ref().unwrap(),
        &vec!["/app/run".to_string()]
    );
    assert_eq!(
        c.cmd.as_ref().unwrap(),
        &vec![
            "/bin/sh".to_string(),
            "-ec".into(),
            "run --port 8080".into()
        ],
        "shell-form CMD goes through SHELL"
    );
    assert_eq!(r.config.architecture, "amd64");
    assert_eq!(r.config.created.as_deref(), Some("1970-01-01T00:00:00Z"));

    // History: BuildKit's texts; empty_layer for metadata steps.
    let hist: Vec<(&str, bool)> = r
        .config
        .history
        .iter()
        .map(|h| (h.created_by.as_deref().unwrap(), h.empty_layer))
        .collect();
    assert!(
        hist.contains(&("ENV APP_VERSION=1.0 APP_HOME=/app", true)),
        "{hist:?}"
    );
    assert!(
        // BuildKit's COPY history leaves out --from (tests/buildkit/cases/copy_from_stage).
        hist.contains(&("COPY /src/ ./ # buildkit", false)),
        "{hist:?}"
    );
    assert!(
        // The frontend's current form (tests/buildkit/cases/metadata).
        hist.contains(&("EXPOSE [53/udp 8080/tcp]", true)),
        "{hist:?}"
    );
    assert_eq!(
        r.config.history.iter().filter(|h| !h.empty_layer).count(),
        r.config.rootfs.diff_ids.len()
    );

    // Files: directory contents copied, heredoc expanded, chown/chmod applied, parents created.
    let t = env.tree(&r);
    assert_eq!(data(&t, "app/main.c"), "int main(){}\n");
    assert_eq!(data(&t, "app/lib/x.h"), "#define X\n");
    assert_eq!(data(&t, "app/generated.txt"), "hello from a heredoc\n");
    let a = &t.get("app/conf/a.txt").unwrap().entry;
    assert_eq!((a.uid, a.gid, a.mode), (1000, 1000, 0o640));
    assert_eq!(
        t.get("app/conf").unwrap().entry.uid,
        1000,
        "a directory COPY creates is owned like the copy"
    );
    assert!(t.get("never").is_none());

    // The unused stage is skipped, as BuildKit does.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, BuildEvent::StageSkipped { stage: 1, .. })),
        "{events:?}"
    );
}

#[test]
fn same_inputs_same_digest_whatever_the_mtimes() {
    let mut env = Env::new();
    let first = env.build(&opts(APP), &app_ctx()).0.unwrap();
    let mut env2 = Env::new();
    let mut touched = app_ctx();
    for p in ["a.txt", "b.txt", "src/main.c", "src/lib/x.h"] {
        touched.get_mut(p).unwrap().unwrap().mtime = 1_800_000_000;
    }
    let second = env2.build(&opts(APP), &touched).0.unwrap();
    assert_eq!(first.manifest.digest, second.manifest.digest);
    let mut o = opts("FROM scratch\nCOPY a.txt /\n");
    o.source_date_epoch = 0;
    let at_zero = Env::new().build(&o, &ctx(&[("a.txt", "A\n")])).0.unwrap();
    let mut o2 = o.clone();
    o2.source_date_epoch = 1_700_000_000;
    let later = Env::new().build(&o2, &ctx(&[("a.txt", "A\n")])).0.unwrap();
    assert_ne!(
        at_zero.manifest.digest, later.manifest.digest,
        "the epoch is part of the image"
    );
    assert_eq!(
        later.config.created.as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
}

fn finished(events: &[BuildEvent]) -> Vec<(usize, bool, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::StepFinished {
                line,
                cached,
                layer,
                ..
            } => Some((*line, *cached, layer.is_some())),
            _ => None,
        })
        .collect()
}

#[test]
fn cache_reruns_only_the_changed_step_and_its_dependents() {
    let df = "FROM scratch\nCOPY a.txt /a\nCOPY b.txt /b\n";
    let mut env = Env::new();
    let (r1, _) = env.build(&opts(df), &ctx(&[("a.txt", "1"), ("b.txt", "2")]));
    let (r2, ev2) = env.build(&opts(df), &ctx(&[("a.txt", "1"), ("b.txt", "2")]));
    assert_eq!(r1.unwrap().manifest.digest, r2.unwrap().manifest.digest);
    let layer_steps: Vec<_> = finished(&ev2).into_iter().filter(|s| s.2).collect();
    assert_eq!(layer_steps, [(2, true, true), (3, true, true)]);
    let (_, ev3) = env.build(&opts(df), &ctx(&[("a.txt", "1"), ("b.txt", "changed")]));
    let layer_steps: Vec<_> = finished(&ev3).into_iter().filter(|s| s.2).collect();
    assert_eq!(
        layer_steps,
        [(2, true, true), (3, false, true)],
        "only the edited COPY reruns"
    );
    let (_, ev4) = env.build(
        &opts(df),
        &ctx(&[("a.txt", "edited"), ("b.txt", "changed")]),
    );
    let layer_steps: Vec<_> = finished(&ev4).into_iter().filter(|s| s.2).collect();
    assert_eq!(
        layer_steps,
        [(2, false, true), (3, false, true)],
        "a change reruns later steps too"
    );
    let mut nc = opts(df);
    nc.no_cache = true;
    let (_, ev5) = env.build(&nc, &ctx(&[("a.txt", "edited"), ("b.txt", "changed")]));
    assert!(
        finished(&ev5).iter().all(|s| !s.1),
        "--no-cache bypasses the cache"
    );
}

#[test]
fn zstd_builds_write_zstd_layers_with_the_same_diff_ids_and_never_reuse_gzip_ones() {
    use lw_layer::compress::LayerFormat;
    let df = "FROM scratch\nCOPY a.txt /a\nWORKDIR /w\nCOPY b.txt /b\n";
    let files = [("a.txt", "alpha\n"), ("b.txt", "bravo\n")];
    let mut env = Env::new();
    let (gz, _) = env.build(&opts(df), &ctx(&files));
    let gz = gz.unwrap();
    let mut zo = opts(df);
    zo.layer_format = LayerFormat::parse("zstd", None).unwrap();
    let (zs, ev) = env.build(&zo, &ctx(&files));
    let zs = zs.unwrap();
    assert!(
        finished(&ev).iter().filter(|s| s.2).all(|s| !s.1),
        "no gzip layer is taken from the cache for a zstd build"
    );
    assert_eq!(gz.config.rootfs.diff_ids, zs.config.rootfs.diff_ids);
    let (gl, zl) = (gz.manifest_layers(), zs.manifest_layers());
    assert_eq!(zl.len(), 3);
    for (g, z) in gl.iter().zip(&zl) {
        assert_eq!(g.media_type, lw_oci::media::OCI_LAYER_GZIP);
        assert_eq!(z.media_type, lw_oci::media::OCI_LAYER_ZSTD);
        assert_ne!(g.digest, z.digest);
    }
    assert_eq!(data(&env.tree(&zs), "b"), "bravo\n");
    // The zstd build is cached in its turn, and another level is another key.
    let (again, ev) = env.build(&zo, &ctx(&files));
    assert_eq!(again.unwrap().manifest.digest, zs.manifest.digest);
    assert!(finished(&ev).iter().filter(|s| s.2).all(|s| s.1));
    zo.layer_format = LayerFormat::parse("zstd", Some("9")).unwrap();
    let (z9, ev) = env.build(&zo, &ctx(&files));
    assert!(finished(&ev).iter().filter(|s| s.2).all(|s| !s.1));
    assert_eq!(
        z9.unwrap().config.rootfs.diff_ids,
        gz.config.rootfs.diff_ids
    );
}

/// A context that counts the bytes read from it, with the digests a stat cache would know.
struct Counting<'a>(
    &'a MemoryContext,
    std::cell::Cell<u64>,
    std::cell::RefCell<BTreeMap<String, lw_oci::Digest>>,
);
impl Context for Counting<'_> {
    fn entries(&self) -> Result<Vec<lw_engine::context::ContextEntry>, Error> {
        self.0.entries()
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.0.read_at(path, offset, buf)?;
        self.1.set(self.1.get() + n as u64);
        Ok(n)
    }
    fn known_digest(&self, path: &str) -> Option<lw_oci::Digest> {
        self.2.borrow().get(path).cloned()
    }
    fn digest_computed(&self, path: &str, digest: &lw_oci::Digest) {
        self.2.borrow_mut().insert(path.into(), digest.clone());
    }
}

#[test]
fn a_rebuild_after_an_edit_reads_only_from_the_last_unchanged_member_and_matches_a_cold_build() {
    use lw_layer::compress::LayerFormat;
    let files: Vec<(String, String)> = (0..48)
        .map(|i| {
            let text = format!("file {i} says {} ", i * 7919 % 1000).repeat(9000);
            (format!("d{}/f{i:02}", i % 3), text)
        })
        .collect();
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let make = |edit: Option<usize>| {
        let mut c = MemoryContext::new();
        for (i, (p, d)) in files.iter().enumerate() {
            let mut d = d.clone().into_bytes();
            if edit == Some(i) {
                d[500] ^= 1;
            }
            c.insert_file(p, d).unwrap().mtime = 1_700_000_000;
        }
        c
    };
    for format in [LayerFormat::GZIP, LayerFormat::parse("zstd", None).unwrap()] {
        let mut o = opts("FROM scratch\nCOPY . /data/\n");
        o.layer_format = format;
        let mut env = Env::new();
        env.build(&o, &make(None)).0.unwrap();
        // Items are in path order: d2/f47 is the last file, d0/f00 the first. The edited file is read twice (for
        // the step's key, then for the layer); an edit in the first file reads everything once more.
        for (edit, most) in [(47, total / 4), (0, total + total / 20)] {
            let edited = make(Some(edit));
            // Every file but the edited one has a known digest, as the CLI's stat cache gives them.
            let known = files
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != edit)
                .map(|(_, (p, d))| (p.clone(), lw_oci::Digest::sha256_of(d.as_bytes())))
                .collect();
            let counting = Counting(&edited, Default::default(), std::cell::RefCell::new(known));
            let (r, _) = env.build(&o, &counting);
            let r = r.unwrap();
            let (cold, _) = Env::new().build(&o, &make(Some(edit)));
            assert_eq!(
                r.manifest.digest,
                cold.unwrap().manifest.digest,
                "{format}, edit {edit}"
            );
            assert!(
                counting.1.get() < most,
                "{format}, edit {edit}: read {} of {total} bytes",
                counting.1.get()
            );
        }
    }
}

#[test]
fn onbuild_triggers_run_in_a_child_build_and_build_args_override() {
    let df = "FROM scratch AS parent\nONBUILD COPY a.txt /from-trigger\n\nFROM parent\nARG WHO=default\nLABEL who=$WHO\n";
    let mut env = Env::new();
    let mut o = opts(df);
    o.build_args = BTreeMap::from([("WHO".to_string(), "cli".to_string())]);
    let r = env.build(&o, &ctx(&[("a.txt", "trigger")])).0.unwrap();
    assert_eq!(data(&env.tree(&r), "from-trigger"), "trigger");
    assert!(
        r.config.config.on_build.is_none(),
        "triggers are consumed by the child"
    );
    assert_eq!(r.config.config.labels.as_ref().unwrap()["who"], "cli");
    let mut t = opts(df);
    t.target = Some("PARENT".into());
    let r = env.build(&t, &ctx(&[("a.txt", "trigger")])).0.unwrap();
    assert_eq!(r.config.config.on_build.as_ref().unwrap().len(), 1);
}

#[test]
fn dockerignore_hides_files_from_copy() {
    let mut c = ctx(&[
        ("keep.txt", "k"),
        ("secret.env", "s"),
        ("logs/a.log", "l"),
        ("logs/keep.log", "k"),
    ]);
    c.insert_file(".dockerignore", b"*.env\nlogs\n!logs/keep.log\n".to_vec())
        .unwrap();
    let f = FilteredContext::from_ignore_file(c, Some("Dockerfile")).unwrap();
    let mut env = Env::new();
    let r = env
        .build(&opts("FROM scratch\nCOPY . /ctx/\n"), &f)
        .0
        .unwrap();
    let t = env.tree(&r);
    let paths: Vec<&str> = t.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        paths.contains(&"ctx/keep.txt") && paths.contains(&"ctx/logs/keep.log"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"ctx/secret.env") && !paths.contains(&"ctx/logs/a.log"),
        "{paths:?}"
    );
    let (r, _) = env.build(&opts("FROM scratch\nCOPY secret.env /\n"), &f);
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("excluded by .dockerignore"));
}

#[test]
fn bad_input_names_the_line_and_cause() {
    let cases: &[(&str, &str)] = &[
        (
            "FROM scratch\nFORM x\n",
            "Dockerfile:2:1: unknown instruction: FORM",
        ),
        (
            "FROM scratch\n\nCOPY missing.txt /\n",
            "Dockerfile:3: COPY failed: \"missing.txt\" not found",
        ),
        (
            "FROM scratch\nCOPY ../outside /\n",
            "Dockerfile:2: COPY ../outside: forbidden path outside the build context",
        ),
        (
            "FROM scratch\nCOPY --chmod=999 a.txt /\n",
            "Dockerfile:2: COPY: invalid --chmod value",
        ),
        (
            "FROM scratch\nCOPY a.txt a.txt /notadir\n",
            "Dockerfile:2: When using COPY with more than one source file",
        ),
        (
            "FROM scratch\nRUN echo hi\n",
            "Dockerfile:2: RUN echo hi: RUN needs an executor",
        ),
        (
            "FROM scratch\nCOPY --chown=nobody a.txt /\n",
            "Dockerfile:2: COPY: unable to find user nobody",
        ),
        ("FROM scratch\nCOPY a.txt ${UNCLOSED\n", "Dockerfile:2:"),
        (
            "FROM scratch\nARG F=missing.txt\nCOPY $F /\n",
            "Dockerfile:3: COPY failed: \"missing.txt\" (written \"$F\") not found",
        ),
        (
            "FROM scratch\nADD --checksum=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 a.txt /\n",
            "Dockerfile:2: ADD --checksum a.txt: checksum requires HTTP(S) or Git sources",
        ),
        (
            // BuildKit makes the destination's parents: a file in the way is an error.
            "FROM scratch\nCOPY a.txt /f\nCOPY a.txt /f/x\n",
            "Dockerfile:3: COPY failed: mkdir /f: not a directory",
        ),
        (
            "FROM scratch\nCOPY a.txt /f\nCOPY a.txt /f/\n",
            "Dockerfile:3: COPY failed: mkdir /f: not a directory",
        ),
        (
            // Deliberate divergence: BuildKit silently maps an unknown group to 0.
            "FROM scratch\nCOPY --chown=:nogroup a.txt /\n",
            "Dockerfile:2: COPY: unable to find group nogroup",
        ),
    ];
    for (df, want) in cases {
        let (r, _) = Env::new().build(&opts(df), &ctx(&[("a.txt", "A")]));
        let e = r.expect_err(df).to_string();
        assert!(
            e.starts_with(want),
            "{df:?}: got {e:?}, want prefix {want:?}"
        );
    }
    let mut o = opts("FROM scratch AS a\n");
    o.target = Some("nope".into());
    let e = Env::new().build(&o, &ctx(&[])).0.unwrap_err().to_string();
    assert_eq!(e, "Dockerfile:1: target stage \"nope\" could not be found");
}

#[test]
fn step_errors_carry_a_kind() {
    let kind = |df: &str| match Env::new().build(&opts(df), &ctx(&[])).0 {
        Err(Error::Step { line, kind, .. }) => (line, kind),
        other => panic!("{df:?}: {other:?}"),
    };
    let (line, k) = kind("FROM scratch\nEXPOSE 80/foo\n");
    assert_eq!(line, 2);
    assert!(
        matches!(&k, StepError::ExposeProto { word, proto } if word == "80/foo" && proto == "foo"),
        "{k:?}"
    );
    let (line, k) = kind("FROM scratch\nLABEL a=1\nVOLUME \"\"\n");
    assert_eq!(line, 3);
    assert!(matches!(k, StepError::EmptyVolume), "{k:?}");
    let (_, k) = kind("FROM scratch\nENV A=${B:?unset}\n");
    assert!(
        matches!(&k, StepError::Expansion(m) if m.contains("unset")),
        "{k:?}"
    );
    let mut o = opts("FROM scratch AS a\n");
    o.target = Some("nope".into());
    match Env::new().build(&o, &ctx(&[])).0 {
        Err(Error::Step {
            kind: StepError::UnknownTarget(t),
            ..
        }) => assert_eq!(t, "nope"),
        other => panic!("{other:?}"),
    }
}

/// A context whose host knows file digests (like the native stat cache) and counts the reads.
struct KnownDigests {
    inner: MemoryContext,
    known: std::cell::RefCell<BTreeMap<String, lw_oci::Digest>>,
    reads: std::cell::Cell<usize>,
}

impl Context for KnownDigests {
    fn entries(&self) -> Result<Vec<lw_engine::context::ContextEntry>, Error> {
        self.inner.entries()
    }
    fn read_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_at(path, offset, buf)
    }
    fn known_digest(&self, path: &str) -> Option<lw_oci::Digest> {
        self.known.borrow().get(path).cloned()
    }
    fn digest_computed(&self, path: &str, digest: &lw_oci::Digest) {
        self.known
            .borrow_mut()
            .insert(path.to_string(), digest.clone());
    }
}

fn copy_keys(events: &[BuildEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::StepFinished {
                cache_key,
                cached,
                layer: Some(_),
                ..
            } => Some((cache_key.clone(), *cached)),
            _ => None,
        })
        .collect()
}

#[test]
fn known_file_digests_replace_reading_and_give_the_same_keys() {
    let files = [
        ("a.txt", "alpha"),
        ("d/b.txt", "beta"),
        ("d/c.bin", "gamma"),
    ];
    let df = "FROM scratch\nCOPY . /data/\n";
    let kd = KnownDigests {
        inner: ctx(&files),
        known: Default::default(),
        reads: Default::default(),
    };
    // Reference: a plain context, hashed by the engine.
    let mut plain_env = Env::new();
    let (plain, plain_ev) = plain_env.build(&opts(df), &ctx(&files));
    let plain = plain.unwrap();

    // First build: every file is read (for the key, then for the layer) and its digest reported.
    let mut env = Env::new();
    let (r1, ev1) = env.build(&opts(df), &kd);
    assert_eq!(r1.unwrap().manifest, plain.manifest);
    assert_eq!(copy_keys(&ev1), copy_keys(&plain_ev));
    assert_eq!(
        kd.reads.get(),
        9,
        "hashing reads to the end (2 calls a file), the layer 1 call a file"
    );
    for (p, d) in files {
        assert_eq!(
            kd.known.borrow()[p],
            lw_oci::Digest::sha256_of(d.as_bytes()),
            "{p}"
        );
    }
    // Rebuild: the key comes from the known digests alone, and the step is cached: nothing is read.
    kd.reads.set(0);
    let (r2, ev2) = env.build(&opts(df), &kd);
    assert_eq!(r2.unwrap().manifest, plain.manifest);
    assert_eq!(kd.reads.get(), 0);
    assert_eq!(copy_keys(&ev2).len(), 1);
    assert!(copy_keys(&ev2).iter().all(|(_, cached)| *cached));
    assert_eq!(copy_keys(&ev2)[0].0, copy_keys(&plain_ev)[0].0);

    // --no-cache: each file is read once, the layer and its key are the same.
    let fresh = KnownDigests {
        inner: ctx(&files),
        known: Default::default(),
        reads: Default::default(),
    };
    let mut o = opts(df);
    o.no_cache = true;
    let (r3, ev3) = Env::new().build(&o, &fresh);
    assert_eq!(r3.unwrap().manifest, plain.manifest);
    assert_eq!(fresh.reads.get(), 3);
    assert_eq!(copy_keys(&ev3)[0].0, copy_keys(&plain_ev)[0].0);
    assert_eq!(fresh.known.borrow().len(), 3);

    // The known digest is what counts: a different one is a different key (so a stale cache must never answer).
    kd.known
        .borrow_mut()
        .insert("a.txt".into(), lw_oci::Digest::sha256_of(b"other"));
    let (_, ev4) = env.build(&opts(df), &kd);
    assert_ne!(copy_keys(&ev4)[0].0, copy_keys(&plain_ev)[0].0);

    // --no-cache with known digests: the layer is the same, and the key comes from the known digests (the wrong
    // one for a.txt shows it was not hashed again).
    let (r5, ev5) = Env::new().build(&o, &kd);
    assert_eq!(r5.unwrap().manifest, plain.manifest);
    assert_eq!(copy_keys(&ev5)[0].0, copy_keys(&ev4)[0].0);
}

#[test]
fn a_memory_context_keeps_host_digests_until_the_file_changes() {
    let mut c = ctx(&[("a.txt", "alpha"), ("d/b.txt", "beta")]);
    let d = lw_oci::Digest::sha256_of(b"alpha");
    c.set_known_digest("a.txt", d.clone()).unwrap();
    c.set_known_digest("./d/b.txt", lw_oci::Digest::sha256_of(b"beta"))
        .unwrap();
    assert!(c.set_known_digest("d", d.clone()).is_err(), "not a file");
    assert!(c.set_known_digest("missing", d.clone()).is_err());
    assert_eq!(c.known_digest("a.txt"), Some(d.clone()));
    assert!(c.known_digest("d/b.txt").is_some());
    // Replaced, edited in place, or removed with its directory: the digest is forgotten.
    c.insert_file("a.txt", b"changed".to_vec()).unwrap();
    assert_eq!(c.known_digest("a.txt"), None);
    c.set_known_digest("a.txt", d.clone()).unwrap();
    c.get_mut("a.txt").unwrap();
    assert_eq!(c.known_digest("a.txt"), None);
    c.remove("d").unwrap();
    assert_eq!(c.known_digest("d/b.txt"), None);
}
