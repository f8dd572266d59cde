//! The BuildKit corpus cases a tab build can take (FROM scratch, no RUN, plain files), with what BuildKit built
//! for each (`expected.json`); listed by build.rs from native-cli/tests/buildkit/cases.

/// One case: the Dockerfile, the context files, build flags and BuildKit's recorded result (JSON).
pub struct CorpusCase {
    pub name: &'static str,
    pub dockerfile: &'static str,
    pub files: &'static [(&'static str, &'static [u8])],
    pub build_args: &'static [(&'static str, &'static str)],
    pub target: Option<&'static str>,
    pub expected: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/buildkit_cases.rs"));
