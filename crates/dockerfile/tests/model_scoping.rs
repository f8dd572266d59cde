//! The semantic model: ARG scoping, ENV persistence and inheritance, predefined platform
//! and proxy ARGs, build args, expansion per instruction, the stage graph and targets.

use lw_dockerfile::model::{BaseRef, DepKind, Model, ModelOptions, Platform, VarKind};
use lw_dockerfile::parser::parse;
use lw_dockerfile::shell::Env;
use lw_dockerfile::Error;

fn model(src: &str, opts: &ModelOptions) -> Model {
    Model::build(&parse(src.as_bytes()).unwrap(), opts).unwrap()
}

#[test]
fn global_args_need_redeclaring() {
    let src = "ARG VERSION=1.0\nARG BASE=alpine\nFROM ${BASE}:3\nRUN echo\nCOPY a-$VERSION /x\nARG VERSION\nCOPY b-$VERSION /y\n";
    let m = model(src, &ModelOptions::default());
    let st = &m.stages[0];
    assert_eq!(st.base_name, "alpine:3");
    assert_eq!(st.base, BaseRef::Image("alpine:3".into()));
    let copy1 = &st.instructions[1];
    assert_eq!(copy1.words, ["a-", "/x"]);
    assert_eq!(copy1.unmatched, ["VERSION"]);
    let copy2 = &st.instructions[3];
    assert_eq!(copy2.words, ["b-1.0", "/y"]);
    // Values at the cursor.
    assert_eq!(m.scope_at(5).get("VERSION"), None);
    assert_eq!(m.scope_at(7).get("VERSION"), Some("1.0"));
    assert_eq!(m.scope_at(3).get("BASE"), Some("alpine"));
    assert_eq!(m.scope_at(4).get("BASE"), None);
}

#[test]
fn build_args_override_defaults() {
    let mut o = ModelOptions::default();
    o.build_args.insert("VERSION".into(), "2.0".into());
    o.build_args.insert("LOCAL".into(), "set".into());
    o.build_args.insert("UNDECLARED".into(), "x".into());
    let src = "ARG VERSION=1.0\nFROM alpine:$VERSION\nARG VERSION\nARG LOCAL=default\nENV A=$VERSION-$LOCAL-$UNDECLARED\n";
    let m = model(src, &o);
    assert_eq!(m.stages[0].base_name, "alpine:2.0");
    let env = &m.stages[0].instructions[2];
    assert_eq!(env.pairs[0].value.as_deref(), Some("2.0-set-"));
    assert_eq!(m.stages[0].final_scope.get("A"), Some("2.0-set-"));
}

#[test]
fn env_persists_and_inherits_and_a_later_arg_wins() {
    let src = "FROM alpine:3 AS base\nENV A=1 B=$A\nENV A=2\nARG A=fromarg\nRUN echo\nFROM base AS child\nENV C=${A}${B}\nFROM alpine:3\nCOPY x${A} /\n";
    let m = model(src, &ModelOptions::default());
    let base = &m.stages[0];
    // ENV pairs see the environment before the instruction.
    assert_eq!(base.instructions[0].pairs[1].value.as_deref(), Some(""));
    // ARG and ENV assign one state environment: the later ARG wins (BuildKit's arg_after_env case).
    assert_eq!(base.instructions[2].scope.get("A"), Some("2"));
    assert_eq!(base.final_scope.get("A"), Some("fromarg"));
    let child = &m.stages[1];
    assert_eq!(child.base, BaseRef::Stage(0));
    assert_eq!(child.final_scope.get("C"), Some("fromarg"));
    assert_eq!(
        child.instructions[0].scope.lookup("B").unwrap().kind,
        VarKind::InheritedEnv
    );
    assert_eq!(
        child.instructions[0].scope.lookup("A").unwrap().kind,
        VarKind::InheritedArg
    );
    // A sibling stage inherits nothing.
    assert_eq!(m.stages[2].instructions[0].words[0], "x");
}

