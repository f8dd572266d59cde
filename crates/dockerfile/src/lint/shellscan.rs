//! A small shell tokenizer for RUN commands, keeping source positions: enough to find
//! commands, their words, and the operators between them (`|`, `&&`, `;` ...). It is
//! not a shell parser; it only needs to be right for the patterns the rules look for.

use super::context::Ctx;
use super::Range;
use crate::parser::Node;

/// Reserved words that start or continue a compound command: the command after them
/// is still a command (`if apk add x; then sudo y; fi`).
const RESERVED: [&str; 10] = [
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time",
];

/// Commands that run their arguments as a command, with their options that take a
/// separate value.
const WRAPPERS: &[(&str, &[&str])] = &[
    (
        "sudo",
        &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
    ),
    ("env", &["-u", "-C", "-S"]),
    ("exec", &["-a"]),
    ("command", &[]),
    ("nice", &["-n"]),
    ("nohup", &[]),
    ("eatmydata", &[]),
    ("xargs", &["-n", "-I", "-L", "-P", "-d", "-a", "-E", "-s"]),
];

/// A word (quotes removed) or an operator.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    pub text: String,
    pub range: Range,
}

/// A simple command and the operator that follows it (`None` at the very end).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cmd {
    pub words: Vec<Tok>,
    pub op_after: Option<String>,
}

impl Cmd {
    /// The index of the program word: skips shell reserved words that open a compound
    /// command (`if`, `then`, `do`, `{` ...), `VAR=value` prefixes, and wrappers that run
    /// the rest of the line as a command (`sudo`, `env`, `xargs`, `eatmydata` ...) with
    /// their options.
    pub fn program_index(&self) -> Option<usize> {
        let mut i = 0;
        // Options of the last wrapper that take a separate value (`xargs -n 1`).
        let mut valued: &[&str] = &[];
        let mut after_wrapper = false;
        while i < self.words.len() {
            let w = self.words[i].text.as_str();
            let is_assign = w.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if RESERVED.contains(&w) || (is_assign && !after_wrapper) {
                i += 1;
                continue;
            }
            if let Some((_, opts)) = WRAPPERS.iter().find(|(name, _)| *name == w) {
                valued = opts;
                after_wrapper = true;
                i += 1;
                continue;
            }
            if after_wrapper && (w.starts_with('-') || is_assign) {
                // Options of a wrapper (`sudo -E apt-get`, `xargs -r -n 1 apt-get`).
                i += if valued.contains(&w) { 2 } else { 1 };
                continue;
            }
            return Some(i);
        }
        None
    }

    /// The wrapper words before the program (`sudo`, `xargs` ...).
    pub fn wrappers(&self) -> impl Iterator<Item = &str> {
        let end = self.program_index().unwrap_or(self.words.len());
        self.words[..end]
            .iter()
            .map(|w| w.text.as_str())
            .filter(|w| WRAPPERS.iter().any(|(n, _)| n == w))
    }

    /// The program's base name (`/usr/bin/apt-get` gives `apt-get`).
    pub fn program(&self) -> Option<&str> {
        let w = &self.words[self.program_index()?].text;
        Some(w.rsplit('/').next().unwrap_or(w))
    }

    /// The words after the program.
    pub fn args(&self) -> &[Tok] {
        match self.program_index() {
            Some(i) => &self.words[i + 1..],
            None => &[],
        }
    }

    /// The first argument that is not an option (`install` in `apt-get -y install`),
    /// skipping the values of the program's options that take one (`apk --root /r add`,
    /// `apt-get -o Opt=1 install`).
    pub fn subcommand(&self) -> Option<&Tok> {
        let valued = valued_options(self.program().unwrap_or(""));
        let args = self.args();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].text.as_str();
            if !a.starts_with('-') {
                return Some(&args[i]);
            }
            i += if valued.contains(&a) { 2 } else { 1 };
        }
        None
    }

    pub fn has_arg(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.args().iter().any(|t| pred(&t.text))
    }
}

