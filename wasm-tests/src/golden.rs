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
        manifest_digest: "sha256:2eb136c47b3f7fafbf61b6f4f525f821477661f7390a373dee9af0e71d4741c2",
        tarball_sha256: "62043c8e02a63bd16da10821d8f11d14bffb359ea7bde572800812b921ea96a5",
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
        manifest_digest: "sha256:152d5328e5e1f777ce78054c9c2abb28c351a50fa708e2bea747151b345e781e",
        tarball_sha256: "a761e7c31fd443c34b44b541be76be137ecd0cecb51780f49fc821dc2dc9f8b8",
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
        manifest_digest: "sha256:97f57fba9168355bb087fc62edfc252224db3f6fd740660680836a1e90671341",
        tarball_sha256: "53b224b46819bddc536f196caa5979b68aa7c372b28686cbbe9a1ddf5380e95d",
    },
];