#[test]
fn predefined_platform_args() {
    let o = ModelOptions {
        target_platform: Some(Platform::parse("linux/arm64/v8").unwrap()),
        build_platform: Some(Platform::parse("linux/amd64").unwrap()),
        ..ModelOptions::default()
    };
    let src = "FROM --platform=$BUILDPLATFORM golang:1 AS build\nARG TARGETOS TARGETARCH\nENV OUT=$TARGETOS-$TARGETARCH-$TARGETVARIANT\nFROM alpine:3\nARG TARGETVARIANT\nENV V=$TARGETVARIANT P=$BUILDOS\n";
    let m = model(src, &o);
    assert_eq!(m.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(m.stages[0].platform_raw.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(m.stages[0].final_scope.get("OUT"), Some("linux-arm64-"));
    assert_eq!(m.stages[1].final_scope.get("V"), Some("v8"));
    assert_eq!(m.stages[1].final_scope.get("P"), Some(""));
    assert_eq!(m.global_scope.get("TARGETPLATFORM"), Some("linux/arm64/v8"));
    // Default platforms.
    let m = model(
        "FROM alpine\nARG TARGETPLATFORM\nARG BUILDARCH\n",
        &ModelOptions::default(),
    );
    assert_eq!(
        m.stages[0].final_scope.get("TARGETPLATFORM"),
        Some("linux/amd64")
    );
    assert_eq!(m.stages[0].final_scope.get("BUILDARCH"), Some("amd64"));
}

#[test]
fn proxy_args_reach_run_only() {
    let mut o = ModelOptions::default();
    o.build_args
        .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
    let m = model("FROM alpine\nRUN wget x\nCOPY $HTTP_PROXY /\n", &o);
    let run = &m.stages[0].instructions[0];
    assert!(run
        .scope
        .run_env()
        .contains(&("HTTP_PROXY".into(), "http://proxy:3128".into())));
    assert_eq!(m.stages[0].instructions[1].words[0], "");
}

#[test]
fn stage_graph_and_needed_stages() {
    let src = "FROM alpine:3 AS Base\nFROM golang:1 AS build\nRUN --mount=type=cache,target=/c,from=BASE go build\nFROM scratch AS unused\nFROM base AS final\nCOPY --from=build /out /out\nCOPY --from=1 /x /x\nCOPY --from=nginx:1 /etc/nginx /etc/nginx\n";
    let m = model(src, &ModelOptions::default());
    assert_eq!(m.stage_index("BASE"), Some(0));
    assert_eq!(m.stages[2].base, BaseRef::Scratch);
    assert_eq!(m.stages[1].deps[0].kind, DepKind::MountFrom);
    assert_eq!(m.stages[1].deps[0].target, BaseRef::Stage(0));
    let kinds: Vec<_> = m.stages[3]
        .deps
        .iter()
        .map(|d| (d.kind, d.target.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (DepKind::Base, BaseRef::Stage(0)),
            (DepKind::CopyFrom, BaseRef::Stage(1)),
            (DepKind::CopyFrom, BaseRef::Stage(1)),
            (DepKind::CopyFrom, BaseRef::Image("nginx:1".into())),
        ]
    );
    assert_eq!(m.target, 3);
    assert_eq!(m.needed_stages(None).unwrap(), [0, 1, 3]);
    assert_eq!(m.needed_stages(Some("BUILD")).unwrap(), [0, 1]);
    assert_eq!(m.needed_stages(Some("unused")).unwrap(), [2]);
    assert_eq!(
        m.needed_stages(Some("nope")),
        Err(Error::UnknownTarget {
            target: "nope".into()
        })
    );
}

#[test]
fn target_option() {
    let df = parse(b"FROM alpine AS a\nFROM alpine AS b\n").unwrap();
    let o = ModelOptions {
        target: Some("A".into()),
        ..ModelOptions::default()
    };
    assert_eq!(Model::build(&df, &o).unwrap().target, 0);
    let o = ModelOptions {
        target: Some("missing".into()),
        ..ModelOptions::default()
    };
    let e = Model::build(&df, &o).unwrap_err();
    assert_eq!(e.to_string(), "target stage \"missing\" could not be found");
}

#[test]
fn expansion_rules_per_instruction() {
    let src = "FROM alpine\nENV D=/data P=80\nRUN echo $D\nCMD echo $D\nWORKDIR $D\nEXPOSE $P 443\nUSER ${U:-app}\nVOLUME $D/v\nLABEL k=$D\nSTOPSIGNAL SIG${P}\nONBUILD COPY $D /\n";
    let m = model(src, &ModelOptions::default());
    let w = |i: usize| m.stages[0].instructions[i].words.clone();
    assert_eq!(w(1), ["echo $D"]);
    assert_eq!(w(2), ["echo $D"]);
    assert_eq!(w(3), ["/data"]);
    assert_eq!(w(4), ["80", "443"]);
    assert_eq!(w(5), ["app"]);
    assert_eq!(w(6), ["/data/v"]);
    assert_eq!(
        m.stages[0].instructions[7].pairs[0].value.as_deref(),
        Some("/data")
    );
    assert_eq!(w(8), ["SIG80"]);
    assert!(!m.stages[0].instructions[9].expanded);
    assert!(m.instruction_at(6).is_some_and(|i| i.keyword == "expose"));
}

#[test]
fn errors() {
    let df = parse(b"FROM a b\n").unwrap();
    assert!(matches!(
        Model::build(&df, &ModelOptions::default()),
        Err(Error::Parse { line: 1, .. })
    ));
    let df = parse(b"ARG A\n").unwrap();
    assert!(Model::build(&df, &ModelOptions::default()).is_err());
    // An expansion error is recorded on the instruction, not fatal.
    let m = model(
        "FROM alpine\nCOPY ${A:?must be set} /\n",
        &ModelOptions::default(),
    );
    assert!(m.stages[0].instructions[0].error.is_some());
    assert!(Platform::parse("linux/").is_err());
    let df = parse(b"RUN x\nFROM alpine\n").unwrap();
    let e = Model::build(&df, &ModelOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "1:1: no build stage in current context");
    let df = parse(b"FROM alpine AS 1st\n").unwrap();
    let e = Model::build(&df, &ModelOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("invalid name for build stage: \"1st\""),
        "{e}"
    );
}

#[test]
fn child_stage_inherits_parent_args_as_buildkit_does() {
    let src =
        "FROM alpine AS base\nARG V=1\nARG V\nFROM base\nCOPY x$V /\nFROM alpine\nCOPY y$V /\n";
    let m = model(src, &ModelOptions::default());
    assert_eq!(m.stages[0].final_scope.get("V"), Some("1"));
    assert_eq!(m.stages[1].instructions[0].words[0], "x1");
    assert_eq!(
        m.stages[1].instructions[0].scope.lookup("V").unwrap().kind,
        VarKind::InheritedArg
    );
    assert_eq!(m.stages[2].instructions[0].words[0], "y");
}

#[test]
fn values_at_cursor() {
    let src = "ARG G=1\nFROM alpine\nARG G\nENV E=$G\n\nARG E=ignored\nRUN echo\n";
    let m = model(src, &ModelOptions::default());
    let names = |l: usize| -> Vec<(String, Option<String>)> {
        m.values_at(l)
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect()
    };
    assert!(names(1)
        .iter()
        .any(|(n, v)| n == "TARGETARCH" && v.as_deref() == Some("amd64")));
    assert_eq!(names(3), []);
    assert_eq!(names(4), [("G".to_string(), Some("1".to_string()))]);
    assert_eq!(
        names(5),
        [
            ("G".to_string(), Some("1".to_string())),
            ("E".to_string(), Some("1".to_string()))
        ]
    );
    // A later ARG wins over an ENV of the same name, as in BuildKit's state environment
    // (BuildKit's recorded arg_after_env case).
    assert_eq!(names(7)[1], ("E".to_string(), Some("ignored".to_string())));
    let v = serde_json::to_value(m.values_at(7)).unwrap();
    assert_eq!(v[0]["kind"], "arg");
}
