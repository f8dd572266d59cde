//! `ADD <git URL>` on the host. An HTTP(S) remote is fetched by lw-git, the tab's client too (git's smart HTTP
//! protocol, v2 or v0, else the dumb one), its requests made here with ureq; an SSH remote by lw-git over the pipes
//! of `ssh HOST git-upload-pack PATH`. Anything else (`git://`) is fetched by the `git` command into a scratch
//! repository and checked out; its work tree (and `.git` when kept) becomes the entries the engine adds.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use lw_engine::host::GitCheckout;
use lw_engine::Error;
use lw_layer::Entry;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How a fetch authenticates: an `Authorization` value for HTTP(S) remotes (from BuildKit's `GIT_AUTH_HEADER` /
/// `GIT_AUTH_TOKEN` secrets) and the `--ssh default` agent for SSH remotes.
#[derive(Debug, Default, Clone)]
pub struct GitAuth {
    pub header: Option<String>,
    pub ssh_agent: Option<PathBuf>,
}

/// The ssh git runs: the environment's `GIT_SSH_COMMAND` (git's own variable, e.g. to name a known-hosts file),
/// else `ssh -o BatchMode=yes`: host keys are checked against the user's known_hosts, never accepted blindly.
fn ssh_command() -> String {
    std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "ssh -o BatchMode=yes".into())
}

/// The `git` command, for `git://` remotes only (no TLS, no credentials, no agent: the protocol has none).
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never ask for credentials or host keys on a terminal: a build is not interactive.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", ssh_command())
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(|e| format!("running git (Debian package git): {e}"))?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// Check out `reference` (empty: the remote's HEAD) of `remote`: lw-git for HTTP(S), `git` for the rest.
pub fn checkout(
    remote: &str,
    reference: &str,
    keep_git_dir: bool,
    auth: &GitAuth,
) -> Result<GitCheckout, Error> {
    if remote.starts_with("http://") || remote.starts_with("https://") {
        return checkout_http(remote, reference, keep_git_dir, auth);
    }
    if let Some((host, port, path)) = ssh_target(remote) {
        return checkout_ssh(remote, reference, keep_git_dir, auth, (host, port, path));
    }
    checkout_with_git(remote, reference, keep_git_dir)
}

/// (`[user@]host`, port, path) of an SSH remote: `ssh://[user@]host[:port]/path` or git's `[user@]host:path`.
fn ssh_target(remote: &str) -> Option<(String, Option<String>, String)> {
    if let Some(rest) = remote.strip_prefix("ssh://") {
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => (h, Some(p)),
            _ => (authority, None),
        };
        return Some((host.to_string(), port.map(str::to_string), path.to_string()));
    }
    if remote.contains("://") {
        return None;
    }
    let (host, path) = remote.split_once(':')?;
    (!host.is_empty() && !host.contains('/') && !path.is_empty())
        .then(|| (host.to_string(), None, path.to_string()))
}

/// Read pkt-lines from `r` up to and with the first flush (git-upload-pack's advertisement); at most `max` bytes.
fn read_advertisement(r: &mut impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut head = [0u8; 4];
        r.read_exact(&mut head)?;
        out.extend_from_slice(&head);
        let len = std::str::from_utf8(&head)
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .ok_or_else(|| std::io::Error::other(format!("{:?} is not a pkt-line length", head)))?;
        if len == 0 {
            return Ok(out);
        }
        let mut body = vec![0u8; len.saturating_sub(4)];
        r.read_exact(&mut body)?;
        out.extend(body);
        if out.len() as u64 > max {
            return Err(std::io::Error::other("the advertisement is too large"));
        }
    }
}