/// Options that take the next word as their value, per package manager.
pub(crate) fn valued_options(program: &str) -> &'static [&'static str] {
    match program {
        "apt-get" | "apt" => &[
            "-o",
            "-c",
            "-t",
            "--option",
            "--config-file",
            "--target-release",
            "--default-release",
        ],
        "apk" => &[
            "-t",
            "--virtual",
            "-X",
            "--repository",
            "--root",
            "-p",
            "--arch",
            "--repositories-file",
            "--keys-dir",
            "--cache-dir",
        ],
        "pip" | "pip3" | "python" | "python3" => &[
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "-t",
            "--target",
            "--prefix",
            "--root",
            "--platform",
            "--python-version",
            "--implementation",
            "--abi",
            "--trusted-host",
            "--src",
            "--upgrade-strategy",
            "--progress-bar",
            "--cache-dir",
            "--log",
            "--timeout",
            "--retries",
            "--proxy",
            "--cert",
            "--client-cert",
            "--exists-action",
            "--only-binary",
            "--no-binary",
            "--config-settings",
            "-C",
            "--global-option",
            "--install-option",
            "-m",
        ],
        "npm" => &[
            "--prefix",
            "--registry",
            "-w",
            "--workspace",
            "--cache",
            "--userconfig",
            "--loglevel",
        ],
        "gem" => &[
            "-i",
            "--install-dir",
            "-n",
            "--bindir",
            "-s",
            "--source",
            "-P",
            "--trust-policy",
            "--platform",
        ],
        "dnf" | "yum" | "microdnf" => &[
            "--setopt",
            "--enablerepo",
            "--disablerepo",
            "-x",
            "--exclude",
            "--installroot",
            "--releasever",
            "--repo",
            "--repofrompath",
            "-c",
            "--config",
        ],
        _ => &[],
    }
}

struct Lexer {
    toks: Vec<(Tok, bool)>,
    /// Open unquoted `${` (a space inside `${X// /,}` does not end the word).
    braces: usize,
    word: String,
    start: Option<(usize, usize)>,
    end: (usize, usize),
    /// Inside single or double quotes (a quote may span lines).
    squote: bool,
    dquote: bool,
}

impl Lexer {
    /// One line's characters (up to a continuation's escape) into words and operators; stops at a comment.
    fn scan_line(&mut self, s: &str, line: usize, escape: char) {
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let mut k = 0;
        while k < chars.len() {
            let (i, c) = chars[k];
            let col = i + 1;
            let width = c.len_utf8();
            let next = chars.get(k + 1).map(|x| x.1);
            k += 1;
            if self.squote {
                if c == '\'' {
                    self.squote = false;
                } else {
                    self.push(c, line, col, width);
                }
                continue;
            }
            if c == escape {
                if let Some(n) = next {
                    self.push(n, line, col, width + n.len_utf8());
                    k += 1;
                }
                continue;
            }
            if self.dquote {
                if c == '"' {
                    self.dquote = false;
                    self.end = (line, col + 1);
                } else {
                    self.push(c, line, col, width);
                }
                continue;
            }
            match c {
                '\'' | '"' => {
                    if c == '\'' {
                        self.squote = true;
                    } else {
                        self.dquote = true;
                    }
                    if self.start.is_none() {
                        self.start = Some((line, col));
                    }
                }
                // `${X// /_}`: a space inside a parameter expansion belongs to the word.
                '$' if next == Some('{') => {
                    self.braces += 1;
                    self.push(c, line, col, width);
                }
                '}' if self.braces > 0 => {
                    self.braces -= 1;
                    self.push(c, line, col, width);
                }
                ' ' | '\t' if self.braces > 0 => self.push(c, line, col, width),
                ' ' | '\t' => self.flush(),
                '#' if self.start.is_none() => break,
                '|' | '&' if next == Some(c) => {
                    self.op(if c == '|' { "||" } else { "&&" }, line, col);
                    k += 1;
                }
                '|' | '&' | ';' | '(' | ')' => self.op(&c.to_string(), line, col),
                _ => self.push(c, line, col, width),
            }
        }
    }

