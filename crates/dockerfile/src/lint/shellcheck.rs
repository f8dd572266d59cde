//! ShellCheck-style findings inside a shell-form RUN: unquoted variable expansions
//! (`LW041`, SC2086), unquoted command substitutions (`LW043`, SC2046) and a `cd` whose
//! failure goes unchecked before more commands (`LW042`, SC2164). A small quoting-aware
//! scanner of our own: it keeps the quotes `shellscan` drops, which these rules are about.

use super::context::Ctx;
use super::{Fix, Range};
use crate::model::{Instruction, Stage};
use crate::parser::Node;

/// A character of the RUN's command text and where it is in the source.
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    line: usize,
    col: usize,
}

/// A word with its quotes kept, or an operator.
#[derive(Debug, Clone)]
enum Tok {
    Word(Vec<Ch>),
    Op(&'static str),
}

/// An expansion found in a word, where it is and whether double quotes protect it.
#[derive(Debug)]
struct Expansion {
    /// `$NAME`/`${...}` or `$(...)`/`` `...` ``.
    command: bool,
    name: String,
    quoted: bool,
    start: Ch,
    end: Ch,
    /// The expansion as written.
    text: String,
    /// The text inside `$(...)`, scanned as a script of its own.
    inner: Vec<Ch>,
}

pub(crate) fn run(cx: &mut Ctx) {
    let model = cx.model;
    if cx.df.escape() != b'\\' {
        return; // `# escape=`` ` files are Windows (PowerShell/cmd) files
    }
    for stage in &model.stages {
        for ins in stage.instructions.iter().filter(|i| i.keyword == "run") {
            let node = &cx.df.children[ins.node];
            if node.json || !node.heredocs.is_empty() {
                continue;
            }
            let (posix, errexit) = stage_shell(stage, ins.start_line);
            if posix {
                check_run(cx, ins, node, errexit);
            }
        }
    }
}

/// Whether RUN's shell at `line` is a POSIX shell, and whether it runs with `-e`.
fn stage_shell(stage: &Stage, line: usize) -> (bool, bool) {
    let Some(sh) = stage
        .instructions
        .iter()
        .rev()
        .find(|i| i.keyword == "shell" && i.start_line < line)
    else {
        return (true, false);
    };
    let prog = sh
        .words
        .first()
        .map_or("", |w| w.rsplit('/').next().unwrap_or(""));
    let posix = matches!(prog, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh");
    let errexit = sh.words[1..]
        .iter()
        .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('e'));
    (posix, errexit)
}

/// The command text of a RUN from its arguments on: continuations joined (the escape
/// and line end become a space), comment lines inside continuations dropped.
fn text(cx: &Ctx, node: &Node) -> Vec<Ch> {
    let mut out = Vec::new();
    let (l0, c0) = (node.args_position.line, node.args_position.column);
    for line in l0..=node.end_line {
        let raw = String::from_utf8_lossy(cx.line(line)).into_owned();
        if line > l0 && raw.trim_start().starts_with('#') {
            continue;
        }
        let from = if line == l0 { c0.saturating_sub(1) } else { 0 };
        let body = raw.trim_end();
        let cont = body.ends_with('\\') && line < node.end_line;
        let body = if cont { &body[..body.len() - 1] } else { body };
        for (i, c) in body.char_indices().filter(|(i, _)| *i >= from) {
            out.push(Ch {
                c,
                line,
                col: i + 1,
            });
        }
        out.push(Ch {
            c: if cont { ' ' } else { '\n' },
            line,
            col: body.len() + 1,
        });
        if !cont {
            break;
        }
    }
    out
}

/// Index just past the `close` that ends a construct opened before `i` (quotes and
/// nesting of `open` respected).
fn matching(s: &[Ch], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 1;
    let (mut sq, mut dq) = (false, false);
    while i < s.len() {
        let c = s[i].c;
        match c {
            '\\' if !sq => i += 1,
            '\'' if !dq => sq = !sq,
            '"' if !sq => dq = !dq,
            _ if sq || dq && c != close => {}
            _ if c == open && !dq => depth += 1,
            _ if c == close && !dq => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// Splits a script into words (quotes kept) and operators.
fn tokens(s: &[Ch]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word: Vec<Ch> = Vec::new();
    let (mut sq, mut dq) = (false, false);
    let mut i = 0;
    let flush = |word: &mut Vec<Ch>, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word)));
        }
    };
    while i < s.len() {
        let c = s[i].c;
        let next = s.get(i + 1).map(|x| x.c);
        if sq {
            sq = c != '\'';
            word.push(s[i]);
            i += 1;
            continue;
        }
        // `$(`, `${` and backquotes hold whole scripts: keep them inside the word.
        let end = match (c, next) {
            ('\\', Some(_)) => i + 2,
            ('$', Some('(')) => matching(s, i + 2, '(', ')'),
            ('$', Some('{')) => matching(s, i + 2, '{', '}'),
            ('`', _) => (i + 1..s.len())
                .find(|&k| s[k].c == '`' && s[k - 1].c != '\\')
                .map_or(s.len(), |k| k + 1),
            _ => i,
        };
        if end > i {
            word.extend_from_slice(&s[i..end.min(s.len())]);
            i = end;
            continue;
        }
        if dq {
            dq = c != '"';
            word.push(s[i]);
            i += 1;
            continue;
        }
        let op: Option<&'static str> = match (c, next) {
            ('&', Some('&')) => Some("&&"),
            ('|', Some('|')) => Some("||"),
            (';', Some(';')) => Some(";;"),
            ('|', _) => Some("|"),
            ('&', _) if !word.last().is_some_and(|w| matches!(w.c, '>' | '<')) => Some("&"),
            (';', _) => Some(";"),
            ('\n', _) => Some("\n"),
            ('(', _) if word.is_empty() => Some("("),
            (')', _) => Some(")"),
            _ => None,
        };
        if let Some(op) = op {
            flush(&mut word, &mut out);
            out.push(Tok::Op(op));
            i += op.len();
            continue;
        }
        match c {
            ' ' | '\t' => flush(&mut word, &mut out),
            '#' if word.is_empty() => {
                while i < s.len() && s[i].c != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' => {
                sq = true;
                word.push(s[i]);
            }
            '"' => {
                dq = true;
                word.push(s[i]);
            }
            _ => word.push(s[i]),
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    out
}

