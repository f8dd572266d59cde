//! Typed instructions (`instructions::parse`): success and failure cases for every
//! instruction, with BuildKit's messages (frontend/dockerfile/instructions/parse.go).

use lw_dockerfile::instructions::{self, Instruction, MountType};
use lw_dockerfile::{parser, Error};

fn one(src: &str) -> Result<Instruction, Error> {
    let df = parser::parse(src.as_bytes()).expect("parses");
    instructions::parse_instruction(&df.children[0])
}

fn ok(src: &str) -> Instruction {
    one(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
}

#[track_caller]
fn err(src: &str) -> String {
    match one(src) {
        Ok(i) => panic!("{src:?} parsed: {i:?}"),
        Err(Error::Parse { message, .. }) => message,
        Err(e) => panic!("{e:?}"),
    }
}

fn err_pos(src: &str) -> (usize, usize, String) {
    match one(src) {
        Err(Error::Parse {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exactly_one_argument() {
    for cmd in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        assert_eq!(err(cmd), format!("{cmd} requires exactly one argument"));
    }
    // Shell-form values keep the whole rest of the line as one argument.
    assert!(matches!(ok("WORKDIR /a b"), Instruction::Workdir(w) if w.path == "/a b"));
}

#[test]
fn at_least_one_argument() {
    for cmd in [
        "ENV",
        "LABEL",
        "ONBUILD",
        "HEALTHCHECK",
        "EXPOSE",
        "VOLUME",
        "ARG",
        "SHELL",
    ] {
        assert_eq!(
            err(cmd),
            format!("{cmd} requires at least one argument"),
            "{cmd}"
        );
    }
}

#[test]
fn no_destination() {
    for cmd in ["ADD", "COPY"] {
        assert_eq!(
            err(&format!("{cmd} arg1")),
            format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
        );
    }
    assert!(
        err("COPY\t\n\t\tquux \\\n      bar").starts_with("COPY requires at least two arguments")
    );
}

#[test]
fn unknown_instruction() {
    assert_eq!(
        err("FOO bar"),
        "unknown instruction: FOO (did you mean FROM?)"
    );
    assert_eq!(
        err("foo bar"),
        "unknown instruction: foo (did you mean from?)"
    );
    assert_eq!(err("BOGUS bar"), "unknown instruction: BOGUS");
    assert_eq!(
        err("FORM alpine"),
        "unknown instruction: FORM (did you mean FROM?)"
    );
    assert_eq!(
        err("form alpine"),
        "unknown instruction: form (did you mean from?)"
    );
    let (line, col, _) = err_pos("  FORM b");
    let df = parser::parse(b"FROM a\n\n   FORM b").unwrap();
    let e = instructions::parse(&df).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Parse {
                line: 3,
                column: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!((line, col), (1, 3));
}

#[test]
fn flag_errors() {
    assert_eq!(
        err("MAINTAINER --boo joe@example.com"),
        "unknown flag: --boo"
    );
    assert_eq!(
        err("COPY --form=a b c"),
        "unknown flag: --form (did you mean from?)"
    );
    assert_eq!(
        err("COPY --from=a --from=b x y"),
        "duplicate flag specified: --from"
    );
    assert_eq!(err("COPY --from x y"), "missing a value on flag: --from");
    assert_eq!(err("COPY --link= x y"), "missing a value on flag: --link");
    assert_eq!(
        err("COPY --link=maybe x y"),
        "expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(err("ENV --x a=b"), "unknown flag: --x");
    assert_eq!(err("CMD --x a"), "unknown flag: --x");
    // Column of the offending flag.
    let (line, col, msg) = err_pos("COPY --chown=1 \\\n  --bogus=2 a b");
    assert_eq!((line, col, msg.as_str()), (2, 3, "unknown flag: --bogus"));
    // Upstream does not check flags of ARG, STOPSIGNAL and HEALTHCHECK NONE.
    ok("ARG --whatever x");
    ok("STOPSIGNAL --whatever SIGTERM");
    ok("HEALTHCHECK --whatever NONE");
}

#[test]
fn from() {
    let Instruction::From(f) = ok("FROM --platform=linux/arm64 alpine:3 AS Build") else {
        panic!()
    };
    assert_eq!(
        (f.base_name.as_str(), f.name.as_str(), f.platform.as_str()),
        ("alpine:3", "build", "linux/arm64")
    );
    let Instruction::From(f) = ok("from scratch") else {
        panic!()
    };
    assert_eq!((f.name.as_str(), f.platform.as_str()), ("", ""));
    assert_eq!(f.source.keyword, "from");
    assert_eq!(f.source.code, "from scratch");
    assert_eq!(
        err("FROM a b"),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS"),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a is b"),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS 1x"),
        "invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM a AS b$c"),
        "invalid name for build stage: \"b$c\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM --plaform=x a"),
        "unknown flag: --plaform (did you mean platform?)"
    );
    assert_eq!(
        err("FROM --platform a"),
        "missing a value on flag: --platform"
    );
    // Stage names: [a-z][a-z0-9-_.]*
    ok("FROM a AS x-1_2.3");
}

#[test]
fn run() {
    let Instruction::Run(r) = ok("RUN echo hi && ls") else {
        panic!()
    };
    assert_eq!(r.command.cmd_line, vec!["echo hi && ls"]);
    assert!(r.command.prepend_shell);
    assert_eq!(
        (r.network.as_str(), r.security.as_str()),
        ("default", "sandbox")
    );

    let Instruction::Run(r) = ok(r#"RUN ["sh", "-c", "x"]"#) else {
        panic!()
    };
    assert_eq!(r.command.cmd_line, vec!["sh", "-c", "x"]);
    assert!(!r.command.prepend_shell);

    let Instruction::Run(r) = ok(
        "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none --security=insecure --device=/dev/fuse make",
    ) else {
        panic!()
    };
    assert_eq!(
        r.mounts,
        vec!["type=cache,target=/root/.cache", "type=secret,id=x"]
    );
    assert_eq!(
        (r.network.as_str(), r.security.as_str()),
        ("none", "insecure")
    );
    assert_eq!(r.devices[0].name, "/dev/fuse");
    assert_eq!(r.flags_used, vec!["mount", "network", "security", "device"]);
    let m =
        instructions::parse_mount(&r.mounts[0], Some(&mut |s: &str| Ok(s.to_string()))).unwrap();
    assert_eq!(
        (m.mount_type, m.target.as_str()),
        (MountType::Cache, "/root/.cache")
    );

    assert_eq!(
        err("RUN --network=bridge x"),
        "invalid network mode \"bridge\""
    );
    assert_eq!(err("RUN --network= x"), "invalid network mode \"\"");
    assert_eq!(
        err("RUN --security=root x"),
        "security \"root\" is not valid"
    );
    assert_eq!(err("RUN --mount x"), "missing a value on flag: --mount");
    assert_eq!(
        err("RUN --mount=from=$X,target=/x x"),
        "'from' doesn't support variable expansion, define alias stage instead"
    );
    assert_eq!(err("RUN --mount='\"a\"b' x"), "failed to parse csv mounts: parse error on line 1, column 3: extraneous or missing \" in quoted-field");
    assert_eq!(
        err("RUN --device=a,b x"),
        "invalid field 'b' must be a key=value pair"
    );
    assert_eq!(
        err("RUN --mont=type=bind x"),
        "unknown flag: --mont (did you mean mount?)"
    );
    // Mount keys are only validated once values can be expanded.
    ok("RUN --mount=type=${T},target=/x x");

    // Heredocs become inline files.
    let Instruction::Run(r) = ok("RUN <<EOF\necho hi\nEOF\n") else {
        panic!()
    };
    assert_eq!(r.command.cmd_line, vec!["<<EOF"]);
    assert_eq!(r.command.files.len(), 1);
    assert_eq!(r.command.files[0].name, "EOF");
    assert_eq!(r.command.files[0].data, b"echo hi\n");
}

#[test]
fn cmd_entrypoint_shell() {
    let Instruction::Cmd(c) = ok(r#"CMD ["a", "b"]"#) else {
        panic!()
    };
    assert_eq!(c.command.cmd_line, vec!["a", "b"]);
    let Instruction::Cmd(c) = ok("CMD") else {
        panic!()
    };
    assert!(c.command.cmd_line.is_empty());
    let Instruction::Entrypoint(e) = ok("ENTRYPOINT /bin/sh -c") else {
        panic!()
    };
    assert_eq!(e.command.cmd_line, vec!["/bin/sh -c"]);
    assert!(e.command.prepend_shell);
    let Instruction::Entrypoint(e) = ok("ENTRYPOINT []") else {
        panic!()
    };
    assert!(e.command.cmd_line.is_empty());

    let Instruction::Shell(s) = ok(r#"SHELL ["powershell", "-command"]"#) else {
        panic!()
    };
    assert_eq!(s.shell, vec!["powershell", "-command"]);
    assert_eq!(
        err("SHELL powershell -command"),
        "SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(err("SHELL []"), "SHELL requires at least one argument");
}

#[test]
fn env_label() {
    let Instruction::Env(e) = ok("ENV a=1 b=\"two words\" c=") else {
        panic!()
    };
    let pairs: Vec<_> = e
        .env
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str(), p.no_delim))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("a", "1", false),
            ("b", "\"two words\"", false),
            ("c", "", false)
        ]
    );
    let Instruction::Env(e) = ok("ENV PATH /usr/bin:$PATH") else {
        panic!()
    };
    assert_eq!(
        (
            e.env[0].key.as_str(),
            e.env[0].value.as_str(),
            e.env[0].no_delim
        ),
        ("PATH", "/usr/bin:$PATH", true)
    );
    assert_eq!(err("ENV =x"), "ENV names can not be blank");
    assert_eq!(err("LABEL =x"), "LABEL names can not be blank");

    let Instruction::Label(l) = ok("LABEL org.opencontainers.image.title=\"x y\" version=1") else {
        panic!()
    };
    assert_eq!(l.labels.len(), 2);
    assert_eq!(l.labels[0].key, "org.opencontainers.image.title");

    // The parser itself rejects these.
    assert!(parser::parse(b"ENV x").is_err());
    assert!(parser::parse(b"LABEL a=b c").is_err());
}

