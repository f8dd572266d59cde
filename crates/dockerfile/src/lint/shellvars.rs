//! The values of the shell variables a RUN hands to a package manager: assignments
//! earlier in the same RUN (`buildDeps='gcc make'; apt-get install $buildDeps`) and the
//! ARG/ENV values in scope, so the pin rules judge the packages a variable holds
//! instead of skipping every `$word`.

use super::shellscan::Cmd;
use crate::model::Scope;

/// Builtins after which leading `X=v` words stay set in the shell (POSIX special
/// builtins); after any other program they only reach that program's environment.
const KEEPS_PREFIX: [&str; 9] = [
    ":", "set", "export", "readonly", "eval", "exec", "shift", "trap", "unset",
];

/// What the RUN knows of its variables at one point of the script.
pub(crate) struct Vars<'a> {
    /// Assignments seen so far in the RUN, in order (the last one wins); `None` for a
    /// value that cannot be known (`X="$(cmd)"`).
    local: Vec<(String, Option<String>)>,
    scope: &'a Scope,
}

/// A word after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expanded {
    /// Every variable had a known value.
    Known(String),
    /// Some variable is unknown; the word is all one expansion (`$PKGS`, `$(cat x)`),
    /// so nothing can be said of it.
    Opaque,
    /// Some variable is unknown, but the word has literal text around it
    /// (`tools-${V}`, `pkg=$VERSION`): judge it as written.
    Partial,
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME=value` → (`NAME`, `value`).
fn assignment(w: &str) -> Option<(&str, &str)> {
    let (k, v) = w.split_once('=')?;
    let k = k.strip_suffix('+').unwrap_or(k);
    is_name(k).then_some((k, v))
}

impl<'a> Vars<'a> {
    pub fn new(scope: &'a Scope) -> Vars<'a> {
        Vars {
            local: Vec::new(),
            scope,
        }
    }

    /// Records what a command assigns: an assignment-only command (`X='a b'`), leading
    /// assignments kept by a special builtin (`X='a b' set -x`), and the arguments of
    /// `export`/`readonly`/`local`/`declare`.
    pub fn record(&mut self, c: &Cmd) {
        let words: Vec<&str> = c.words.iter().map(|w| w.text.as_str()).collect();
        let prog = c.program_index();
        let keeps = prog.is_none_or(|i| KEEPS_PREFIX.contains(&words[i]));
        let lead = prog.unwrap_or(words.len());
        let mut found: Vec<(String, String)> = Vec::new();
        if keeps && !c.wrappers().any(|_| true) {
            found.extend(
                words[..lead]
                    .iter()
                    .filter_map(|w| assignment(w))
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
        }
        if let Some(i) = prog {
            if matches!(
                words[i],
                "export" | "readonly" | "local" | "declare" | "typeset"
            ) {
                found.extend(
                    words[i + 1..]
                        .iter()
                        .filter_map(|w| assignment(w))
                        .map(|(k, v)| (k.to_string(), v.to_string())),
                );
            }
        }
        for (k, v) in found {
            // The value is expanded with what was known before (`X="$X more"`).
            let v = match self.expand(&v) {
                Expanded::Known(s) => Some(s),
                _ => None,
            };
            self.local.push((k, v));
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.local.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        self.scope.lookup(name)?.value.clone()
    }

    /// Expands `$X`, `${X}`, `${X:-d}`, `${X-d}`, `${X:+w}`, `${X/a/b}` and `${X//a/b}`
    /// in a word (quotes already removed).
    pub fn expand(&self, word: &str) -> Expanded {
        let mut out = String::new();
        let mut unknown = false;
        let mut literal = false;
        let b = word.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                let ch = word[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                literal = true;
                i += ch.len_utf8();
                continue;
            }
            let rest = &word[i + 1..];
            if let Some(body) = rest.strip_prefix('{') {
                let Some(end) = body.find('}') else {
                    return Expanded::Opaque;
                };
                match self.braced(&body[..end]) {
                    Some(v) => out.push_str(&v),
                    None => unknown = true,
                }
                i += 2 + end + 1;
            } else {
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if n == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
                    // `$(...)`, `$1`, `$@`, a lone `$`: nothing we can know.
                    unknown = true;
                    i = b.len();
                    continue;
                }
                match self.get(&rest[..n]) {
                    Some(v) => out.push_str(&v),
                    None => unknown = true,
                }
                i += 1 + n;
            }
        }
        match (unknown, literal) {
            (false, _) => Expanded::Known(out),
            (true, false) => Expanded::Opaque,
            (true, true) => Expanded::Partial,
        }
    }

    /// The value of a `${...}` body, `None` when it depends on an unknown variable.
    fn braced(&self, body: &str) -> Option<String> {
        let n = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let (name, op) = body.split_at(n);
        if !is_name(name) {
            return None;
        }
        let value = self.get(name);
        if op.is_empty() {
            return value;
        }
        let word = |s: &str| match self.expand(s) {
            Expanded::Known(v) => Some(v),
            _ => None,
        };
        if let Some(d) = op.strip_prefix(":-").or_else(|| op.strip_prefix('-')) {
            return match value.filter(|v| !v.is_empty() || !op.starts_with(':')) {
                Some(v) => Some(v),
                None => word(d),
            };
        }
        if let Some(w) = op.strip_prefix(":+").or_else(|| op.strip_prefix('+')) {
            return match value {
                Some(v) if !v.is_empty() || !op.starts_with(':') => word(w),
                Some(_) => Some(String::new()),
                None => None,
            };
        }
        if let Some(pat) = op.strip_prefix('/') {
            let (all, pat) = match pat.strip_prefix('/') {
                Some(p) => (true, p),
                None => (false, pat),
            };
            let (from, to) = pat.split_once('/').unwrap_or((pat, ""));
            let v = value?;
            if from.is_empty() || from.contains(['*', '?', '[']) {
                return None;
            }
            return Some(if all {
                v.replace(from, to)
            } else {
                v.replacen(from, to, 1)
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::context::Ctx;
    use crate::lint::shellscan::commands;
    use crate::lint::LintOptions;
    use crate::model::{Model, ModelOptions};
    use crate::parser::parse;

    /// Expands each of `words` after recording every command of the last RUN but the last.
    fn expand_after(src: &str, words: &[&str]) -> Vec<Expanded> {
        let df = parse(src.as_bytes()).unwrap();
        let model = Model::build(&df, &ModelOptions::default()).unwrap();
        let opts = LintOptions::default();
        let cx = Ctx::new(src.as_bytes(), &df, &model, &opts);
        let node = df.children.last().unwrap();
        let ins = model
            .stages
            .iter()
            .flat_map(|s| &s.instructions)
            .find(|i| i.node == df.children.len() - 1)
            .unwrap();
        let cmds = commands(&cx, node);
        let mut v = Vars::new(&ins.scope);
        for c in &cmds[..cmds.len() - 1] {
            v.record(c);
        }
        words.iter().map(|w| v.expand(w)).collect()
    }

    fn known(s: &str) -> Expanded {
        Expanded::Known(s.into())
    }

    #[test]
    fn run_assignments_and_scope() {
        let src = "FROM a\nARG PKGS=\"curl git\"\nENV LIST=a,b,c\nRUN deps=' gcc  make '; \\\n  more=\"$deps g++\" set -x && PKGS=\"$( scanelf --needed /x | sort -u )\"; \\\n  DEBIAN_FRONTEND=x apt-get update && export E=1 && true\n";
        let got = expand_after(
            src,
            &[
                "$deps",
                "${more}",
                "$PKGS",
                "${LIST//,/ }",
                "${LIST/,/-}",
                "x-${E}",
                "$DEBIAN_FRONTEND",
                "tools-$NOPE",
                "$NOPE",
                "${NOPE:-dflt}",
                "${E:+--flag}",
                "$(cat list)",
            ],
        );
        assert_eq!(
            got,
            [
                known(" gcc  make "),
                known(" gcc  make  g++"),
                Expanded::Opaque,
                known("a b c"),
                known("a-b,c"),
                known("x-1"),
                Expanded::Opaque,
                Expanded::Partial,
                Expanded::Opaque,
                known("dflt"),
                known("--flag"),
                Expanded::Opaque,
            ]
        );
    }
}
