//! The rule table: ids, names, default severities and documentation of every rule.

use super::Severity;

/// Static facts about one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// `StageNameCasing` or `LW004`.
    pub id: &'static str,
    /// Readable name (same as `id` for BuildKit rules).
    pub name: &'static str,
    pub severity: Severity,
    /// Off unless enabled with `# check=experimental=`.
    pub experimental: bool,
    /// URL (BuildKit) or one-line explanation (ours).
    pub doc: &'static str,
    /// BuildKit's short description.
    pub description: &'static str,
}

const fn bk(id: &'static str, doc: &'static str, description: &'static str) -> RuleInfo {
    RuleInfo {
        id,
        name: id,
        severity: Severity::Warning,
        experimental: false,
        doc,
        description,
    }
}

const fn lw(
    id: &'static str,
    name: &'static str,
    severity: Severity,
    doc: &'static str,
) -> RuleInfo {
    RuleInfo {
        id,
        name,
        severity,
        experimental: false,
        doc,
        description: doc,
    }
}

use Severity::{Error as E, Info as I, Warning as W};

/// Every rule, BuildKit's first.
#[rustfmt::skip]
pub const RULES: &[RuleInfo] = &[
    bk("StageNameCasing", "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/", "Stage names should be lowercase"),
    bk("FromAsCasing", "https://docs.docker.com/go/dockerfile/rule/from-as-casing/", "The 'as' keyword should match the case of the 'from' keyword"),
    bk("NoEmptyContinuation", "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/", "Empty continuation lines will become errors in a future release"),
    bk("ConsistentInstructionCasing", "https://docs.docker.com/go/dockerfile/rule/consistent-instruction-casing/", "All commands within the Dockerfile should use the same casing (either upper or lower)"),
    bk("DuplicateStageName", "https://docs.docker.com/go/dockerfile/rule/duplicate-stage-name/", "Stage names should be unique"),
    bk("ReservedStageName", "https://docs.docker.com/go/dockerfile/rule/reserved-stage-name/", "Reserved words should not be used as stage names"),
    bk("JSONArgsRecommended", "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals"),
    bk("MaintainerDeprecated", "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/", "The MAINTAINER instruction is deprecated, use a label instead to define an image author"),
    bk("UndefinedArgInFrom", "https://docs.docker.com/go/dockerfile/rule/undefined-arg-in-from/", "FROM command must use declared ARGs"),
    bk("WorkdirRelativePath", "https://docs.docker.com/go/dockerfile/rule/workdir-relative-path/", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes"),
    bk("UndefinedVar", "https://docs.docker.com/go/dockerfile/rule/undefined-var/", "Variables should be defined before their use"),
    bk("MultipleInstructionsDisallowed", "https://docs.docker.com/go/dockerfile/rule/multiple-instructions-disallowed/", "Multiple instructions of the same type should not be used in the same stage"),
    bk("LegacyKeyValueFormat", "https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/", "Legacy key/value format with whitespace separator should not be used"),
    bk("RedundantTargetPlatform", "https://docs.docker.com/go/dockerfile/rule/redundant-target-platform/", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"),
    bk("SecretsUsedInArgOrEnv", "https://docs.docker.com/go/dockerfile/rule/secrets-used-in-arg-or-env/", "Sensitive data should not be used in the ARG or ENV commands"),
    bk("InvalidDefaultArgInFrom", "https://docs.docker.com/go/dockerfile/rule/invalid-default-arg-in-from/", "Default value for global ARG results in an empty or invalid base image name"),
    bk("FromPlatformFlagConstDisallowed", "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/", "FROM --platform flag should not use a constant value"),
    bk("CopyIgnoredFile", "https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/", "Attempting to Copy file that is excluded by .dockerignore"),
    RuleInfo {
        experimental: true,
        ..bk("InvalidDefinitionDescription", "https://docs.docker.com/go/dockerfile/rule/invalid-definition-description/", "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.")
    },
    bk("ExposeProtoCasing", "https://docs.docker.com/go/dockerfile/rule/expose-proto-casing/", "Protocol in EXPOSE instruction should be lowercase"),
    bk("ExposeInvalidFormat", "https://docs.docker.com/go/dockerfile/rule/expose-invalid-format/", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release"),
    lw("LW001", "base-image-untagged", W, "Pin the base image to a tag (or digest): an untagged image means `latest`, which changes under you."),
    lw("LW002", "base-image-latest", W, "Avoid the `latest` tag: pin a specific version so builds are reproducible."),
    lw("LW003", "apt-get-update-alone", W, "Run `apt-get update` in the same RUN as `apt-get install`, or a cached stale index is reused."),
    lw("LW004", "apt-no-install-recommends", I, "Use `apt-get install --no-install-recommends` to avoid pulling unneeded packages."),
    lw("LW005", "apt-lists-not-cleaned", I, "Remove /var/lib/apt/lists/* in the same RUN as the install so the index does not bloat the layer."),
    lw("LW006", "apk-no-cache", I, "Use `apk add --no-cache` so the package index is not stored in the layer."),
    lw("LW007", "add-local-files", W, "Use COPY for local files; ADD is only needed for URLs and auto-extracted archives."),
    lw("LW008", "exec-form-variable", W, "Exec-form arguments are not processed by a shell: `$VAR` stays literal."),
    lw("LW009", "final-stage-root", W, "The image runs as root: add a USER with an unprivileged user to the final stage."),
    lw("LW010", "workdir-relative", I, "Use absolute WORKDIR paths: a relative one depends on the previous WORKDIR."),
    lw("LW011", "secret-in-value", E, "A credential appears in an ARG/ENV/LABEL value: it would be stored in the image; use secret mounts."),
    lw("LW012", "pipefail", W, "A pipe hides failures of all but its last command: use `set -o pipefail &&` or `SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]`."),
    lw("LW013", "missing-dockerignore", I, "Add a .dockerignore so that local junk (.git, node_modules, secrets) is not sent to the build."),
    lw("LW014", "build-tools-in-final-stage", I, "Compilers and build tools in the final image add size and attack surface: build in a separate stage and COPY --from it."),
    lw("LW015", "cd-in-run", W, "Use WORKDIR instead of `cd` in RUN: it is clearer and persists across instructions."),
    lw("LW016", "sudo-in-run", W, "Do not use sudo: RUN already runs as the current USER; switch with USER instead."),
    lw("LW017", "curl-pipe-shell", W, "Piping a download into a shell runs unverified code: download, verify a checksum, then run."),
    lw("LW018", "copy-all-before-install", I, "Copy dependency manifests and install before `COPY . .` so code edits do not invalidate the install layer cache."),
    lw("LW019", "pip-no-cache-dir", I, "Use `pip install --no-cache-dir` so pip's download cache is not stored in the layer."),
    lw("LW020", "npm-ci", I, "Use `npm ci` in images: it installs exactly the lockfile and fails when it is out of date."),
    lw("LW021", "apt-get-assume-yes", W, "`apt-get install` needs `-y` in a non-interactive build."),
    lw("LW022", "package-upgrade", I, "Avoid upgrading all packages in the image; use an updated base image instead, for reproducible builds."),
    lw("LW023", "apt-not-apt-get", W, "`apt` has no stable CLI for scripts; use `apt-get` (or `apt-cache`)."),
    lw("LW024", "yum-clean", I, "Run `yum clean all` / `dnf clean all` in the same RUN as the install to keep the layer small."),
    lw("LW025", "expose-port-range", E, "EXPOSE takes port numbers from 1 to 65535, optionally with /tcp, /udp or /sctp."),
    lw("LW026", "copy-from-self", E, "COPY --from cannot refer to the stage it is in."),
    lw("LW027", "add-url-checksum", I, "ADD of a URL without --checksum trusts whatever the server returns."),
    lw("LW028", "consecutive-run", I, "Consecutive RUN instructions each create a layer; consider combining them with &&."),
    lw("LW029", "apt-pin", I, "Pin apt package versions (`pkg=1.2-3`) for reproducible builds, or accept that the base image's archive decides."),
    lw("LW030", "apk-pin", I, "Pin apk package versions (`pkg=1.2-r0`) for reproducible builds."),
    lw("LW031", "pip-pin", I, "Pin pip package versions (`pkg==1.2`) or install from a requirements or constraints file."),
    lw("LW032", "npm-pin", I, "Pin npm package versions (`pkg@1.2.3`) for reproducible builds."),
    lw("LW033", "gem-pin", I, "Pin gem versions (`gem install pkg:1.2` or `-v 1.2`) for reproducible builds."),
    lw("LW034", "go-install-pin", I, "Pin `go install` to a version (`pkg@v1.2.3`); `@latest` is at least explicit."),
    lw("LW035", "rpm-pin", I, "Pin dnf/yum package versions (`pkg-1.2`) for reproducible builds."),
    lw("LW036", "wget-progress", I, "wget's progress bar floods the build log: use `--progress=dot:giga`, `-q` or `-nv`."),
    lw("LW037", "copy-whole-filesystem", I, "COPY --from=stage / copies everything, build tools and caches included: copy only what the image needs."),
    lw("LW038", "copy-relative-no-workdir", W, "COPY to a relative path without WORKDIR depends on the base image's working directory: set WORKDIR first."),
    lw("LW039", "wget-and-curl", I, "Using both wget and curl installs two tools that do the same job: pick one."),
    lw("LW040", "copy-from-undefined", W, "COPY --from names no stage of this Dockerfile, so it is pulled as an image: check the stage name."),
    lw("LW041", "shell-unquoted-variable", I, "An unquoted `$VAR` in RUN is split into words and globbed: double-quote it (ShellCheck SC2086)."),
    lw("LW042", "shell-cd-unchecked", W, "A `cd` followed by more commands with `;` lets them run in the wrong directory when it fails: use `cd dir && ...` or `cd dir || exit` (ShellCheck SC2164)."),
    lw("LW043", "shell-unquoted-substitution", I, "An unquoted `$(...)` in RUN is split into words and globbed: double-quote it (ShellCheck SC2046)."),
];

/// hadolint's codes for our rules and BuildKit's, so `# hadolint ignore=DL3008` and
/// ignore lists that name hadolint codes keep working.
#[rustfmt::skip]
pub const HADOLINT: &[(&str, &[&str])] = &[
    ("MaintainerDeprecated", &["DL4000"]),
    ("DuplicateStageName", &["DL3024"]),
    ("JSONArgsRecommended", &["DL3025"]),
    ("MultipleInstructionsDisallowed", &["DL4003", "DL4004"]),
    ("LW001", &["DL3006"]),
    ("LW002", &["DL3007"]),
    ("LW004", &["DL3015"]),
    ("LW005", &["DL3009"]),
    ("LW006", &["DL3019"]),
    ("LW007", &["DL3020"]),
    ("LW009", &["DL3002"]),
    ("LW010", &["DL3000"]),
    ("LW012", &["DL4006"]),
    ("LW015", &["DL3003"]),
    ("LW016", &["DL3004"]),
    ("LW019", &["DL3042"]),
    ("LW021", &["DL3014"]),
    ("LW022", &["DL3005"]),
    ("LW023", &["DL3027"]),
    ("LW024", &["DL3032", "DL3040"]),
    ("LW025", &["DL3011"]),
    ("LW026", &["DL3023"]),
    ("LW028", &["DL3059"]),
    ("LW029", &["DL3008"]),
    ("LW030", &["DL3018"]),
    ("LW031", &["DL3013"]),
    ("LW032", &["DL3016"]),
    ("LW033", &["DL3028"]),
    ("LW034", &["DL3062"]),
    ("LW035", &["DL3041", "DL3033"]),
    ("LW036", &["DL3047"]),
    ("LW037", &["DL3067"]),
    ("LW038", &["DL3045"]),
    ("LW039", &["DL4001"]),
    ("LW040", &["DL3022"]),
    ("LW041", &["SC2086"]),
    ("LW042", &["SC2164"]),
    ("LW043", &["SC2046"]),
];

/// The hadolint codes a rule stands for (empty when hadolint has none).
pub fn hadolint_codes(id: &str) -> &'static [&'static str] {
    HADOLINT
        .iter()
        .find(|(r, _)| r.eq_ignore_ascii_case(id))
        .map_or(&[], |(_, c)| c)
}

/// Our rule (or BuildKit's) for a hadolint code.
pub fn rule_for_hadolint(code: &str) -> Option<&'static str> {
    HADOLINT
        .iter()
        .find(|(_, c)| c.iter().any(|x| x.eq_ignore_ascii_case(code)))
        .map(|(r, _)| *r)
}

/// The rule with this id (case-insensitive).
pub fn rule_info(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}
