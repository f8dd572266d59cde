//! Same-digest cases: Dockerfiles and contexts whose image built in wasm32 (lw-wasm's `build`) and by the native
//! `layerwright build` CLI must have these manifest digests, and whose `exportTarball` / `layerwright save` tar
//! must hash to these sha256 values. Pure data: native-cli/tests/wasm_golden.rs includes this file by path.
//! When an intended engine change moves these values, both tests print the new ones: update them here together.

/// One case: context files (path, bytes; `Dockerfile` is one of them), the tag, the build args, the goldens.
pub struct GoldenCase {
    pub name: &'static str,
    pub files: &'static [(&'static str, &'static [u8])],
    pub tag: &'static str,
    pub build_args: &'static [(&'static str, &'static str)],
    /// The layers' compression (`--compression`, the tab's `compression` option); `None`: gzip, the default.
    pub compression: Option<&'static str>,
    pub manifest_digest: &'static str,
    pub tarball_sha256: &'static str,
}

/// The platform every case is built for.
pub const PLATFORM: &str = "linux/amd64";

pub const CASES: &[GoldenCase] = &[
    GoldenCase {
        name: "multi-stage",
        files: &[
            (
                "Dockerfile",
                b"FROM scratch AS base\nCOPY a.txt /a.txt\nCOPY dir/ /dir/\n\nFROM scratch\nCOPY --from=base /a.txt /copied.txt\nCOPY --from=base /dir /d\nCOPY b.txt /\nENV X=1\nWORKDIR /app\nCMD [\"/bin/sh\"]\n",
            ),
            ("a.txt", b"alpha\n"),
            ("b.txt", b"bravo\n"),
            ("dir/one", b"1\n"),
            ("dir/sub/two", b"22\n"),
        ],
        tag: "golden/multi:1",
        build_args: &[],
        compression: None,
        manifest_digest: "sha256:455f80ce51e6df73e7924ab725980ef829a7c3a1a9f8adf2a8910b78ae6ce306",
        tarball_sha256: "c5aa70fd70474bc30f1dd253af2b79503c367266a3dc2b3ac02278ff649432ac",
    },
    GoldenCase {
        name: "dockerignore",
        files: &[
            ("Dockerfile", b"FROM scratch\nCOPY . /src/\nLABEL org.example=yes\n"),
            (".dockerignore", b"*.log\nsecret/\n!keep.log\n"),
            ("app.log", b"noise\n"),
            ("keep.log", b"kept\n"),
            ("secret/key", b"hunter2\n"),
            ("main.txt", b"main\n"),
        ],
        tag: "golden/ignore:latest",
        build_args: &[],
        compression: None,
        manifest_digest: "sha256:92af8b8efe660ff4bc2fdeaea5dd29139a6482b178324374dd671a6eefec63ef",
        tarball_sha256: "21546608d99120be8e3f365bb6a2a3b35ac3d5447ca784691bb1af01eb1de1c7",
    },
    GoldenCase {
        name: "args-chmod",
        files: &[
            (
                "Dockerfile",
                b"ARG BASE=scratch\nFROM ${BASE}\nARG V=1\nCOPY --chmod=755 run.sh /bin/run-${V}.sh\nENV V=${V}\nENTRYPOINT [\"/bin/run.sh\"]\n",
            ),
            ("run.sh", b"#!/bin/sh\necho hi\n"),
        ],
        tag: "golden/args:v2",
        build_args: &[("V", "2")],
        compression: None,
        manifest_digest: "sha256:a5c9a2122977afe1d7f57b63df3602d6fcaaf81a419fa96813a305ee3aa8beb1",
        tarball_sha256: "3c8d02ff77049fc69836fd5bdf68bccbbbfcf39cdb7697d1111e98b26dc45561",
    },
    GoldenCase {
        name: "zstd",
        files: &[
            (
                "Dockerfile",
                b"FROM scratch AS base\nCOPY a.txt /a.txt\n\nFROM scratch\nCOPY --from=base /a.txt /copied.txt\nCOPY dir/ /dir/\nWORKDIR /app\nCMD [\"/bin/sh\"]\n",
            ),
            ("a.txt", b"alpha alpha alpha alpha alpha alpha alpha alpha\n"),
            ("dir/one", b"1\n"),
            ("dir/sub/two", b"22\n"),
        ],
        tag: "golden/zstd:1",
        build_args: &[],
        compression: Some("zstd"),
        manifest_digest: "sha256:0fd9aa153317987fb271d41955b42ccf988cd3eb0c064b905e49c75c3689c8f5",
        tarball_sha256: "c12fc4fce856b32557e625facff35f708a462446545a355ff883f6fc8b4da70c",
    },
];
