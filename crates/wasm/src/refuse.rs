//! The build options a tab cannot take (`ssh`, `buildContexts`: an SSH agent's socket, directories and images named
//! on the machine) and the message refusing them, which names the first Dockerfile line that needs the option.

use lw_dockerfile::parser::{self, Node};

/// The refusal of option `key` (the CLI's `flag`): `Dockerfile:LINE: INSTRUCTION` of the first instruction that
/// would use it (`names`: the named contexts given), then why and what to use instead.
pub fn refusal(dockerfile: &str, key: &str, flag: &str, names: &[String]) -> String {
    let at = parser::parse(dockerfile.as_bytes()).ok().and_then(|df| {
        df.children.iter().find(|n| uses(n, key, names)).map(|n| {
            format!(
                "Dockerfile:{}: {}: ",
                n.start_line,
                n.original_lossy().trim()
            )
        })
    });
    format!(
        "build: {}{key} is not available in a browser tab; use the CLI: layerwright build {flag} ...",
        at.unwrap_or_default()
    )
}

/// Whether instruction `n` (or its ONBUILD trigger) needs an SSH agent (`key` "ssh": a `type=ssh` mount, an ADD of
/// a git remote over SSH) or one of the named contexts `names` (`FROM NAME`, `--from=NAME`, a mount's `from=NAME`).
fn uses(n: &Node, key: &str, names: &[String]) -> bool {
    if n.next.as_deref().is_some_and(|t| uses(t, key, names)) {
        return true;
    }
    // Flags as written, without their dashes: `mount=type=ssh`, `from=NAME`.
    let flags: Vec<String> = n
        .flags_lossy()
        .into_iter()
        .map(|f| f.trim_start_matches('-').to_string())
        .collect();
    let args = n.args_lossy();
    if key == "ssh" {
        let ssh_mount = flags.iter().any(|f| {
            f.strip_prefix("mount=")
                .is_some_and(|m| m.split(',').any(|kv| kv == "type=ssh"))
        });
        let ssh_git = n.keyword() == "add"
            && args
                .iter()
                .any(|a| a.starts_with("ssh://") || a.starts_with("git@"));
        return ssh_mount || ssh_git;
    }
    let named = |v: &str| names.iter().any(|c| c.eq_ignore_ascii_case(v));
    let from_image = n.keyword() == "from" && args.first().is_some_and(|a| named(a));
    let from_flag = flags.iter().any(|f| {
        f.strip_prefix("from=").is_some_and(named)
            || f.strip_prefix("mount=").is_some_and(|m| {
                m.split(',')
                    .any(|kv| kv.strip_prefix("from=").is_some_and(named))
            })
    });
    from_image || from_flag
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn names_the_first_line_that_needs_the_option() {
        let df =
            "FROM busybox\nRUN true\nRUN --mount=type=cache,target=/c --mount=type=ssh,id=k echo\n";
        assert_eq!(
            refusal(df, "ssh", "--ssh", &[]),
            "build: Dockerfile:3: RUN --mount=type=cache,target=/c --mount=type=ssh,id=k echo: ssh is not \
             available in a browser tab; use the CLI: layerwright build --ssh ..."
        );
        let df = "FROM scratch\nCOPY --from=Ctx /a /\n";
        let names = ["ctx".to_string()];
        assert!(
            refusal(df, "buildContexts", "--build-context", &names).starts_with(
                "build: Dockerfile:2: COPY --from=Ctx /a /: buildContexts is not available"
            )
        );
        let df = "FROM busybox\nRUN --mount=from=ctx,target=/m true\n";
        assert!(refusal(df, "buildContexts", "--build-context", &names).contains("Dockerfile:2:"));
        let df = "FROM ctx\n";
        assert!(refusal(df, "buildContexts", "--build-context", &names).contains("Dockerfile:1:"));
        // No line uses it: the option alone is refused.
        assert_eq!(
            refusal("FROM scratch\n", "ssh", "--ssh", &[]),
            "build: ssh is not available in a browser tab; use the CLI: layerwright build --ssh ..."
        );
    }
}
