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
        manifest_digest: "sha256:c5b5143eaba6b7041b41684a6246955dfd668122e4414a5233c810834bff98be",
        tarball_sha256: "e2d9b9edcbe5e2dedabbe8003f909d5bf7e87bc50fcd063c58ba497a23f4165c",
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
        manifest_digest: "sha256:889ece7a8b8414cf50198ce0087e028bdd261250e7a2ad667264a8e624a9244e",
        tarball_sha256: "8eae1bc824239885b6766ecc65083e70ca8277951fb72f5ac3b92f6f2a68d491",
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
        manifest_digest: "sha256:06c14dadf0a43b147c8437eb4db3020e07783d0dd0ea03df095a6fbd482c086e",
        tarball_sha256: "4efe0178502e87822a0cad5cd6ac434d85ce0e0b778522df7a401668e3befa86",
    },
];