#[test]
fn arg() {
    let Instruction::Arg(a) = ok("ARG a b=2 c=") else {
        panic!()
    };
    let defs: Vec<_> = a
        .args
        .iter()
        .map(|d| (d.key.as_str(), d.value.as_deref()))
        .collect();
    assert_eq!(defs, vec![("a", None), ("b", Some("2")), ("c", Some(""))]);
    assert_eq!(err("ARG =x"), "ARG names can not be blank");
    // Doc comments.
    let df = parser::parse(b"# foo sets foo\nARG foo=bar\nFROM x\n").unwrap();
    let (stages, meta) = instructions::parse_stages(&df).unwrap();
    assert_eq!(meta[0].args[0].doc_comment, "sets foo");
    assert_eq!(stages.len(), 1);
}

#[test]
fn expose_volume_user_workdir_stopsignal_maintainer() {
    let Instruction::Expose(e) = ok("EXPOSE 8080 443/tcp 80") else {
        panic!()
    };
    assert_eq!(e.ports, vec!["443/tcp", "80", "8080"]);
    let Instruction::Volume(v) = ok(r#"VOLUME ["/a", "/b"]"#) else {
        panic!()
    };
    assert_eq!(v.volumes, vec!["/a", "/b"]);
    assert_eq!(
        err(r#"VOLUME ["/a", " "]"#),
        "VOLUME specified can not be an empty string"
    );
    let Instruction::User(u) = ok("USER app:app") else {
        panic!()
    };
    assert_eq!(u.user, "app:app");
    let Instruction::StopSignal(s) = ok("STOPSIGNAL SIGKILL") else {
        panic!()
    };
    assert_eq!(s.signal, "SIGKILL");
    let Instruction::Maintainer(m) = ok("MAINTAINER me <me@example.com>") else {
        panic!()
    };
    assert_eq!(m.maintainer, "me <me@example.com>");
    assert_eq!(err("USER --x=1 a"), "unknown flag: --x");
    assert_eq!(err("EXPOSE --x=1 80"), "unknown flag: --x");
}

#[test]
fn healthcheck() {
    let Instruction::Healthcheck(h) = ok("HEALTHCHECK NONE") else {
        panic!()
    };
    assert_eq!(h.health.test, vec!["NONE"]);
    let Instruction::Healthcheck(h) =
        ok("HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=1.5s --retries=3 CMD curl -f http://x/")
    else {
        panic!()
    };
    assert_eq!(h.health.test, vec!["CMD-SHELL", "curl -f http://x/"]);
    assert_eq!(h.health.interval, 5_000_000_000);
    assert_eq!(h.health.timeout, 3_000_000_000);
    assert_eq!(h.health.start_period, 60_000_000_000);
    assert_eq!(h.health.start_interval, 1_500_000_000);
    assert_eq!(h.health.retries, 3);
    let Instruction::Healthcheck(h) = ok(r#"HEALTHCHECK cmd ["true"]"#) else {
        panic!()
    };
    assert_eq!(h.health.test, vec!["CMD", "true"]);
    let Instruction::Healthcheck(h) = ok("HEALTHCHECK --interval=0s CMD x") else {
        panic!()
    };
    assert_eq!(h.health.interval, 0);

    assert_eq!(
        err("HEALTHCHECK NONE x"),
        "HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        err("HEALTHCHECK CMD"),
        "Missing command after HEALTHCHECK CMD"
    );
    assert_eq!(
        err("HEALTHCHECK CONNECT TCP 7000"),
        "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        err("HEALTHCHECK --interval=50ns CMD x"),
        "Interval \"interval\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK --timeout=-1s CMD x"),
        "Interval \"timeout\" cannot be less than 1ms"
    );
    assert_eq!(
        err("HEALTHCHECK --timeout=5 CMD x"),
        "time: missing unit in duration \"5\""
    );
    assert_eq!(
        err("HEALTHCHECK --retries=-1 CMD x"),
        "--retries cannot be negative (-1)"
    );
    assert_eq!(
        err("HEALTHCHECK --retries=x CMD x"),
        "strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        err("HEALTHCHECK --retries=9999999999 CMD x"),
        "strconv.ParseInt: parsing \"9999999999\": value out of range"
    );
    assert_eq!(
        err("HEALTHCHECK --interval CMD x"),
        "missing a value on flag: --interval"
    );
    assert_eq!(err("HEALTHCHECK --foo=1 CMD x"), "unknown flag: --foo");
}

