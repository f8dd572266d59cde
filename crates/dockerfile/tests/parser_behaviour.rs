//! Parser behaviour beyond the upstream corpus. Expected dumps were produced by BuildKit's
//! own parser (the same `Node.Dump` format as `buildkit-parser/*/result`).

use lw_dockerfile::parser::{self, Position};
use lw_dockerfile::Error;

fn dump(src: &[u8]) -> String {
    parser::dump(&parser::parse(src).unwrap_or_else(|e| panic!("{e}")))
}

fn parse_err(src: &[u8]) -> (usize, usize, String) {
    match parser::parse(src) {
        Err(Error::Parse {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_utf8_and_quirks() {
    let src = b"FROM x\nRUN echo \xff\xfe caf\xc3\xa9 \x01\nCOPY --chown=\xc3\xa9 a b\nFOO --x bar\nonbuild run <<EOF\nhi\nEOF\n";
    assert_eq!(
        dump(src),
        "(from \"x\")\n(run \"echo \\xff\\xfe café \\x01\")\n(copy [\"--chown=Ã©\"] \"a\" \"b\")\n(foo [\"--x\"] \"\")\n(onbuild (run \"<<EOF\"))\n"
    );
    let df = parser::parse(src).unwrap();
    // ONBUILD triggers carry heredocs too.
    assert_eq!(df.children[4].heredocs[0].content, b"hi\n");
    assert_eq!((df.children[4].start_line, df.children[4].end_line), (5, 7));
}

#[test]
fn bom_crlf_backtick_escape_and_json_fallbacks() {
    let src = b"\xef\xbb\xbf# escape=`\r\nFROM a\r\nRUN echo \\\r\n  `\r\n  b\r\nCMD [\"a\", 1e400]\r\nCMD [\"\\ud800\", \"\\u00a0\"]\n";
    assert_eq!(
        dump(src),
        "(from \"a\")\n(run \"echo \\\\\")\n(b \"\")\n(cmd \"[\\\"a\\\", 1e400]\")\n(cmd \"\u{fffd}\" \"\\u00a0\")\n"
    );
    let df = parser::parse(src).unwrap();
    assert_eq!(df.escape(), b'`');
    assert_eq!(df.directives.parsed[0].name, "escape");
    assert_eq!((df.start_line, df.end_line), (2, 7));
    assert!(df.children[4].json);
}

#[test]
fn whitespace_and_legacy_forms() {
    let src =
        b"FROM a\nLABEL \"a b\"=c d=\n  HEALTHCHECK --retries=3 CMD [\"x\"]\nEXPOSE 1\t2\x0b3\n";
    assert_eq!(
        dump(src),
        "(from \"a\")\n(label \"\\\"a b\\\"\" \"c\" \"=\" \"d\" \"\" \"=\")\n(healthcheck [\"--retries=3\"] \"CMD\" \"x\")\n(expose \"1\" \"2\" \"3\")\n"
    );
}

#[test]
fn spans_and_columns() {
    let src = b"# c\n  RUN --mount=type=cache,target=/x \\\n    --network=none \\\n# skipped\n    echo hi\nFROM a";
    let df = parser::parse(src).unwrap();
    let run = &df.children[0];
    assert_eq!(run.prev_comment, vec![b"c".to_vec()]);
    assert_eq!(run.span.start, Position { line: 2, column: 3 });
    assert_eq!(
        run.span.end,
        Position {
            line: 5,
            column: 12
        }
    );
    assert_eq!(
        run.flag_positions,
        vec![
            Position { line: 2, column: 7 },
            Position { line: 3, column: 5 }
        ]
    );
    assert_eq!(run.args_position, Position { line: 5, column: 5 });
    assert_eq!(
        run.original,
        b"RUN --mount=type=cache,target=/x     --network=none     echo hi"
    );
    let from = &df.children[1];
    assert_eq!(from.span.start, Position { line: 6, column: 1 });
    assert_eq!(from.span.end, Position { line: 6, column: 7 });
    // Heredoc bodies belong to the instruction's span.
    let df = parser::parse(b"FROM a\nRUN <<EOF\nx\nEOF\nRUN b").unwrap();
    assert_eq!((df.children[1].start_line, df.children[1].end_line), (2, 4));
    // ONBUILD's trigger keeps its own column.
    let df = parser::parse(b"ONBUILD  RUN x").unwrap();
    assert_eq!(df.children[0].next.as_ref().unwrap().span.start.column, 10);
}

#[test]
fn errors() {
    assert_eq!(parse_err(b""), (1, 1, "file with no instructions".into()));
    assert_eq!(
        parse_err(b"# only\n\n"),
        (2, 1, "file with no instructions".into())
    );
    assert_eq!(
        parse_err(b"FROM a\n  ENV x"),
        (2, 3, "ENV must have two arguments".into())
    );
    assert_eq!(
        parse_err(b"FROM a\nLABEL a=b c"),
        (
            2,
            1,
            "Syntax error - can't find = in \"c\". Must be of the form: name=value".into()
        )
    );
    assert_eq!(
        parse_err(b"CMD [\"a\", 1]"),
        (
            1,
            1,
            "when using JSON array syntax, arrays must be comprised of strings only".into()
        )
    );
    assert_eq!(
        parse_err(b"FROM a\nRUN <<EOF\nx\n"),
        (2, 1, "unterminated heredoc".into())
    );
    assert_eq!(
        parse_err(b"# escape=x\nFROM a"),
        (
            1,
            1,
            "invalid escape token 'x' does not match ` or \\".into()
        )
    );
    assert_eq!(
        parse_err(b"# escape=`\n# escape=`\nFROM a"),
        (2, 1, "only one escape parser directive can be used".into())
    );
}

#[test]
fn directives_and_syntax() {
    let df =
        parser::parse(b"#!/bin/sh\n# syntax=docker/dockerfile:1.7\n# check=skip=all\nFROM a\n")
            .unwrap();
    // The parser treats the lines after a shebang as comments, but syntax detection skips it.
    assert!(df.directives.parsed.is_empty());
    assert_eq!(
        df.directives.syntax.as_ref().unwrap().reference,
        "docker/dockerfile:1.7"
    );
    assert_eq!(df.directives.check.as_ref().unwrap().cmdline, "skip=all");
    let df = parser::parse(b"# syntax = x y\n#CHECK=error=true\nFROM a\n").unwrap();
    let names: Vec<_> = df
        .directives
        .parsed
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, vec!["syntax", "check"]);
    assert_eq!(df.directives.syntax.unwrap().cmdline, "x y");
}
