//! The `created_by` text BuildKit writes into image history, so `history` reads the same as after `docker build`.

use lw_dockerfile::parser::go_quote;

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn go_slice(v: &[String]) -> String {
    let parts: Vec<String> = v.iter().map(|s| go_quote(s.as_bytes())).collect();
    format!("[{}]", parts.join(" "))
}

/// `RUN |2 A=1 B=2 /bin/sh -c make # buildkit`: the build args in effect prefix the command.
pub(crate) fn run(args: &[(String, String)], argv: &[String]) -> String {
    let mut s = String::from("RUN ");
    if !args.is_empty() {
        s.push_str(&format!("|{} ", args.len()));
        for (k, v) in args {
            s.push_str(&format!("{k}={v} "));
        }
    }
    s.push_str(&argv.join(" "));
    s.push_str(" # buildkit");
    s
}

/// What BuildKit's COPY/ADD history shows: only these flags, the expanded sources, `<<NAME` per heredoc source.
pub(crate) struct CopyText<'a> {
    pub keyword: &'a str,
    pub parents: bool,
    pub chown: &'a str,
    pub chmod: &'a str,
    pub srcs: &'a [String],
    pub heredocs: &'a [String],
    pub dest: &'a str,
}

/// `COPY [--parents] [--chown=U] [--chmod=M] SRC... <<NAME... DEST # buildkit` (no --from, --link, --exclude,
/// --checksum or --unpack; the JSON form prints as plain words).
pub(crate) fn copy(c: &CopyText) -> String {
    let mut s = c.keyword.to_string();
    if c.parents {
        s.push_str(" --parents");
    }
    if !c.chown.is_empty() {
        s.push_str(&format!(" --chown={}", c.chown));
    }
    if !c.chmod.is_empty() {
        s.push_str(&format!(" --chmod={}", c.chmod));
    }
    for src in c.srcs {
        s.push(' ');
        s.push_str(src);
    }
    for h in c.heredocs {
        s.push_str(&format!(" <<{h}"));
    }
    s.push(' ');
    s.push_str(c.dest);
    s.push_str(" # buildkit");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text() {
        let srcs = vec!["a b".to_string(), "c".to_string()];
        let docs = vec!["EOT".to_string()];
        let t = CopyText {
            keyword: "ADD",
            parents: true,
            chown: "1:2",
            chmod: "0755",
            srcs: &srcs,
            heredocs: &docs,
            dest: "/d/",
        };
        assert_eq!(
            copy(&t),
            "ADD --parents --chown=1:2 --chmod=0755 a b c <<EOT /d/ # buildkit"
        );
    }

    #[test]
    fn texts() {
        assert_eq!(
            go_slice(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\""]"#
        );
        assert_eq!(
            run(&[], &["/bin/sh".into(), "-c".into(), "make".into()]),
            "RUN /bin/sh -c make # buildkit"
        );
        assert_eq!(
            run(
                &[("A".into(), "1".into())],
                &["/bin/sh".into(), "-c".into(), "make".into()]
            ),
            "RUN |1 A=1 /bin/sh -c make # buildkit"
        );
    }
}