#[test]
fn onbuild() {
    let Instruction::Onbuild(o) = ok("ONBUILD RUN echo hi") else {
        panic!()
    };
    assert_eq!(
        (o.trigger.as_str(), o.expression.as_str()),
        ("RUN", "RUN echo hi")
    );
    let Instruction::Onbuild(o) = ok("  onbuild   copy a b") else {
        panic!()
    };
    assert_eq!(
        (o.trigger.as_str(), o.expression.as_str()),
        ("COPY", "copy a b")
    );
    // Unknown triggers are only rejected when the trigger runs.
    ok("ONBUILD FOO bar");
    assert_eq!(
        err("ONBUILD ONBUILD RUN touch foobar"),
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        err("ONBUILD FROM scratch"),
        "FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        err("ONBUILD maintainer me"),
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(err("ONBUILD --x RUN a"), "unknown flag: --x");
    let Instruction::Onbuild(o) = ok("ONBUILD RUN <<EOF\nhello\nEOF\n") else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\nhello\nEOF");
}

#[test]
fn copy() {
    let Instruction::Copy(c) =
        ok("COPY --from=build --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=.git a b /dst/")
    else {
        panic!()
    };
    assert_eq!(c.files.source_paths, vec!["a", "b"]);
    assert_eq!(c.files.dest, "/dst/");
    assert_eq!(
        (c.from.as_str(), c.chown.as_str(), c.chmod.as_str()),
        ("build", "1:2", "755")
    );
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, vec!["*.md", ".git"]);
    let Instruction::Copy(c) = ok(r#"COPY ["a b", "/c d"]"#) else {
        panic!()
    };
    assert_eq!(
        (c.files.source_paths[0].as_str(), c.files.dest.as_str()),
        ("a b", "/c d")
    );
    let Instruction::Copy(c) = ok("COPY --link=false a b") else {
        panic!()
    };
    assert!(!c.link);

    let Instruction::Copy(c) = ok("COPY <<A <<-B /dest/\nhello\nA\n\tindented\n\tB\n") else {
        panic!()
    };
    assert!(c.files.source_paths.is_empty());
    assert_eq!(c.files.source_contents.len(), 2);
    assert_eq!(c.files.source_contents[0].path, "A");
    assert_eq!(c.files.source_contents[0].data, b"hello\n");
    assert_eq!(c.files.source_contents[1].data, b"indented\n");
    let Instruction::Copy(c) = ok("COPY <<'X' /f\n$HOME\nX\n") else {
        panic!()
    };
    assert!(!c.files.source_contents[0].expand);

    assert_eq!(
        err("COPY a <<EOF\nx\nEOF\n"),
        "COPY cannot accept a heredoc as a destination"
    );
    assert_eq!(
        err("COPY --checksum=sha256:x a b"),
        "unknown flag: --checksum"
    );
    assert_eq!(
        err("COPY --keep-git-dir a b"),
        "unknown flag: --keep-git-dir"
    );
}