    fn flush(&mut self) {
        if let Some((l, c)) = self.start.take() {
            let tok = Tok {
                text: std::mem::take(&mut self.word),
                range: Range {
                    start_line: l,
                    start_column: c,
                    end_line: self.end.0,
                    end_column: self.end.1,
                },
            };
            self.toks.push((tok, false));
        }
    }

    fn op(&mut self, op: &str, line: usize, col: usize) {
        self.flush();
        let tok = Tok {
            text: op.to_string(),
            range: Range {
                start_line: line,
                start_column: col,
                end_line: line,
                end_column: col + op.len(),
            },
        };
        self.toks.push((tok, true));
    }

    fn push(&mut self, c: char, line: usize, col: usize, width: usize) {
        if self.start.is_none() {
            self.start = Some((line, col));
        }
        self.word.push(c);
        self.end = (line, col + width);
    }
}

/// Tokenizes a shell-form RUN (or CMD/ENTRYPOINT) node into commands. Exec-form nodes
/// give nothing.
pub(crate) fn commands(cx: &Ctx, node: &Node) -> Vec<Cmd> {
    if node.json {
        return Vec::new();
    }
    group_commands(tokens(cx, node), &node.keyword())
}

/// The node's words and operators (`true`), line by line: continuations joined, comment lines inside them
/// skipped, quotes removed from words (their ranges keep the quotes), and a `"\n"` operator at each line end.
fn tokens(cx: &Ctx, node: &Node) -> Vec<(Tok, bool)> {
    let escape = cx.df.escape();
    let mut lx = Lexer {
        toks: Vec::new(),
        braces: 0,
        word: String::new(),
        start: None,
        end: (0, 0),
        squote: false,
        dquote: false,
    };
    let mut in_continuation = true;
    for line in node.start_line..=node.end_line {
        let text = cx.line(line);
        let first = line == node.start_line;
        let trimmed_start = text
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(text.len());
        if !first
            && in_continuation
            && text.get(trimmed_start) == Some(&b'#')
            && !lx.squote
            && !lx.dquote
        {
            continue; // comment line inside a continuation
        }
        let last_non_blank = text.iter().rposition(|c| !matches!(c, b' ' | b'\t'));
        let ends_with_escape = in_continuation && last_non_blank.is_some_and(|i| text[i] == escape);
        let limit = if ends_with_escape {
            last_non_blank.unwrap_or(0)
        } else {
            text.len()
        };
        lx.scan_line(
            &String::from_utf8_lossy(&text[..limit]),
            line,
            escape as char,
        );
        if !ends_with_escape && !lx.squote && !lx.dquote {
            in_continuation = false;
            lx.op("\n", line, text.len() + 1);
        }
    }
    lx.flush();
    lx.toks
}

