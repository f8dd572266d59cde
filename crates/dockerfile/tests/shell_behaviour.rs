//! Behaviour of shell-word expansion beyond the corpus: BuildKit's quirks (derived from reading
//! `frontend/dockerfile/shell/lex.go`), the options, the backtick escape, error texts, and
//! robustness (no panic on odd input, bounded nesting).

use lw_dockerfile::shell::{env_from_slice, EmptyEnv, EnvList, Lexer, MAX_NESTING};
use lw_dockerfile::Error;

fn env() -> EnvList {
    env_from_slice(&["PWD=/home", "EMPTY=", "SPACE=a  b", "NL=a\nb", "FOO=abcb"])
}

fn word(input: &str) -> String {
    Lexer::new('\\')
        .process_word(input, &env())
        .unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn words(input: &str) -> Vec<String> {
    Lexer::new('\\')
        .process_words(input, &env())
        .unwrap_or_else(|e| panic!("{input:?}: {e}"))
}

fn err(input: &str) -> String {
    match Lexer::new('\\').process_word(input, &env()) {
        Err(Error::Expand { message }) => message,
        other => panic!("{input:?}: expected an expansion error, got {other:?}"),
    }
}

#[test]
fn error_messages_are_buildkits() {
    assert_eq!(
        err("${X:?oops}"),
        "failed to process \"${X:?oops}\": X: oops"
    );
    assert_eq!(
        err("${X?}"),
        "failed to process \"${X?}\": X: is not allowed to be unset"
    );
    assert_eq!(
        err("${EMPTY:?}"),
        "failed to process \"${EMPTY:?}\": EMPTY: is not allowed to be empty"
    );
    assert_eq!(
        err("${}"),
        "failed to process \"${}\": syntax error: bad substitution"
    );
    assert_eq!(
        err("a${"),
        "failed to process \"a${\": syntax error: missing '}'"
    );
    assert_eq!(
        err("${X:-abc"),
        "failed to process \"${X:-abc\": syntax error: missing '}'"
    );
    assert_eq!(
        err("${X=1}"),
        "failed to process \"${X=1}\": unsupported modifier (=) in substitution"
    );
    assert_eq!(
        err("${X:x}"),
        "failed to process \"${X:x}\": unsupported modifier (:x) in substitution"
    );
    assert_eq!(
        err("${X:#a}"),
        "failed to process \"${X:#a}\": unsupported modifier (:#) in substitution"
    );
    assert_eq!(
        err("${X"),
        "failed to process \"${X\": unsupported modifier (\u{FFFD}) in substitution"
    );
    assert_eq!(
        err("${X/a}"),
        "failed to process \"${X/a}\": syntax error: missing '/' in ${}"
    );
    assert_eq!(
        err("'abc"),
        "failed to process \"'abc\": unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        err("\"abc\\"),
        "failed to process \"\\\"abc\\\\\": unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(
        err("${FOO#\\x}"),
        "failed to process \"${FOO#\\\\x}\": invalid pattern (\\x) in substitution: invalid escape '\\x'"
    );
    // A `%` pattern is reversed before it is compiled, and the error quotes the reversed form.
    assert_eq!(
        err("${FOO%a\\x}"),
        "failed to process \"${FOO%a\\\\x}\": invalid pattern (\\xa) in substitution: invalid escape '\\x'"
    );
    // The inner error survives unless the input ended; then it becomes "missing '}'".
    assert_eq!(
        err("${A:-${X?no}}"),
        "failed to process \"${A:-${X?no}}\": X: no"
    );
    assert_eq!(
        err("${A:-${X?no}"),
        "failed to process \"${A:-${X?no}\": syntax error: missing '}'"
    );
    // Control characters are quoted Go-style.
    assert_eq!(
        err("\t${}"),
        "failed to process \"\\t${}\": syntax error: bad substitution"
    );
}

