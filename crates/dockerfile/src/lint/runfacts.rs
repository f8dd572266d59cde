//! What one RUN does as a whole: which package indexes it reads, what it installs, and
//! which clean-ups it runs later in the same RUN (or makes unneeded with a cache or
//! tmpfs mount), so the package-manager rules judge the RUN, not a single command.

use super::shellscan::Cmd;
use crate::model::Instruction;

/// A `--mount` of a RUN, reduced to what the cache rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub kind: String,
    pub target: String,
}

/// The `--mount` flags of a RUN (`type=cache,target=/root/.cache/pip`).
pub(crate) fn mounts(ins: &Instruction) -> Vec<Mount> {
    ins.flags
        .iter()
        .filter(|f| f.name == "mount")
        .filter_map(|f| f.value.as_deref())
        .map(|v| {
            let mut m = Mount {
                kind: "bind".into(),
                target: String::new(),
            };
            for field in v.split(',') {
                let (k, val) = field.split_once('=').unwrap_or((field, ""));
                let val = val.trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "type" => m.kind = val.to_ascii_lowercase(),
                    "target" | "dst" | "destination" => m.target = val.trim_end_matches('/').into(),
                    _ => {}
                }
            }
            m
        })
        .collect()
}

/// Whether a cache or tmpfs mount covers `dir` (so files written there stay out of the layer).
pub(crate) fn mounted(mounts: &[Mount], dir: &str) -> bool {
    mounts.iter().any(|m| {
        matches!(m.kind.as_str(), "cache" | "tmpfs")
            && !m.target.is_empty()
            && (dir == m.target || dir.starts_with(&format!("{}/", m.target)))
    })
}

/// `apt-get install -s` (`--simulate`, `--dry-run`, ...): prints what it would do,
/// installs nothing (postgres probes for an optional package this way).
pub(crate) fn apt_simulated(c: &Cmd) -> bool {
    c.has_arg(|a| {
        matches!(
            a,
            "--simulate" | "--dry-run" | "--just-print" | "--no-act" | "--recon"
        ) || (a.starts_with('-') && !a.starts_with("--") && a.contains('s'))
    })
}

/// The program's base name and its subcommand (first non-option argument).
pub(crate) fn prog_sub(c: &Cmd) -> (&str, &str) {
    (
        c.program().unwrap_or(""),
        c.subcommand().map(|t| t.text.as_str()).unwrap_or(""),
    )
}

/// `apt-get`, `apt`, `aptitude`.
pub(crate) fn is_apt(p: &str) -> bool {
    matches!(p, "apt-get" | "apt" | "aptitude")
}

/// Whether the command reads the apt package index (what `apt-get update` is for).
pub(crate) fn reads_apt_index(c: &Cmd) -> bool {
    let (p, s) = prog_sub(c);
    (is_apt(p)
        && matches!(
            s,
            "install"
                | "reinstall"
                | "upgrade"
                | "dist-upgrade"
                | "full-upgrade"
                | "build-dep"
                | "source"
                | "download"
                | "satisfy"
                | "policy"
                | "show"
                | "search"
        ))
        || p == "apt-cache"
        || p == "mk-build-deps"
}

/// Whether the command runs a script or a nested shell (`bash x.sh`, `./install.sh`,
/// `sh -c "..."`), whose commands the scanner does not see.
pub(crate) fn runs_script(c: &Cmd) -> bool {
    let Some(p) = c.program() else { return false };
    let shell = matches!(p, "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh");
    (shell && !c.args().is_empty())
        || p.ends_with(".sh")
        || c.words[c.program_index().unwrap_or(0)]
            .text
            .starts_with("./")
}

/// Whether the command removes the apt lists (`rm -rf /var/lib/apt/lists/*`,
/// `apt-get dist-clean`, `find /var/lib/apt/lists ... -delete`).
pub(crate) fn cleans_apt_lists(c: &Cmd) -> bool {
    let (p, s) = prog_sub(c);
    (matches!(p, "rm" | "find") && c.has_arg(|a| a.starts_with("/var/lib/apt/lists")))
        || (is_apt(p) && s == "dist-clean")
}

/// Whether the command clears pip's download cache.
pub(crate) fn cleans_pip_cache(c: &Cmd) -> bool {
    let (p, s) = prog_sub(c);
    (p == "rm"
        && c.has_arg(|a| {
            a.contains(".cache/pip")
                || a.trim_end_matches('/').ends_with("/.cache")
                || a.starts_with("~/.cache")
        }))
        || (p.starts_with("pip") && s == "cache" && c.has_arg(|a| a == "purge"))
}

/// Whether the command clears apk's cache.
pub(crate) fn cleans_apk_cache(c: &Cmd) -> bool {
    let (p, s) = prog_sub(c);
    (p == "rm" && c.has_arg(|a| a.starts_with("/var/cache/apk") || a.starts_with("/etc/apk/cache")))
        || (p == "apk" && s == "cache" && c.has_arg(|a| a == "clean"))
}

/// What a package install command installs.
pub(crate) struct Install<'c> {
    /// The package arguments (not options, not the subcommand).
    pub packages: Vec<&'c str>,
    /// `apk add --virtual NAME` / `-t NAME`.
    pub virtual_name: Option<&'c str>,
}

