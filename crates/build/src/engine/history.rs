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

/// COPY/ADD history: the instruction text as written, marked as BuildKit does.
pub(crate) fn copy(code: &str) -> String {
    format!("{code} # buildkit")
}

/// Go's `map[80/tcp:{} 443/tcp:{}]` for EXPOSE.
pub(crate) fn go_port_map(ports: &[String]) -> String {
    let mut v: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
    v.sort();
    format!("map[{}]", v.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            go_port_map(&["443/tcp".into(), "80/tcp".into()]),
            "map[443/tcp:{} 80/tcp:{}]"
        );
    }
}