#[test]
fn patterns() {
    assert_eq!(word("${FOO#*b}"), "cb");
    assert_eq!(word("${FOO##*b}"), "");
    assert_eq!(word("${FOO%b*}"), "abc");
    assert_eq!(word("${FOO%%b*}"), "a");
    assert_eq!(word("${FOO#?}"), "bcb");
    assert_eq!(word("${FOO/b/X}"), "aXcb");
    assert_eq!(word("${FOO//b/X}"), "aXcX");
    assert_eq!(word("${FOO//b*/X}"), "aX");
    assert_eq!(
        word("${FOO/#/X}"),
        "abcb",
        "no bash anchors: `#` is literal"
    );
    // `$0` in a replace-all replacement is the match (Go's ReplaceAllString); not for `/`.
    assert_eq!(word("${FOO//b/[\\$0]}"), "a[\\b]c[\\b]");
    assert_eq!(word("${FOO//b/'$0'}"), "abcb");
    assert_eq!(word("${FOO/b/'$0'}"), "a$0cb");
    // `*` and `?` never cross a newline.
    assert_eq!(word("${NL#*b}"), "a\nb");
    assert_eq!(word("${NL#a?}"), "a\nb");
    assert_eq!(word("${NL//?/x}"), "x\nx");
    // `\}` and `\/` in a pattern.
    assert_eq!(
        Lexer::new('\\')
            .process_word("${P//\\//_}", &env_from_slice(&["P=a/b/c"]))
            .unwrap(),
        "a_b_c"
    );
    assert_eq!(
        Lexer::new('\\')
            .process_word("${P%\\}}", &env_from_slice(&["P=a}"]))
            .unwrap(),
        "a"
    );
}

#[test]
fn matches_include_eagerly_expanded_words() {
    let e = Lexer::new('\\')
        .process_word_with_matches("${PWD:-$NOPE}${EMPTY+x}$1${@}", &env())
        .unwrap();
    assert_eq!(e.value, "/homex");
    assert_eq!(e.matched.iter().collect::<Vec<_>>(), ["EMPTY", "PWD"]);
    assert_eq!(e.unmatched.iter().collect::<Vec<_>>(), ["1", "@", "NOPE"]);
}

#[test]
fn word_splitting() {
    assert_eq!(
        words("a $SPACE \"$SPACE\" 'x y'"),
        ["a", "a", "b", "a  b", "x y"]
    );
    assert_eq!(words("  a  \"\"  b  "), ["a", "b"]);
    assert_eq!(words("a\\ b c"), ["a b", "c"]);
    assert_eq!(words("cat << EOF x"), ["cat", "<< EOF", "x"]);
    assert_eq!(words("a<b"), ["a<b"]);
    // *quirk*: a `${v<op>...}` form drops the unfinished word before it.
    assert_eq!(words("abc${X:-def}"), ["def"]);
    assert_eq!(words("a b${X:-def} c"), ["a", "def", "c"]);
    assert_eq!(words("abc${PWD}"), ["abc/home"]);
    assert!(Lexer::new('\\')
        .process_words("", &EmptyEnv)
        .unwrap()
        .is_empty());
}

#[test]
fn backtick_escape() {
    let lex = Lexer::new('`');
    let env = env();
    assert_eq!(lex.process_word("he`$PWD", &env).unwrap(), "he$PWD");
    assert_eq!(
        lex.process_word("C:\\dir\\$PWD", &env).unwrap(),
        "C:\\dir\\/home"
    );
    assert_eq!(lex.process_word("\"a`\"b\"", &env).unwrap(), "a\"b");
    assert_eq!(lex.process_word("\"a\\\"", &env).unwrap(), "a\\");
    assert_eq!(lex.process_word("\"a`b\"", &env).unwrap(), "a`b");
    assert_eq!(lex.process_word("a``b`", &env).unwrap(), "a`b");
    assert_eq!(lex.process_words("a` b c", &env).unwrap(), ["a b", "c"]);
}

