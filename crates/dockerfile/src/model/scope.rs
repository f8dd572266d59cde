//! Variables in scope at one point of a build: ARGs, ENVs and predefined ARGs, with
//! BuildKit's precedence: ARG and ENV both assign the build state's environment, so the
//! later assignment of a name wins (BuildKit's recorded `ARG X=arg` after `ENV X=env`
//! expands `$X` to `arg`).

use serde::Serialize;

use crate::shell::Env;

/// Where a variable comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VarKind {
    /// An `ARG` before the first `FROM` (visible to `FROM` lines only, unless redeclared).
    GlobalArg,
    /// An `ARG` inside the stage.
    Arg,
    /// An `ENV` of this stage.
    Env,
    /// An `ENV` inherited from the parent stage (`FROM <stage>`).
    InheritedEnv,
    /// An `ARG` inherited from the parent stage: BuildKit carries the parent's build
    /// state, ARG values included, into `FROM <stage>`.
    InheritedArg,
    /// An automatic platform ARG (global scope only, unless redeclared).
    Platform,
    /// A proxy build arg: reaches `RUN` without being declared, never expanded in words.
    Proxy,
}

/// One variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Var {
    pub name: String,
    /// `None` for an ARG declared without a value that no build arg sets.
    pub value: Option<String>,
    pub kind: VarKind,
    /// The 1-based line that declared it (0 for predefined ones).
    pub line: usize,
}

/// The ordered set of variables visible at one point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub vars: Vec<Var>,
}

impl Scope {
    /// Adds (or shadows) a variable.
    pub fn push(&mut self, var: Var) {
        self.vars.push(var);
    }

    /// The variable that expansion would use: the last declaration of that name (ARG and
    /// ENV alike, as BuildKit's state environment). Proxy args never take part in expansion.
    pub fn lookup(&self, name: &str) -> Option<&Var> {
        self.vars
            .iter()
            .rev()
            .find(|v| v.name == name && v.kind != VarKind::Proxy)
    }

    /// Whether `name` is declared (even without a value).
    pub fn is_declared(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// The effective variables, one per name (last declaration order), for display.
    pub fn effective(&self) -> Vec<&Var> {
        let mut out: Vec<&Var> = Vec::new();
        for v in &self.vars {
            if let Some(w) = self.lookup(&v.name) {
                if !out.iter().any(|o| o.name == w.name) {
                    out.push(w);
                }
            } else if v.kind == VarKind::Proxy && !out.iter().any(|o| o.name == v.name) {
                out.push(v);
            }
        }
        out
    }

    /// The values words are expanded with, one per name in declaration order: ENVs and
    /// ARGs with values, without proxy args (what the build engine's state holds).
    pub fn word_env(&self) -> Vec<(String, String)> {
        self.effective()
            .into_iter()
            .filter(|v| v.kind != VarKind::Proxy)
            .filter_map(|v| Some((v.name.clone(), v.value.clone()?)))
            .collect()
    }

    /// The environment a `RUN` sees: ENVs plus ARGs with values, plus proxy args.
    pub fn run_env(&self) -> Vec<(String, String)> {
        self.effective()
            .into_iter()
            .filter_map(|v| Some((v.name.clone(), v.value.clone()?)))
            .collect()
    }
}

impl Env for Scope {
    fn get(&self, name: &str) -> Option<&str> {
        self.lookup(name)?.value.as_deref()
    }
    fn keys(&self) -> Vec<&str> {
        self.vars
            .iter()
            .filter(|v| v.kind != VarKind::Proxy && v.value.is_some())
            .map(|v| v.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, value: Option<&str>, kind: VarKind) -> Var {
        Var {
            name: name.into(),
            value: value.map(String::from),
            kind,
            line: 1,
        }
    }

    #[test]
    fn later_assignment_wins() {
        let mut s = Scope::default();
        s.push(var("A", Some("env"), VarKind::Env));
        s.push(var("A", Some("arg"), VarKind::Arg));
        s.push(var("B", Some("arg"), VarKind::Arg));
        s.push(var("B", Some("env"), VarKind::Env));
        s.push(var("P", Some("x"), VarKind::Proxy));
        s.push(var("D", None, VarKind::Arg));
        assert_eq!(s.get("A"), Some("arg"));
        assert_eq!(s.get("B"), Some("env"));
        assert_eq!(s.get("P"), None);
        assert_eq!(s.get("D"), None);
        assert!(s.is_declared("D"));
        assert_eq!(s.run_env().len(), 3);
        assert_eq!(s.word_env().len(), 2);
    }
}
