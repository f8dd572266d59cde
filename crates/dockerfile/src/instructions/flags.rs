//! `--flag` validation, as BuildKit's `BFlags`: each instruction declares the flags it
//! accepts; unknown, repeated (except multi-value) and malformed flags are errors.

use crate::go_compat::values::with_suggestion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    String,
    Strings,
}

#[derive(Debug, Clone)]
struct FlagDef {
    name: &'static str,
    kind: FlagType,
    value: String,
    values: Vec<String>,
    used: bool,
}

/// A flag error and the index of the flag that caused it.
#[derive(Debug, Clone)]
pub(crate) struct FlagError {
    pub message: String,
    pub index: usize,
}

/// The declared flags of one instruction and the flags found on it.
#[derive(Debug, Clone)]
pub(crate) struct BFlags {
    args: Vec<String>,
    defs: Vec<FlagDef>,
    /// Names in the order they were first used.
    used_order: Vec<String>,
}

impl BFlags {
    pub fn new(args: Vec<String>) -> Self {
        BFlags {
            args,
            defs: Vec::new(),
            used_order: Vec::new(),
        }
    }

    fn add(&mut self, name: &'static str, kind: FlagType, value: &str) {
        debug_assert!(
            self.defs.iter().all(|d| d.name != name),
            "duplicate flag definition {name}"
        );
        self.defs.push(FlagDef {
            name,
            kind,
            value: value.to_string(),
            values: Vec::new(),
            used: false,
        });
    }

    pub fn add_bool(&mut self, name: &'static str, default: bool) {
        self.add(name, FlagType::Bool, if default { "true" } else { "false" });
    }

    pub fn add_string(&mut self, name: &'static str, default: &str) {
        self.add(name, FlagType::String, default);
    }

    pub fn add_strings(&mut self, name: &'static str) {
        self.add(name, FlagType::Strings, "");
    }

    fn def(&self, name: &str) -> &FlagDef {
        self.defs
            .iter()
            .find(|d| d.name == name)
            .expect("flag declared")
    }

    /// The value of a string flag (its default when unused).
    pub fn string(&self, name: &str) -> String {
        self.def(name).value.clone()
    }

    /// The value of a bool flag.
    pub fn is_true(&self, name: &str) -> bool {
        self.def(name).value == "true"
    }

    /// All values of a multi-value flag.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.def(name).values.clone()
    }

    /// Whether the flag appeared.
    pub fn is_used(&self, name: &str) -> bool {
        self.def(name).used
    }

    /// Flag names that appeared, in order of first use.
    pub fn used(&self) -> Vec<String> {
        self.used_order.clone()
    }

    /// `BFlags.Parse`.
    pub fn parse(&mut self) -> Result<(), FlagError> {
        let args = self.args.clone();
        for (index, a) in args.iter().enumerate() {
            let err = |message: String| FlagError { message, index };
            if a == "--" {
                return Ok(());
            }
            if !a.starts_with("--") {
                return Err(err(format!("arg should start with -- : {a}")));
            }
            let (flag_name, value, has_value) = match a.split_once('=') {
                Some((n, v)) => (n, v, true),
                None => (a.as_str(), "", false),
            };
            let arg = &flag_name[2..];
            let Some(pos) = self.defs.iter().position(|d| d.name == arg) else {
                let mut names: Vec<&str> = self.defs.iter().map(|d| d.name).collect();
                names.sort_unstable();
                return Err(err(with_suggestion(
                    format!("unknown flag: {flag_name}"),
                    arg,
                    &names,
                    true,
                )));
            };
            let def = &mut self.defs[pos];
            if def.used && def.kind != FlagType::Strings {
                return Err(err(format!("duplicate flag specified: {flag_name}")));
            }
            if !def.used {
                self.used_order.push(arg.to_string());
            }
            def.used = true;
            match def.kind {
                FlagType::Bool => {
                    if has_value && value.is_empty() {
                        return Err(err(format!("missing a value on flag: {flag_name}")));
                    }
                    match crate::go_compat::unicode::to_lower(value.as_bytes()).as_str() {
                        "true" | "" => def.value = "true".into(),
                        "false" => def.value = "false".into(),
                        _ => {
                            return Err(err(format!(
                                "expecting boolean value for flag {flag_name}, not: {value}"
                            )))
                        }
                    }
                }
                FlagType::String => {
                    if !has_value {
                        return Err(err(format!("missing a value on flag: {flag_name}")));
                    }
                    def.value = value.to_string();
                }
                FlagType::Strings => {
                    if !has_value {
                        return Err(err(format!("missing a value on flag: {flag_name}")));
                    }
                    def.values.push(value.to_string());
                }
            }
        }
        Ok(())
    }
}