/// The install command of a system package manager, if `c` is one.
pub(crate) fn system_install(c: &Cmd) -> Option<Install<'_>> {
    let (p, s) = prog_sub(c);
    let installs = matches!(
        (p, s),
        (
            "apt-get" | "apt" | "aptitude" | "yum" | "dnf" | "microdnf" | "zypper",
            "install"
        ) | ("apk", "add")
    );
    if !installs {
        return None;
    }
    let args = c.args();
    let mut packages = Vec::new();
    let mut virtual_name = None;
    let mut seen_sub = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].text.as_str();
        if !seen_sub && a == s {
            seen_sub = true;
        } else if (a == "--virtual" || a == "-t") && p == "apk" {
            virtual_name = args.get(i + 1).map(|t| t.text.as_str());
            i += 1;
        } else if matches!(
            a,
            "-o" | "-c"
                | "-t"
                | "--option"
                | "--target-release"
                | "-X"
                | "--repository"
                | "--setopt"
                | "--enablerepo"
                | "--disablerepo"
        ) {
            i += 1;
        } else if !a.starts_with('-') && seen_sub {
            packages.push(a);
        }
        i += 1;
    }
    Some(Install {
        packages,
        virtual_name,
    })
}

/// Whether a command after the install removes `package` again: an explicit purge,
/// `apk del` of the package or of its virtual group, or `apt-mark auto` followed by
/// `purge --auto-remove` / `autoremove` (the official images' pattern).
pub(crate) fn removed_later(
    cmds: &[Cmd],
    after: usize,
    package: &str,
    group: Option<&str>,
) -> bool {
    let mut marked_auto = false;
    for c in cmds.iter().skip(after + 1) {
        let (p, s) = prog_sub(c);
        let names = |c: &Cmd| -> bool { c.has_arg(|a| a == package || Some(a) == group) };
        match (p, s) {
            ("apt-mark", "auto") => marked_auto = true,
            ("apt-get" | "apt" | "aptitude", "purge" | "remove" | "autoremove") => {
                let auto =
                    s == "autoremove" || c.has_arg(|a| a == "--auto-remove" || a == "--autoremove");
                if names(c) || (marked_auto && auto) {
                    return true;
                }
            }
            ("apk", "del") | ("yum" | "dnf" | "microdnf" | "zypper", "remove" | "erase")
                if names(c) =>
            {
                return true;
            }
            _ => {}
        }
    }
    false
}

/// Whether the `cd` at `k` goes somewhere WORKDIR should not persist: a temporary
/// directory, a source tree under /usr/src, one the RUN removes later, a `cd` the RUN
/// undoes (`cd /` later), or `cd` inside a subshell `( cd x && make )`.
pub(crate) fn temporary_cd(cmds: &[Cmd], k: usize) -> bool {
    let Some(dir) = cmds[k].args().first().map(|t| t.text.trim_end_matches('/')) else {
        return false;
    };
    if k > 0 && cmds[k - 1].op_after.as_deref() == Some("(") {
        return true;
    }
    let tmp = dir.starts_with("/tmp")
        || dir.contains("mktemp")
        || ["tmp", "temp"]
            .iter()
            .any(|t| dir.to_ascii_lowercase().contains(t))
        || matches!(dir, "-" | "" | ".." | "~");
    // `/usr/src` holds source trees being built; a later `cd /` or `cd -` returns.
    let src = dir.starts_with("/usr/src");
    let returns = cmds.iter().skip(k + 1).any(|c| {
        c.program() == Some("cd")
            && c.args()
                .first()
                .is_some_and(|t| matches!(t.text.as_str(), "/" | "-" | "~"))
    });
    tmp || src
        || returns
        || cmds.iter().skip(k + 1).any(|c| {
            c.program() == Some("rm")
                && c.has_arg(|a| {
                    let a = a.trim_end_matches('/');
                    !a.starts_with('-')
                        && a.len() > 1
                        && (dir == a || dir.starts_with(&format!("{a}/")))
                })
        })
}

/// Whether the `|` after command `k` separates `case` patterns (`amd64 | arm64)`): the
/// "pipeline" is single words and ends with `)`.
pub(crate) fn case_pattern(cmds: &[Cmd], k: usize) -> bool {
    let mut j = k + 1;
    while j < cmds.len() {
        if cmds[j].words.len() != 1 {
            return false;
        }
        match cmds[j].op_after.as_deref() {
            Some("|") => j += 1,
            Some(")") => return true,
            _ => return false,
        }
    }
    false
}

/// Whether the command at `k` (the left side of a pipe) only prints: `echo`, `printf`,
/// `yes`, `true`, or a `{ ...; }` group made of them.
pub(crate) fn prints_only(cmds: &[Cmd], k: usize) -> bool {
    let printer = |c: &Cmd| matches!(c.program(), Some("echo" | "printf" | "yes" | "true"));
    if cmds[k].words.first().map(|w| w.text.as_str()) != Some("}") {
        return printer(&cmds[k]);
    }
    // Walk back to the `{` that opens the group.
    for j in (0..k).rev() {
        if !printer(&cmds[j]) {
            return false;
        }
        if cmds[j].words.first().map(|w| w.text.as_str()) == Some("{") {
            return true;
        }
    }
    false
}