#[test]
fn options() {
    let env = env();
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    assert_eq!(
        lex.process_word("'a'\"b$PWD\"", &env).unwrap(),
        "'a'\"b/home\""
    );

    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    assert_eq!(
        lex.process_word("$X ${Y} ${Z:-d} ${W//a/b} $PWD ${EMPTY:-e}", &env)
            .unwrap(),
        "$X ${Y} ${Z:-d} ${W/a/b} /home e"
    );

    let mut lex = Lexer::new('\\');
    lex.raw_escapes = true;
    assert_eq!(
        lex.process_word("a\\$b \"\\x\\\"\"", &env).unwrap(),
        "a\\$b \\\\x\\\""
    );

    let mut lex = Lexer::new('\\');
    lex.skip_process_quotes = true;
    assert_eq!(
        lex.process_word("'a' \"$PWD\"", &env).unwrap(),
        "'a' \"/home\""
    );
}

#[test]
fn misc_go_details() {
    // A byte order mark at the very start is skipped (Go's text/scanner).
    assert_eq!(word("\u{FEFF}a\u{FEFF}"), "a\u{FEFF}");
    // Unicode digits are positional parameters; letters are Go letters (category L).
    assert_eq!(word("$٣x"), "x");
    assert_eq!(
        Lexer::new('\\')
            .process_word("$é한_1.", &env_from_slice(&["é한_1=v"]))
            .unwrap(),
        "v."
    );
    // `$` without a name stays.
    assert_eq!(word("a$ $. $"), "a$ $. $");
    assert_eq!(word("${X:-$}"), "$");
    assert_eq!(word("${X:-}}"), "}");
}

/// A small deterministic generator, so the test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn never_panics_on_odd_input() {
    const ALPHABET: &[&str] = &[
        "$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "`", "'", "\"", "<", " ", "\t",
        "\n", "*", "=", "@", "!", "0", "1", "a", "PWD", "FOO", "NL", "EMPTY", "é", "한",
        "\u{FEFF}", "\u{0}", "$0", "${", "${FOO", "${FOO//", "${FOO%%", "${FOO#", "${NL/",
    ];
    let env = env();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ran = 0;
    for _ in 0..30_000 {
        let len = (rng.next() % 24) as usize;
        let input: String = (0..len)
            .map(|_| ALPHABET[(rng.next() as usize) % ALPHABET.len()])
            .collect();
        for escape in ['\\', '`'] {
            let flags = rng.next();
            let mut lex = Lexer::new(escape);
            lex.raw_quotes = flags & 1 != 0;
            lex.raw_escapes = flags & 2 != 0;
            lex.skip_process_quotes = flags & 4 != 0;
            lex.skip_unset_env = flags & 8 != 0;
            let a = lex.process_word(&input, &env);
            let b = lex.process_word_with_matches(&input, &env);
            assert_eq!(
                a.as_ref().ok(),
                b.as_ref().ok().map(|e| &e.value),
                "{input:?}"
            );
            let _ = lex.process_words(&input, &env);
            ran += 1;
        }
    }
    println!("shell: {ran} random inputs processed without a panic");
}

#[test]
fn nesting_is_bounded() {
    let run = || {
        let lex = Lexer::new('\\');
        let env = env();
        // Well within the limit: works.
        let ok = format!(
            "{}x{}",
            "${X:-\"".repeat(MAX_NESTING - 1),
            "\"}".repeat(MAX_NESTING - 1)
        );
        assert_eq!(lex.process_word(&ok, &env).unwrap(), "x");
        assert_eq!(lex.process_words(&ok, &env).unwrap(), ["x"]);
        // Far beyond it: a clean error, no stack overflow.
        for deep in [
            "${X:-".repeat(100_000),
            "${X:-\"".repeat(100_000),
            "${X/".repeat(100_000),
        ] {
            assert!(lex.process_word(&deep, &env).is_err());
        }
        // Long flat input is fine.
        let long = "${FOO//b/x}$PWD'q'\"$SPACE\"".repeat(5_000);
        assert_eq!(
            lex.process_word(&long, &env).unwrap().len(),
            5_000 * "axcx/homeqa  b".len()
        );
        let stars = format!("${{FOO#{}}}", "*".repeat(10_000));
        assert_eq!(lex.process_word(&stars, &env).unwrap(), "abcb");
    };
    // Half the wasm32 default stack (1 MiB), in a debug build: a comfortable margin.
    std::thread::Builder::new()
        .stack_size(1 << 19)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