/// lw-git's [`lw_git::Fetch::over_pipe`] over `ssh [-p PORT] HOST git-upload-pack 'PATH'` (the ssh command and
/// agent as for `git`): the advertisement read, the request written, the answer read until the program exits.
fn checkout_ssh(
    remote: &str,
    reference: &str,
    keep_git_dir: bool,
    auth: &GitAuth,
    (host, port, path): (String, Option<String>, String),
) -> Result<GitCheckout, Error> {
    use std::io::Write;
    use std::process::Stdio;
    let fail = |m: String| Error::Host(format!("ADD {remote}: {m}"));
    if host.starts_with('-') || path.starts_with('-') {
        return Err(fail(format!("invalid SSH remote {remote:?}")));
    }
    // As git runs GIT_SSH_COMMAND: through the shell, the arguments appended.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{} \"$@\"", ssh_command()))
        .arg("ssh");
    if let Some(p) = &port {
        cmd.args(["-p", p]);
    }
    cmd.arg(&host)
        .arg(format!("git-upload-pack '{}'", path.replace('\'', "'\\''")));
    if let Some(sock) = &auth.ssh_agent {
        cmd.env("SSH_AUTH_SOCK", sock);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("running ssh: {e}")))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no ssh stdout".into()))?;
    let mut stdin = child.stdin.take();
    let limits = lw_git::Limits::default();
    let max = limits.max_fetch;
    let mut f = lw_git::Fetch::over_pipe(remote, reference, keep_git_dir, limits);
    let result = (|| -> Result<lw_git::Checkout, String> {
        loop {
            match f.step().map_err(|e| e.to_string())? {
                lw_git::Next::Done(c) => return Ok(c),
                lw_git::Next::Get { url, .. } => {
                    let adv = read_advertisement(&mut stdout, max).map_err(|e| e.to_string())?;
                    f.answer_with(&url, None, Some(adv))
                        .map_err(|e| e.to_string())?;
                }
                lw_git::Next::Post { url, body, .. } => {
                    let mut w = stdin.take().ok_or("git-upload-pack asked twice")?;
                    w.write_all(&body).map_err(|e| e.to_string())?;
                    drop(w);
                    let mut data = Vec::new();
                    (&mut stdout)
                        .take(max + 1)
                        .read_to_end(&mut data)
                        .map_err(|e| e.to_string())?;
                    f.answer_with(&url, None, Some(data))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    })();
    drop(stdin);
    let _ = child.kill();
    let out = child.wait_with_output();
    let stderr = out
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    match result {
        Ok(c) => Ok(GitCheckout {
            commit: c.commit,
            entries: c.entries,
        }),
        Err(e) if stderr.is_empty() => Err(fail(e)),
        Err(e) => Err(fail(format!("{e} (ssh: {stderr})"))),
    }
}

/// lw-git's [`lw_git::Fetch`] driven with ureq: every request it names, with the headers it gives (the
/// `Authorization` value on those for the remote's own origin).
fn checkout_http(
    remote: &str,
    reference: &str,
    keep_git_dir: bool,
    auth: &GitAuth,
) -> Result<GitCheckout, Error> {
    let fail = |m: String| Error::Host(format!("ADD {remote}: {m}"));
    let roots = crate::tls::roots().map_err(|e| fail(format!("{e:#}")))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(10)
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let limits = lw_git::Limits::default();
    let max = limits.max_fetch;
    let mut f = lw_git::Fetch::new(remote, reference, keep_git_dir, limits)
        .with_authorization(auth.header.clone());
    loop {
        let (url, headers, body) = match f.step().map_err(|e| fail(e.to_string()))? {
            lw_git::Next::Done(c) => {
                return Ok(GitCheckout {
                    commit: c.commit,
                    entries: c.entries,
                })
            }
            lw_git::Next::Get { url, headers } => (url, headers, None),
            lw_git::Next::Post { url, headers, body } => (url, headers, Some(body)),
        };
        let resp = match &body {
            None => {
                let mut req = agent.get(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                req.call()
            }
            Some(b) => {
                let mut req = agent.post(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                req.send(&b[..])
            }
        }
        .map_err(|e| fail(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        if status != 200 && status != 404 {
            return Err(fail(format!("{url}: HTTP {status}")));
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut data = Vec::new();
        resp.into_body()
            .into_reader()
            .take(max + 1)
            .read_to_end(&mut data)
            .map_err(|e| fail(format!("{url}: {e}")))?;
        let answer = (status == 200).then_some(data);
        f.answer_with(&url, ct.as_deref(), answer)
            .map_err(|e| fail(e.to_string()))?;
        // The server's progress lines are not shown: the build's own progress names the step.
        let _ = f.progress();
    }
}

/// Check out `reference` of `remote` with the `git` command (`git://`, which has no authentication).
fn checkout_with_git(
    remote: &str,
    reference: &str,
    keep_git_dir: bool,
) -> Result<GitCheckout, Error> {
    let fail = |m: String| Error::Host(format!("ADD {remote}: {m}"));
    let dir = std::env::temp_dir().join(format!(
        "lw-git-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    fs::create_dir(&dir).map_err(|e| fail(e.to_string()))?;
    let scratch = Scratch(dir);
    let d = scratch.0.as_path();
    git(d, &["init", "-q"]).map_err(fail)?;
    let r = if reference.is_empty() {
        "HEAD"
    } else {
        reference
    };
    // A reference is never an option of git's (`#--upload-pack=...` would run a command); `--` ends the options.
    if r.starts_with('-') || remote.starts_with('-') {
        return Err(fail(format!("invalid git reference {r:?}")));
    }
    let fetch = |extra: &[&str]| {
        let mut args = vec!["fetch", "-q", "--no-tags"];
        args.extend(extra);
        args.extend(["--", remote, r]);
        git(d, &args)
    };
    // A shallow fetch where the server allows one; git's dumb HTTP protocol does not, so fetch it all there.
    if fetch(&["--depth=1"]).is_err() {
        fetch(&[]).map_err(|e| fail(format!("fetching {r}: {e}")))?;
    }
    let commit = git(d, &["rev-parse", "FETCH_HEAD^{commit}"]).map_err(fail)?;
    git(
        d,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "-q",
            "--detach",
            &commit,
        ],
    )
    .map_err(fail)?;
    let mut entries = Vec::new();
    walk(d, "", keep_git_dir, &mut entries).map_err(|e| fail(e.to_string()))?;
    Ok(GitCheckout { commit, entries })
}

fn walk(
    dir: &Path,
    rel: &str,
    keep_git_dir: bool,
    out: &mut Vec<(Entry, Vec<u8>)>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name == ".git" && !keep_git_dir {
            continue;
        }
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let m = fs::symlink_metadata(e.path())?;
        let in_git = path == ".git" || path.starts_with(".git/");
        if m.file_type().is_symlink() {
            let target = fs::read_link(e.path())?.to_string_lossy().into_owned();
            out.push((Entry::symlink(&path, &target), vec![]));
        } else if m.is_dir() {
            out.push((Entry::dir(&path, 0o755), vec![]));
            walk(&e.path(), &path, keep_git_dir, out)?;
        } else if m.is_file() {
            // Git keeps only the executable bit: the work tree is 0644/0755 whatever the umask.
            let mode = if in_git {
                m.permissions().mode() & 0o777
            } else if m.mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            let data = fs::read(e.path())?;
            out.push((Entry::file(&path, mode, data.len() as u64), data));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_remotes_are_split_as_git_splits_them() {
        let t = ssh_target;
        assert_eq!(
            t("ssh://root@127.0.0.1:48769/repo.git"),
            Some((
                "root@127.0.0.1".into(),
                Some("48769".into()),
                "/repo.git".into()
            ))
        );
        assert_eq!(
            t("ssh://host/srv/repo.git"),
            Some(("host".into(), None, "/srv/repo.git".into()))
        );
        assert_eq!(
            t("git@example.com:org/repo.git"),
            Some(("git@example.com".into(), None, "org/repo.git".into()))
        );
        assert_eq!(t("git://example.com/repo.git"), None);
        assert_eq!(t("https://example.com/repo.git"), None);
    }

    #[test]
    fn an_advertisement_is_read_up_to_its_flush() {
        let mut input: &[u8] = b"0009abcd\n0000after";
        assert_eq!(
            read_advertisement(&mut input, 100).unwrap(),
            b"0009abcd\n0000"
        );
        assert_eq!(input, b"after");
        let mut bad: &[u8] = b"zzzz";
        assert!(read_advertisement(&mut bad, 100).is_err());
    }
}
