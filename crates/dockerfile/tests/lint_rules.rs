//! Every lint rule: a Dockerfile that triggers it and one that does not; then every
//! machine-applicable fix is applied and the file re-linted to show the finding is gone.

use lw_dockerfile::lint::{apply_fixes, lint, LintOptions, RULES};

struct Case {
    rule: &'static str,
    bad: &'static str,
    good: &'static str,
    /// The message the bad example must produce (checked when not empty).
    message: &'static str,
    opts: fn() -> LintOptions,
}

fn none() -> LintOptions {
    LintOptions::default()
}

fn ignore_tmp() -> LintOptions {
    LintOptions {
        dockerignore: Some("# junk\ntmp/*\n*.log\n".into()),
        ..LintOptions::default()
    }
}

fn no_ignore_file() -> LintOptions {
    LintOptions {
        context_has_dockerignore: Some(false),
        ..LintOptions::default()
    }
}

fn python_env() -> LintOptions {
    let mut o = LintOptions::default();
    o.base_images.insert(
        "myorg/python".into(),
        lw_dockerfile::lint::BaseImage::from_config(&["PYTHON_VERSION=3.13".into()], None, None),
    );
    o
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { rule: "StageNameCasing", bad: "FROM alpine AS BuilderBase\n", good: "FROM alpine AS builder-base\n", message: "Stage name 'BuilderBase' should be lowercase", opts: none },
    Case { rule: "FromAsCasing", bad: "FROM debian:latest as builder\n", good: "FROM debian:latest AS deb-builder\nfrom debian:latest as deb2\n", message: "'as' and 'FROM' keywords' casing do not match", opts: none },
    Case { rule: "NoEmptyContinuation", bad: "FROM alpine\nEXPOSE \\\n\n80\n", good: "FROM alpine\nEXPOSE \\\n# Port\n80\n", message: "Empty continuation line", opts: none },
    Case { rule: "ConsistentInstructionCasing", bad: "From alpine\nRun echo hello > /greeting.txt\nEntRYpOiNT [\"cat\", \"/greeting.txt\"]\n", good: "ARG X=1\nfrom alpine\nrun echo hello > /greeting.txt\nentrypoint [\"cat\", \"/greeting.txt\"]\n", message: "Command 'From' should match the case of the command majority (uppercase)", opts: none },
    Case { rule: "DuplicateStageName", bad: "FROM debian:latest AS builder\nRUN apt-get update; apt-get install -y curl\nFROM golang:latest AS builder\n", good: "FROM debian:latest AS deb-builder\nFROM golang:latest AS go-builder\n", message: "Duplicate stage name \"builder\", stage names should be unique", opts: none },
    Case { rule: "ReservedStageName", bad: "FROM alpine AS scratch\nFROM alpine AS context\n", good: "FROM alpine AS builder\n", message: "Stage name should not use the same name as reserved stage \"scratch\"", opts: none },
    Case { rule: "JSONArgsRecommended", bad: "FROM alpine\nENTRYPOINT my-program start\n", good: "FROM alpine\nENTRYPOINT [\"my-program\", \"start\"]\nFROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT my-program start\n", message: "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals", opts: none },
    Case { rule: "MaintainerDeprecated", bad: "FROM alpine\nMAINTAINER moby@example.com\n", good: "FROM alpine\nLABEL org.opencontainers.image.authors=\"moby@example.com\"\n", message: "Maintainer instruction is deprecated in favor of using label", opts: none },
    Case { rule: "UndefinedArgInFrom", bad: "FROM node:22${VARIANT} AS jsbuilder\n", good: "ARG VARIANT=\"-alpine3.20\"\nFROM node:22${VARIANT} AS jsbuilder\nFROM --platform=$BUILDPLATFORM alpine\n", message: "FROM argument 'VARIANT' is not declared", opts: none },
    Case { rule: "WorkdirRelativePath", bad: "FROM nginx AS web\nWORKDIR usr/share/nginx/html\nCOPY public .\n", good: "FROM nginx AS web\nWORKDIR /usr/share/nginx/html\nWORKDIR sub\nCOPY public .\nFROM web\nWORKDIR rel\n", message: "Relative workdir \"usr/share/nginx/html\" can have unexpected results if the base image changes", opts: none },
    Case { rule: "UndefinedVar", bad: "FROM alpine AS base\nCOPY $foo .\n", good: "FROM alpine AS base\nARG foo\nCOPY $foo .\nENV PATH=$PATH:/app\nRUN echo $undefined_in_shell\n", message: "Usage of undefined variable '$foo'", opts: none },
    Case { rule: "UndefinedVar", bad: "FROM alpine\nENV PATH=$PAHT:/app/bin\n", good: "FROM myorg/python AS base\nARG VERSION=$PYTHON_VERSION\n", message: "Usage of undefined variable '$PAHT' (did you mean $PATH?)", opts: python_env },
    Case { rule: "MultipleInstructionsDisallowed", bad: "FROM alpine\nENTRYPOINT [\"echo\", \"Hello, Norway!\"]\nENTRYPOINT [\"echo\", \"Hello, Sweden!\"]\n", good: "FROM python:alpine\nHEALTHCHECK --interval=1s --timeout=3s \\\n  CMD [\"curl\", \"-f\", \"http://localhost:8080\"]\nCMD [\"python\", \"-m\", \"http.server\", \"8080\"]\n", message: "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used", opts: none },
    Case { rule: "LegacyKeyValueFormat", bad: "FROM alpine\nENV DEPS curl git make\n", good: "FROM alpine\nENV DEPS=\"curl git make\"\nARG foo=bar\n", message: "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format", opts: none },
    Case { rule: "RedundantTargetPlatform", bad: "FROM --platform=$TARGETPLATFORM alpine AS builder\n", good: "FROM alpine AS builder\nFROM --platform=$BUILDPLATFORM alpine AS b2\n", message: "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", opts: none },
    Case { rule: "SecretsUsedInArgOrEnv", bad: "FROM alpine\nARG AWS_SECRET_ACCESS_KEY\n", good: "FROM alpine\nARG PUBLIC_KEY\nENV KEY_FILE=/run/key\nARG TOKENIZER=x\n", message: "Do not use ARG or ENV instructions for sensitive data (ARG \"AWS_SECRET_ACCESS_KEY\")", opts: none },
    Case { rule: "InvalidDefaultArgInFrom", bad: "ARG TAG\nFROM busybox:${TAG}\n", good: "ARG TAG=latest\nFROM busybox:${TAG}\nARG VARIANT\nFROM busybox:stable${VARIANT}\nARG T2\nFROM alpine:${T2:-3.14}\n", message: "Default value for ARG busybox:${TAG} results in empty or invalid base image name", opts: none },
    Case { rule: "FromPlatformFlagConstDisallowed", bad: "FROM --platform=linux/amd64 alpine AS base\n", good: "FROM --platform=${BUILDPLATFORM} alpine AS base\nFROM --platform=linux/arm64 alpine AS build_arm64\n", message: "FROM --platform flag should not use constant value \"linux/amd64\"", opts: none },
    Case { rule: "CopyIgnoredFile", bad: "FROM scratch\nCOPY ./tmp/helloworld.txt /helloworld.txt\n", good: "FROM scratch\nCOPY ./forever/helloworld.txt /helloworld.txt\nCOPY --from=alpine /tmp/x /x\n", message: "Attempting to Copy file \"tmp/helloworld.txt\" that is excluded by .dockerignore", opts: ignore_tmp },
    Case { rule: "InvalidDefinitionDescription", bad: "# check=experimental=InvalidDefinitionDescription\n\n# a non-descriptive comment\nFROM scratch AS base\n# another non-descriptive comment\nARG VERSION=1\n", good: "# check=experimental=InvalidDefinitionDescription\n\n# base is a stage for compiling source\nFROM scratch AS base\n# VERSION This is the version number.\nARG VERSION=1\n", message: "Comment for FROM should follow the format: `# base <description>`", opts: none },
    Case { rule: "ExposeProtoCasing", bad: "FROM alpine\nEXPOSE 80/TcP\n", good: "FROM alpine\nEXPOSE 80/tcp\n", message: "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase", opts: none },
    Case { rule: "ExposeInvalidFormat", bad: "FROM alpine\nEXPOSE 127.0.0.1:80:80\n", good: "FROM alpine\nEXPOSE 80\n", message: "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'", opts: none },
    // Layerwright rules.
    Case { rule: "LW001", bad: "FROM alpine\n", good: "FROM alpine:3.20\nFROM alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nFROM scratch\n", message: "", opts: none },
    Case { rule: "LW002", bad: "FROM alpine:latest\n", good: "FROM alpine:3.20\n", message: "", opts: none },
    Case { rule: "LW003", bad: "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n", good: "FROM debian:12\nRUN apt-get update && apt-get install --no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*\n", message: "", opts: none },
    Case { rule: "LW004", bad: "FROM debian:12\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n", good: "FROM debian:12\nRUN apt-get update && apt-get install --no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*\n", message: "", opts: none },
    Case { rule: "LW005", bad: "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n", good: "FROM debian:12\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends curl \\\n && rm -rf /var/lib/apt/lists/*\n", message: "", opts: none },
    Case { rule: "LW006", bad: "FROM alpine:3.20\nRUN apk add curl\n", good: "FROM alpine:3.20\nRUN apk add --no-cache curl\n", message: "", opts: none },
    Case { rule: "LW007", bad: "FROM alpine:3.20\nADD app.py /app/\n", good: "FROM alpine:3.20\nCOPY app.py /app/\nADD rootfs.tar.gz /\nADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef https://example.com/x /x\n", message: "", opts: none },
    Case { rule: "LW008", bad: "FROM alpine:3.20\nCMD [\"echo\", \"$HOME\"]\n", good: "FROM alpine:3.20\nCMD [\"sh\", \"-c\", \"echo $HOME\"]\n", message: "", opts: none },
    Case { rule: "LW009", bad: "FROM alpine:3.20\nRUN echo hi\n", good: "FROM alpine:3.20 AS base\nUSER app\nFROM base\nRUN echo hi\n", message: "", opts: none },
    Case { rule: "LW009", bad: "FROM alpine:3.20\nUSER root\n", good: "FROM alpine:3.20\nUSER root\nRUN adduser -D app\nUSER 1000:1000\n", message: "", opts: none },
    Case { rule: "LW010", bad: "FROM alpine:3.20\nWORKDIR /app\nWORKDIR src\n", good: "FROM alpine:3.20\nWORKDIR /app\nWORKDIR /app/src\nFROM alpine:3.20\nWORKDIR rel\n", message: "", opts: none },
    Case { rule: "LW011", bad: "FROM alpine:3.20\nENV REPO_URL=https://bob:hunter2@git.example.com/x.git\n", good: "FROM alpine:3.20\nENV REPO_URL=https://git.example.com/x.git\n", message: "", opts: none },
    Case { rule: "LW012", bad: "FROM alpine:3.20\nRUN wget -O - https://example.com/x | tar xz\n", good: "FROM alpine:3.20\nRUN set -o pipefail && wget -O - https://example.com/x | tar xz\nFROM debian:12\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN wget -O - https://example.com/x | tar xz\n", message: "", opts: none },
    Case { rule: "LW013", bad: "FROM alpine:3.20\nCOPY . /app\n", good: "FROM alpine:3.20\nCOPY --from=busybox:1 /bin/true /true\n", message: "", opts: no_ignore_file },
    Case { rule: "LW014", bad: "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/* && make\n", good: "FROM debian:12 AS build\nRUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*\nFROM debian:12\nCOPY --from=build /out /out\n", message: "", opts: none },
    Case { rule: "LW015", bad: "FROM alpine:3.20\nRUN cd /src && make\n", good: "FROM alpine:3.20\nWORKDIR /src\nRUN make\n", message: "", opts: none },
    Case { rule: "LW016", bad: "FROM alpine:3.20\nRUN sudo make install\n", good: "FROM alpine:3.20\nRUN make install\n", message: "", opts: none },
    Case { rule: "LW017", bad: "FROM alpine:3.20\nRUN curl -fsSL https://example.com/install.sh | sh\n", good: "FROM alpine:3.20\nRUN curl -fsSLo /tmp/i.sh https://example.com/install.sh && sh /tmp/i.sh\n", message: "", opts: none },
    Case { rule: "LW018", bad: "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n", good: "FROM node:20\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n", message: "", opts: none },
    Case { rule: "LW019", bad: "FROM python:3.12\nRUN pip install flask\n", good: "FROM python:3.12\nRUN pip install --no-cache-dir flask\nRUN python -m pip install --no-cache-dir x\n", message: "", opts: none },
    Case { rule: "LW019", bad: "FROM python:3.12\nRUN python3 -m pip install flask\n", good: "FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n", message: "", opts: none },
    Case { rule: "LW020", bad: "FROM node:20\nRUN npm install\n", good: "FROM node:20\nRUN npm ci\nRUN npm install -g pnpm\n", message: "", opts: none },
    Case { rule: "LW021", bad: "FROM debian:12\nRUN apt-get update && apt-get install --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n", good: "FROM debian:12\nRUN apt-get update && apt-get -qq install --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n", message: "", opts: none },
    Case { rule: "LW022", bad: "FROM debian:12\nRUN apt-get update && apt-get upgrade -y\n", good: "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends curl\n", message: "", opts: none },
    Case { rule: "LW023", bad: "FROM debian:12\nRUN apt update\n", good: "FROM debian:12\nRUN apt-get update\n", message: "", opts: none },
    Case { rule: "LW024", bad: "FROM fedora:40\nRUN dnf install -y gcc\n", good: "FROM fedora:40\nRUN dnf install -y gcc && dnf clean all\n", message: "", opts: none },
    Case { rule: "LW025", bad: "FROM alpine:3.20\nEXPOSE 70000\n", good: "FROM alpine:3.20\nEXPOSE 80 443/tcp 53/udp 8000-8010\n", message: "", opts: none },
    Case { rule: "LW026", bad: "FROM alpine:3.20 AS build\nCOPY --from=build /a /b\n", good: "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /a /b\n", message: "", opts: none },
    Case { rule: "LW027", bad: "FROM alpine:3.20\nADD https://example.com/app.tar.gz /app/\n", good: "FROM alpine:3.20\nADD --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef https://example.com/app.tar.gz /app/\n", message: "", opts: none },
    Case { rule: "LW028", bad: "FROM alpine:3.20\nRUN echo a\nRUN echo b\n", good: "FROM alpine:3.20\nRUN echo a && echo b\n", message: "", opts: none },
    Case { rule: "LW029", bad: "FROM debian:13\nRUN apt-get install -y curl\n", good: "FROM debian:13\nRUN apt-get install -y curl=8.14.1-2 ./local.deb $EXTRA\n", message: "apt-get install: pin the versions of curl for reproducible builds", opts: none },
    Case { rule: "LW030", bad: "FROM alpine:3.20\nRUN apk add --no-cache curl\n", good: "FROM alpine:3.20\nRUN apk add --no-cache -t .deps curl=8.9.1-r0 'jq>1.6'\n", message: "apk add: pin the versions of curl for reproducible builds", opts: none },
    Case { rule: "LW031", bad: "FROM python:3.13\nRUN pip install --no-cache-dir -i https://pypi.example flask\n", good: "FROM python:3.13\nRUN pip install --no-cache-dir flask==3.0.3 'x>=1' -U pip==24.2 && pip install -r req.txt\n", message: "pip install: pin the versions of flask for reproducible builds", opts: none },
    Case { rule: "LW031", bad: "FROM python:3.13\nRUN pip install --no-cache-dir --upgrade pip\n", good: "FROM python:3.13\nRUN pip install --no-cache-dir --upgrade pip==24.2 git+https://github.com/a/b.git@v1.0\n", message: "pip install: pin the versions of pip for reproducible builds", opts: none },
    Case { rule: "LW032", bad: "FROM node:22\nRUN npm install -g @scope/tool\n", good: "FROM node:22\nRUN npm install -g @scope/tool@1.2.3 typescript@5\n", message: "npm install: pin the versions of @scope/tool for reproducible builds", opts: none },
    Case { rule: "LW033", bad: "FROM ruby:3.3\nRUN gem install rails\n", good: "FROM ruby:3.3\nRUN gem install rails:7.2.1 && gem install rake -v 13.2.1\n", message: "gem install: pin the versions of rails for reproducible builds", opts: none },
    Case { rule: "LW034", bad: "FROM golang:1.23\nRUN go install example.com/tool\n", good: "FROM golang:1.23\nRUN go install example.com/tool@v1.2.3 ./cmd/...\n", message: "go install: pin the versions of example.com/tool for reproducible builds", opts: none },
    Case { rule: "LW035", bad: "FROM fedora:41\nRUN dnf install -y python3-devel && dnf clean all\n", good: "FROM fedora:41\nRUN dnf install -y python3-devel-3.13.1 @development-tools && dnf clean all\n", message: "dnf install: pin the versions of python3-devel for reproducible builds", opts: none },
    Case { rule: "LW036", bad: "FROM debian:13\nRUN wget https://example.com/x\n", good: "FROM debian:13\nRUN wget -qO- https://example.com/x > x && wget -nv https://e.com/y && wget --progress=dot:giga https://e.com/z\n", message: "", opts: none },
    Case { rule: "LW037", bad: "FROM alpine:3.20 AS build\nFROM scratch\nCOPY --from=build / /\n", good: "FROM alpine:3.20 AS build\nFROM scratch\nCOPY --from=build /bin/busybox /bin/\n", message: "", opts: none },
    Case { rule: "LW038", bad: "FROM alpine:3.20\nCOPY a.txt data/\n", good: "FROM alpine:3.20\nCOPY a.txt /data/\nWORKDIR /app\nCOPY b.txt data/\n", message: "", opts: none },
    Case { rule: "LW039", bad: "FROM debian:13\nRUN wget -q https://e.com/a && curl -fsSLO https://e.com/b\n", good: "FROM debian:13\nRUN curl -fsSLO https://e.com/a && curl -fsSLO https://e.com/b\n", message: "Both wget and curl are used; one download tool is enough", opts: none },
    Case { rule: "LW040", bad: "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=biuld /x /x\n", good: "FROM alpine:3.20 AS build\nFROM alpine:3.20\nCOPY --from=build /x /x\nCOPY --from=BUILD /y /y\nCOPY --from=nginx:1.27 /z /z\n", message: "COPY --from=biuld names no stage (did you mean build?); it is pulled as the image biuld:latest", opts: none },
    Case { rule: "LW041", bad: "FROM alpine:3.20\nRUN d=$(mktemp -d) && cd $d\n", good: "FROM alpine:3.20\nRUN d=$(mktemp -d) && cd \"$d\"\n", message: "Double-quote $d to prevent word splitting and globbing", opts: none },
    Case { rule: "LW042", bad: "FROM alpine:3.20\nRUN cd /src; make\n", good: "FROM alpine:3.20\nRUN cd /src && make\n", message: "`cd /src` is followed by more commands but its failure is not checked: use `cd ... && ...` or `cd ... || exit`", opts: none },
    Case { rule: "LW043", bad: "FROM alpine:3.20\nRUN make -j $(nproc)\n", good: "FROM alpine:3.20\nRUN make -j \"$(nproc)\"\n", message: "", opts: none },
];