/// Commands out of tokens: the instruction keyword and leading --flags dropped, words grouped between
/// operators, each command with the operator after it (a line end gives way to an operator on the next line).
fn group_commands(toks: Vec<(Tok, bool)>, keyword: &str) -> Vec<Cmd> {
    let mut toks = toks.into_iter().peekable();
    if toks
        .peek()
        .is_some_and(|(t, op)| !op && t.text.eq_ignore_ascii_case(keyword))
    {
        toks.next();
    }
    while toks
        .peek()
        .is_some_and(|(t, op)| !op && t.text.starts_with("--"))
    {
        toks.next();
    }
    let mut out = Vec::new();
    let mut cur = Cmd::default();
    for (t, is_op) in toks {
        if is_op {
            if !cur.words.is_empty() {
                cur.op_after = Some(t.text);
                out.push(std::mem::take(&mut cur));
            } else if let Some(prev) = out.last_mut() {
                if prev.op_after.as_deref() == Some("\n") {
                    prev.op_after = Some(t.text);
                }
            }
        } else {
            cur.words.push(t);
        }
    }
    if !cur.words.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::LintOptions;
    use crate::model::{Model, ModelOptions};
    use crate::parser::parse;

    /// The commands of the last instruction, as (words, operator after).
    fn scan(src: &str) -> Vec<(Vec<String>, Option<String>)> {
        let df = parse(src.as_bytes()).unwrap();
        let model = Model::build(&df, &ModelOptions::default()).unwrap();
        let opts = LintOptions::default();
        let cx = Ctx::new(src.as_bytes(), &df, &model, &opts);
        let node = df.children.last().unwrap();
        commands(&cx, node)
            .into_iter()
            .map(|c| (c.words.iter().map(|w| w.text.clone()).collect(), c.op_after))
            .collect()
    }

    #[test]
    fn operators_quotes_continuations() {
        let c = scan("FROM a\nRUN --mount=type=cache,target=/x apt-get update && \\\n  apt-get install -y \"curl\" 'a b'|sh;echo x # done\n");
        assert_eq!(c[0].0, ["apt-get", "update"]);
        assert_eq!(c[0].1.as_deref(), Some("&&"));
        assert_eq!(c[1].0, ["apt-get", "install", "-y", "curl", "a b"]);
        assert_eq!(c[1].1.as_deref(), Some("|"));
        assert_eq!(c[2].0, ["sh"]);
        assert_eq!(c[3].0, ["echo", "x"]);
        let c = scan("FROM a\nRUN apk add ${PACKAGES//,/ } && echo ${A:- x}\n");
        assert_eq!(c[0].0, ["apk", "add", "${PACKAGES//,/ }"]);
        assert_eq!(c[1].0, ["echo", "${A:- x}"]);
    }

    #[test]
    fn positions_and_comments_in_continuations() {
        let src = "FROM a\nRUN apt-get update \\\n# comment | not a pipe\n && apt-get install x\n";
        let df = parse(src.as_bytes()).unwrap();
        let model = Model::build(&df, &ModelOptions::default()).unwrap();
        let opts = LintOptions::default();
        let cx = Ctx::new(src.as_bytes(), &df, &model, &opts);
        let cmds = commands(&cx, &df.children[1]);
        assert_eq!(cmds.len(), 2);
        let install = &cmds[1].words[1];
        assert_eq!(install.text, "install");
        assert_eq!(
            (install.range.start_line, install.range.start_column),
            (4, 13)
        );
        assert_eq!(cmds[1].program(), Some("apt-get"));
        assert_eq!(cmds[1].subcommand().unwrap().text, "install");
    }

    #[test]
    fn heredoc_bodies_and_wrappers() {
        let c = scan("FROM a\nRUN <<EOF\nset -e\nsudo -E /usr/bin/apt-get install x\nEOF\n");
        let words: Vec<&Vec<String>> = c.iter().map(|x| &x.0).collect();
        assert!(words.contains(&&vec!["set".to_string(), "-e".to_string()]));
        let df =
            parse(b"FROM a\nRUN DEBIAN_FRONTEND=noninteractive sudo apt-get install x\n").unwrap();
        let model = Model::build(&df, &ModelOptions::default()).unwrap();
        let opts = LintOptions::default();
        let src = b"FROM a\nRUN DEBIAN_FRONTEND=noninteractive sudo apt-get install x\n";
        let cx = Ctx::new(src, &df, &model, &opts);
        let cmds = commands(&cx, &df.children[1]);
        assert_eq!(cmds[0].program(), Some("apt-get"));
        assert!(scan("FROM a\nRUN [\"echo\", \"a|b\"]\n").is_empty());
    }

    #[test]
    fn compound_commands_and_wrappers() {
        let prog = |src: &str| -> Vec<String> {
            let df = parse(src.as_bytes()).unwrap();
            let model = Model::build(&df, &ModelOptions::default()).unwrap();
            let opts = LintOptions::default();
            let cx = Ctx::new(src.as_bytes(), &df, &model, &opts);
            commands(&cx, df.children.last().unwrap())
                .iter()
                .filter_map(|c| c.program().map(str::to_string))
                .collect()
        };
        assert_eq!(
            prog("FROM a\nRUN if [ -f x ]; then apk add y; else { sudo -u me make; }; fi\n"),
            ["[", "apk", "make", "}", "fi"]
        );
        assert_eq!(
            prog("FROM a\nRUN xargs -r -n 1 -a list apt-get install -y && for p in a; do pip install $p; done\n"),
            ["apt-get", "for", "pip", "done"]
        );
    }
}