#[test]
fn add() {
    let Instruction::Add(a) = ok(
        "ADD --chown=a --chmod=644 --link --keep-git-dir=true --checksum=sha256:abc --unpack=false --exclude=x https://e/x.tgz /d",
    ) else {
        panic!()
    };
    assert_eq!(a.files.source_paths, vec!["https://e/x.tgz"]);
    assert_eq!((a.keep_git_dir, a.unpack), (Some(true), Some(false)));
    assert_eq!(a.checksum, "sha256:abc");
    assert!(a.link);
    let Instruction::Add(a) = ok("ADD a b") else {
        panic!()
    };
    assert_eq!((a.keep_git_dir, a.unpack), (None, None));
    assert_eq!(err("ADD --from=x a b"), "unknown flag: --from");
    assert_eq!(err("ADD --parents a b"), "unknown flag: --parents");
    assert_eq!(
        err("ADD --unpack=yes a b"),
        "expecting boolean value for flag --unpack, not: yes"
    );
}

#[test]
fn stages() {
    let df =
        parser::parse(b"ARG V=1\nFROM a AS one\nRUN x\nFROM one\nCOPY --from=one / /\n").unwrap();
    let (stages, meta) = instructions::parse_stages(&df).unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].from.name, "one");
    assert_eq!(stages[0].commands.len(), 1);
    assert_eq!(stages[1].commands[0].name(), "COPY");

    let df = parser::parse(b"RUN x\nFROM a\n").unwrap();
    let e = instructions::parse_stages(&df).unwrap_err();
    assert!(
        matches!(e, Error::Parse { ref message, line: 1, .. } if message == "no build stage in current context")
    );

    let all = instructions::parse(&parser::parse(b"FROM a\nRUN b \\\n  c\n").unwrap()).unwrap();
    assert_eq!(all[1].span().start.line, 2);
    assert_eq!(all[1].span().end.line, 3);
    assert_eq!(all[1].source().code, "RUN b   c");
}