/// The expansions of one word.
fn expansions(w: &[Ch]) -> Vec<Expansion> {
    let mut out = Vec::new();
    let (mut sq, mut dq) = (false, false);
    let mut i = 0;
    while i < w.len() {
        let c = w[i].c;
        let next = w.get(i + 1).map(|x| x.c);
        if sq {
            sq = c != '\'';
            i += 1;
            continue;
        }
        match (c, next) {
            ('\\', _) => i += 2,
            ('\'', _) if !dq => {
                sq = true;
                i += 1;
            }
            ('"', _) => {
                dq = !dq;
                i += 1;
            }
            ('$', Some('(')) => {
                let end = matching(w, i + 2, '(', ')');
                let arith = w.get(i + 2).is_some_and(|x| x.c == '(');
                out.push(Expansion {
                    command: !arith,
                    name: String::new(),
                    quoted: dq || arith,
                    start: w[i],
                    end: w[end.min(w.len()) - 1],
                    text: text_of(&w[i..end.min(w.len())]),
                    inner: w[i + 2..end.saturating_sub(1).max(i + 2)].to_vec(),
                });
                i = end;
            }
            ('`', _) => {
                let end = (i + 1..w.len())
                    .find(|&k| w[k].c == '`' && w[k - 1].c != '\\')
                    .map_or(w.len(), |k| k + 1);
                out.push(Expansion {
                    command: true,
                    name: String::new(),
                    quoted: dq,
                    start: w[i],
                    end: w[end - 1],
                    text: text_of(&w[i..end]),
                    inner: w[i + 1..end.saturating_sub(1).max(i + 1)].to_vec(),
                });
                i = end;
            }
            ('$', Some('{')) => {
                let end = matching(w, i + 2, '{', '}');
                let body: String = w[i + 2..end.saturating_sub(1).max(i + 2)]
                    .iter()
                    .map(|x| x.c)
                    .collect();
                out.push(Expansion {
                    command: false,
                    name: body,
                    quoted: dq,
                    start: w[i],
                    end: w[end.min(w.len()) - 1],
                    text: text_of(&w[i..end.min(w.len())]),
                    inner: Vec::new(),
                });
                i = end;
            }
            ('$', Some(n)) if n.is_ascii_alphanumeric() || n == '_' || "?#$!-@*".contains(n) => {
                let mut end = i + 2;
                if n.is_ascii_alphabetic() || n == '_' {
                    while end < w.len() && (w[end].c.is_ascii_alphanumeric() || w[end].c == '_') {
                        end += 1;
                    }
                }
                out.push(Expansion {
                    command: false,
                    name: w[i + 1..end].iter().map(|x| x.c).collect(),
                    quoted: dq,
                    start: w[i],
                    end: w[end - 1],
                    text: text_of(&w[i..end]),
                    inner: Vec::new(),
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether splitting `$name` cannot matter: special parameters, lengths, `$@`/`$*`
/// (ShellCheck's SC2068 territory), a variable this RUN set to a plain word, or one the
/// Dockerfile declares with ARG/ENV (hadolint's choice: the Dockerfile owns its value,
/// and a value with spaces is usually meant to split, as in `apk add $PKGS`).
fn split_harmless(r: &Run, name: &str) -> bool {
    if name.starts_with('#') || matches!(name, "?" | "#" | "$" | "!" | "-" | "@" | "*") {
        return true;
    }
    // `${x:-}`: an optional word meant to vanish when empty; quoted, it would pass "".
    if name.ends_with(":-") || (name.ends_with('-') && !name.contains(':')) {
        return true;
    }
    let plain: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if plain.is_empty() || name.contains("[@]") || name.contains("[*]") {
        return true;
    }
    // `${x:-default}` may expand to something else than x's value.
    let modified = plain.len() < name.len();
    match r.shell_vars.get(&plain) {
        Some(Value::Word) => !modified,
        Some(Value::List) => true,
        Some(Value::Unknown) => false,
        None => r.ins.scope.lookup(&plain).is_some(),
    }
}

/// `$(test ... && echo '--with-lto')`: a substitution that prints a word only under a
/// condition, so that the argument vanishes otherwise; quoted, it would pass "".
fn optional_word(inner: &[Ch]) -> bool {
    let toks = tokens(inner);
    toks.windows(2).any(|w| match w {
        [Tok::Op(op), Tok::Word(next)] => {
            matches!(*op, "&&" | "||") && matches!(plain(next).as_str(), "echo" | "printf")
        }
        _ => false,
    })
}

/// Commands whose arguments are lists of names (packages, extensions): a variable there
/// holds such a list (`apt-mark manual $savedAptMark`, `apk del $buildDeps`) and must
/// split; quoting it, as ShellCheck advises, would break the command.
fn list_consumer(prog: &str) -> bool {
    matches!(
        prog.rsplit('/').next().unwrap_or(""),
        "apt-get"
            | "apt"
            | "apt-mark"
            | "aptitude"
            | "dpkg"
            | "apk"
            | "dnf"
            | "yum"
            | "microdnf"
            | "tdnf"
            | "zypper"
            | "rpm"
            | "pip"
            | "pip3"
            | "npm"
            | "yarn"
            | "gem"
            | "pecl"
            | "docker-php-ext-install"
            | "docker-php-ext-enable"
            | "docker-php-ext-configure"
            | "install-php-extensions"
            | "pacman"
            | "emerge"
            | "conda"
            | "mamba"
            | "brew"
    )
}

fn is_assignment(w: &[Ch]) -> bool {
    let s: String = w.iter().take_while(|c| c.c != '=').map(|c| c.c).collect();
    s.len() < w.len()
        && !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.trim_end_matches('+')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn text_of(w: &[Ch]) -> String {
    w.iter().map(|c| c.c).collect()
}

fn plain(w: &[Ch]) -> String {
    w.iter()
        .map(|c| c.c)
        .filter(|c| !matches!(c, '"' | '\''))
        .collect()
}

/// What a script assigned to a variable, as far as splitting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A literal that cannot split or glob.
    Word,
    /// A literal list of words (`buildDeps='gcc make'`): meant to split.
    List,
    /// Anything else (a substitution, another variable).
    Unknown,
}

impl Value {
    /// The value of an assignment word's right-hand side, given what `r` knows of the
    /// variables it expands (`url=https://x/$arch.tgz` is a word when `$arch` is).
    fn of(r: &Run, w: &[Ch]) -> Value {
        let raw = text_of(w);
        if raw.contains(['`', '*', '?', '[', '\\']) {
            return Value::Unknown;
        }
        let known = expansions(w).iter().all(|e| {
            !e.command
                && e.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && match r.shell_vars.get(&e.name) {
                    Some(v) => *v == Value::Word,
                    None => r.ins.scope.lookup(&e.name).is_some(),
                }
        });
        if !known {
            Value::Unknown
        } else if plain(w).trim().contains([' ', '\t', '\n']) {
            Value::List
        } else {
            Value::Word
        }
    }

    /// Two assignments of one variable (case arms): the worst of both.
    fn join(self, other: Value) -> Value {
        if self == other {
            self
        } else {
            Value::Unknown
        }
    }
}

struct Run<'r> {
    ins: &'r Instruction,
    range: Range,
    /// Variables the script itself assigned: whether their value is a safe literal.
    shell_vars: std::collections::HashMap<String, Value>,
    /// (rule, message, fix) in source order.
    out: Vec<(&'static str, String, Option<Fix>)>,
}

fn check_run(cx: &mut Ctx, ins: &Instruction, node: &Node, errexit: bool) {
    let mut r = Run {
        ins,
        range: cx.node_range(node),
        shell_vars: Default::default(),
        out: Vec::new(),
    };
    let s = text(cx, node);
    scan(&mut r, &s, errexit);
    let mut seen = std::collections::BTreeSet::new();
    for (rule, msg, fix) in r.out {
        if seen.insert((rule, msg.clone())) {
            cx.report(rule, r.range, msg, fix);
        }
    }
}

/// Checks one script (a RUN, or the inside of a command substitution).
fn scan(r: &mut Run, s: &[Ch], mut errexit: bool) {
    let toks = tokens(s);
    let mut k = 0;
    while k < toks.len() {
        // One simple command: words up to the next operator.
        let start = k;
        while k < toks.len() && matches!(toks[k], Tok::Word(_)) {
            k += 1;
        }
        let words: Vec<&Vec<Ch>> = toks[start..k]
            .iter()
            .filter_map(|t| match t {
                Tok::Word(w) => Some(w),
                Tok::Op(_) => None,
            })
            .collect();
        let op = toks.get(k).map(|t| match t {
            Tok::Op(o) => *o,
            Tok::Word(_) => "",
        });
        let more = toks[(k + 1).min(toks.len())..].iter().any(|t| match t {
            Tok::Word(w) => !matches!(
                plain(w).as_str(),
                "fi" | "done" | "esac" | "}" | "then" | "else" | "do"
            ),
            Tok::Op(_) => false,
        });
        command(r, &words, op, more, &mut errexit);
        k += 1;
    }
}

/// Skips reserved words and records leading assignments; the index of the program.
fn program_start(r: &mut Run, words: &[&Vec<Ch>]) -> usize {
    let only_assignments = words.iter().all(|w| {
        is_assignment(w)
            || matches!(
                plain(w).as_str(),
                "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{"
            )
    });
    let mut i = 0;
    while i < words.len() {
        let w = plain(words[i]);
        if matches!(
            w.as_str(),
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "time"
        ) {
            i += 1;
        } else if is_assignment(words[i]) {
            let (name, value) = split_assignment(words[i]);
            for e in expansions(value) {
                if e.command && !e.inner.is_empty() {
                    scan(r, &e.inner, false);
                }
            }
            // `X=1 cmd` sets X for cmd only.
            // A variable assigned in several places (case arms) is only as safe as
            // its worst value, as ShellCheck judges it.
            if only_assignments {
                let v = Value::of(r, value);
                let e = r.shell_vars.entry(name).or_insert(v);
                *e = e.join(v);
            }
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn split_assignment(w: &[Ch]) -> (String, &[Ch]) {
    let eq = w.iter().position(|c| c.c == '=').unwrap_or(w.len());
    let name = text_of(&w[..eq]).trim_end_matches('+').to_string();
    (name, &w[(eq + 1).min(w.len())..])
}

fn command(r: &mut Run, words: &[&Vec<Ch>], op: Option<&str>, more: bool, errexit: &mut bool) {
    let i = program_start(r, words);
    let Some(prog) = words.get(i).map(|w| plain(w)) else {
        return;
    };
    match prog.rsplit('/').next().unwrap_or("") {
        "set"
            if words[i + 1..].iter().any(|w| {
                let p = plain(w);
                (p.starts_with('-') && !p.starts_with("--") && p.contains('e')) || p == "errexit"
            }) =>
        {
            *errexit = true
        }
        "cd" if !*errexit && more && matches!(op, Some(";") | Some("\n")) => {
            let end = words.last().and_then(|w| w.last()).copied();
            let dir: Vec<String> = words[i + 1..].iter().map(|w| plain(w)).collect();
            let fix = end.map(|end| {
                Ctx::fix(
                    "Stop when cd fails",
                    super::context::at(end.line, end.col + end.c.len_utf8()),
                    " || exit",
                )
            });
            r.out.push((
                "LW042",
                format!("`cd {}` is followed by more commands but its failure is not checked: use `cd ... && ...` or `cd ... || exit`", dir.join(" ")),
                fix,
            ));
        }
        "export" | "local" | "declare" | "readonly" | "typeset" => {
            for w in words[i + 1..].iter().filter(|w| is_assignment(w)) {
                let (name, value) = split_assignment(w);
                let v = Value::of(r, value);
                let e = r.shell_vars.entry(name).or_insert(v);
                *e = e.join(v);
            }
        }
        "for" | "select" => {
            // The loop variable is a safe word when every listed word is one.
            if let (Some(var), Some(kw)) = (words.get(i + 1), words.get(i + 2)) {
                let safe = plain(kw) == "in"
                    && words[i + 3..]
                        .iter()
                        .all(|w| Value::of(r, w) == Value::Word);
                let v = if safe { Value::Word } else { Value::Unknown };
                let e = r.shell_vars.entry(plain(var)).or_insert(v);
                *e = e.join(v);
            }
        }
        _ => {}
    }
    // `[[ ]]`, `case WORD` and `for NAME in` lists do not split.
    let no_split = matches!(prog.as_str(), "[[" | "case" | "for" | "select");
    for (n, w) in words.iter().enumerate().skip(i) {
        let exps = expansions(w);
        for e in &exps {
            if e.command && !e.inner.is_empty() {
                scan(r, &e.inner, false);
            }
        }
        // A command held in a variable is split on purpose.
        if no_split || (n == i && prog.starts_with('$')) {
            continue;
        }
        for e in exps.iter().filter(|e| !e.quoted) {
            report_expansion(r, e, &prog);
        }
    }
}

fn report_expansion(r: &mut Run, e: &Expansion, prog: &str) {
    // One edit over the expansion (not two insertions), so it composes with LW042's
    // insertion right after it.
    let fix = (e.start.line == e.end.line).then(|| {
        let range = Range {
            start_line: e.start.line,
            start_column: e.start.col,
            end_line: e.end.line,
            end_column: e.end.col + e.end.c.len_utf8(),
        };
        Ctx::fix("Double-quote it", range, format!("\"{}\"", e.text))
    });
    if e.command {
        // echo joins its words again, and package managers take lists: splitting is meant.
        if prog != "echo" && !list_consumer(prog) && !optional_word(&e.inner) {
            let mut shown: String = e.text.split_whitespace().collect::<Vec<_>>().join(" ");
            if shown.chars().count() > 40 {
                shown = shown.chars().take(37).collect::<String>() + "...";
            }
            r.out.push((
                "LW043",
                format!("Quote `{shown}` to prevent word splitting and globbing of its output (or split it on purpose with `read` or an array)"),
                fix,
            ));
        }
    } else if !split_harmless(r, &e.name) && !list_consumer(prog) && !e.name.contains('+') {
        let shown = if e
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            format!("${}", e.name)
        } else {
            format!("${{{}}}", e.name)
        };
        r.out.push((
            "LW041",
            format!("Double-quote {shown} to prevent word splitting and globbing"),
            fix,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{lint, LintOptions};

    fn rules(src: &str) -> Vec<(String, String)> {
        lint(src.as_bytes(), &LintOptions::default())
            .unwrap()
            .into_iter()
            .filter(|f| matches!(f.rule.as_str(), "LW041" | "LW042" | "LW043"))
            .map(|f| (f.rule, f.message))
            .collect()
    }

    #[test]
    fn unquoted_expansions() {
        let f = rules("FROM a\nRUN echo $X \"$Y\" '$Z' ${W:-a} $? $# && X=$V test \"$(a $B)\"\n");
        let names: Vec<&str> = f.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(
            names,
            [
                "Double-quote $X to prevent word splitting and globbing",
                "Double-quote ${W:-a} to prevent word splitting and globbing",
                "Double-quote $B to prevent word splitting and globbing",
            ]
        );
    }

    #[test]
    fn intended_splits_are_left_alone() {
        assert!(rules("FROM a\nENV PKGS=\"a b\"\nRUN apk add $PKGS && [[ -n $X ]] && for p in $L; do :; done\n").is_empty());
        assert!(rules("FROM a\nSHELL [\"pwsh\", \"-c\"]\nRUN echo $env:X\n").is_empty());
        assert!(rules("FROM a\nRUN A=$B; case $C in x) echo;; esac; V=1.2; echo $V\n").is_empty());
        assert!(rules("FROM a\nARG V\nRUN for k in a b; do echo $k $V; done\n").is_empty());
        // A literal list is meant to split; a loop over "$@" and $HOME are not known words.
        assert_eq!(
            rules("FROM a\nRUN V=\"a b\"; echo $V; for k in \"$@\"; do echo $k; done; export X=$HOME\n").len(),
            2
        );
        // Package lists in variables split on purpose; `${x:+--flag}` vanishes when x is empty.
        assert!(rules("FROM a\nRUN s=\"$(apt-mark showmanual)\"; apt-mark manual $s; ./configure ${a:+--enable-a}\n").is_empty());
    }

    #[test]
    fn command_substitutions() {
        let f = rules("FROM a\nRUN kill $(cat pid) `x` \"$(y)\" && V=$(z) && ./configure $(test -n \"$a\" && echo --a)\n");
        assert_eq!(f.iter().filter(|x| x.0 == "LW043").count(), 2, "{f:?}");
    }

    #[test]
    fn unchecked_cd() {
        assert_eq!(rules("FROM a\nRUN cd /x; make\n").len(), 1);
        assert!(rules("FROM a\nRUN cd /x && make; cd /y\n").is_empty());
        assert!(rules("FROM a\nRUN set -eux; cd /x; make\n").is_empty());
        assert!(rules(
            "FROM a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN cd /x; make\n"
        )
        .is_empty());
    }

    #[test]
    fn fixes_quote_and_check() {
        let src = "FROM a\nRUN cd $D; make\n";
        let f = lint(src.as_bytes(), &LintOptions::default()).unwrap();
        let fixed = crate::lint::apply_fixes(src.as_bytes(), &f);
        let fixed = String::from_utf8(fixed).unwrap();
        assert!(fixed.contains("cd \"$D\" || exit; make"), "{fixed}");
        assert!(rules(&fixed).is_empty(), "{fixed}");
    }
}