fn count(src: &str, rule: &str, opts: &LintOptions) -> usize {
    lint(src.as_bytes(), opts)
        .unwrap_or_else(|e| panic!("lint failed on {src:?}: {e}"))
        .iter()
        .filter(|f| f.rule == rule)
        .count()
}

#[test]
fn every_rule_fires_and_passes() {
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let opts = (c.opts)();
        let findings = lint(c.bad.as_bytes(), &opts).unwrap();
        let hits: Vec<_> = findings.iter().filter(|f| f.rule == c.rule).collect();
        if hits.is_empty() {
            failures.push(format!(
                "case {i} {}: bad example did not fire; got {:?}",
                c.rule,
                findings.iter().map(|f| &f.rule).collect::<Vec<_>>()
            ));
        } else if !c.message.is_empty() && !hits.iter().any(|f| f.message == c.message) {
            failures.push(format!(
                "case {i} {}: message {:?}, want {:?}",
                c.rule, hits[0].message, c.message
            ));
        }
        let n = count(c.good, c.rule, &opts);
        if n != 0 {
            failures.push(format!(
                "case {i} {}: good example fired {n} time(s)",
                c.rule
            ));
        }
    }
    // Every rule in the table has at least one case.
    for r in RULES {
        if !CASES.iter().any(|c| c.rule == r.id) {
            failures.push(format!("rule {} has no test case", r.id));
        }
    }
    println!(
        "lint rule cases: {}/{} passed",
        CASES.len() * 2 - failures.len().min(CASES.len() * 2),
        CASES.len() * 2
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn documentation_and_severity() {
    let f = lint(b"FROM alpine AS Foo\n", &LintOptions::default()).unwrap();
    let s = f.iter().find(|f| f.rule == "StageNameCasing").unwrap();
    assert_eq!(
        s.documentation,
        "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/"
    );
    assert_eq!(s.range.start_line, 1);
    let lw = f.iter().find(|f| f.rule == "LW001").unwrap();
    assert!(!lw.documentation.starts_with("http"));
    assert_eq!(RULES.iter().filter(|r| !r.id.starts_with("LW")).count(), 21);
    assert!(RULES.iter().filter(|r| r.id.starts_with("LW")).count() >= 20);
}

#[test]
fn fixes_remove_their_findings() {
    let mut fixed_rules = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for c in CASES {
        let opts = (c.opts)();
        let findings = lint(c.bad.as_bytes(), &opts).unwrap();
        let with_fix: Vec<_> = findings
            .into_iter()
            .filter(|f| f.rule == c.rule && f.fix.is_some())
            .collect();
        if with_fix.is_empty() {
            continue;
        }
        let out = apply_fixes(c.bad.as_bytes(), &with_fix);
        let text = String::from_utf8(out).unwrap();
        match lint(text.as_bytes(), &opts) {
            Ok(after) => {
                if after.iter().any(|f| f.rule == c.rule) {
                    failures.push(format!("{}: still fires after fix:\n{text}", c.rule));
                } else {
                    fixed_rules.insert(c.rule);
                }
            }
            Err(e) => failures.push(format!(
                "{}: fixed text does not parse ({e}):\n{text}",
                c.rule
            )),
        }
    }
    println!(
        "fixes verified for {} rules: {:?}",
        fixed_rules.len(),
        fixed_rules
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        fixed_rules.len() >= 15,
        "only {} rules have working fixes",
        fixed_rules.len()
    );
}

#[test]
fn fix_text_examples() {
    let src = "FROM debian:12\nRUN apt-get update && apt-get install curl\n";
    let f = lint(src.as_bytes(), &LintOptions::default()).unwrap();
    let out = String::from_utf8(apply_fixes(src.as_bytes(), &f)).unwrap();
    assert_eq!(
        out,
        "FROM debian:12\nRUN apt-get update && apt-get install --no-install-recommends -y curl && rm -rf /var/lib/apt/lists/*\n"
    );
    let src = "from alpine:3 AS Build\nRUN echo\nMAINTAINER Jo <jo@x.y>\n";
    let f = lint(src.as_bytes(), &LintOptions::default()).unwrap();
    let out = String::from_utf8(apply_fixes(src.as_bytes(), &f)).unwrap();
    assert!(
        out.contains("org.opencontainers.image.authors=\"Jo <jo@x.y>\""),
        "{out}"
    );
}

#[test]
fn stage_rename_fix_updates_references() {
    let src =
        "FROM alpine:3 AS Builder\nFROM Builder AS final\nCOPY --from=Builder /a /b\nUSER app\n";
    let f = lint(src.as_bytes(), &LintOptions::default()).unwrap();
    let fixes: Vec<_> = f
        .into_iter()
        .filter(|f| f.rule == "StageNameCasing")
        .collect();
    let out = String::from_utf8(apply_fixes(src.as_bytes(), &fixes)).unwrap();
    assert_eq!(
        out,
        "FROM alpine:3 AS builder\nFROM builder AS final\nCOPY --from=builder /a /b\nUSER app\n"
    );
    let after = lint(out.as_bytes(), &LintOptions::default()).unwrap();
    assert!(
        after
            .iter()
            .all(|f| f.rule != "StageNameCasing" && f.rule != "InvalidDefaultArgInFrom"),
        "{after:?}"
    );
}

#[test]
fn pin_fix_uses_the_store_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut opts = LintOptions::default();
    opts.base_images.insert(
        "myorg/base".into(),
        lw_dockerfile::lint::BaseImage::default().with_digest(&digest),
    );
    let src = "FROM myorg/base\nUSER app\n";
    let f = lint(src.as_bytes(), &opts).unwrap();
    let pin = f.iter().find(|f| f.rule == "LW001").unwrap();
    let out = String::from_utf8(apply_fixes(src.as_bytes(), std::slice::from_ref(pin))).unwrap();
    assert_eq!(out, format!("FROM myorg/base@{digest}\nUSER app\n"));
    // Pinned, the finding is gone.
    let again = lint(out.as_bytes(), &opts).unwrap();
    assert!(!again.iter().any(|f| f.rule == "LW001"), "{again:?}");
    // Without a digest (or a base the store does not hold) there is nothing to pin to.
    let f = lint(src.as_bytes(), &LintOptions::default()).unwrap();
    assert!(f.iter().find(|f| f.rule == "LW001").unwrap().fix.is_none());
}
