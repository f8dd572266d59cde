//! `POST /api/git`: `ADD <git URL>` over SSH for the tab, which has no SSH. serve fetches the remote with the agent
//! it was given as `--ssh default` (the agent `layerwright build` uses for git), through the CLI's own git code path
//! (`HttpFetcher::fetch_git`, the build's), and answers with what the tab's git module gives for an http(s) remote:
//! the commit's 40 hex digits, then a tar of the checkout, which the engine adds as natively. SSH remotes only (the
//! tab reads http(s) itself), behind the token, bounded in size.

use lw_engine::host::UrlFetcher;
use serde::Deserialize;
use serde_json::json;

use super::http::{Method, Request};
use super::reply::{header, read_small, Reply};
use super::{Ctx, MAX_JSON};

/// The bytes of a checkout's files serve hands to a tab (a page holds the checkout in memory).
pub const MAX_CHECKOUT: u64 = 1 << 30;
/// The entries of one checkout.
pub const MAX_ENTRIES: usize = 1_000_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GitIn {
    remote: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    keep_git_dir: bool,
}

/// Whether `remote` is reached over SSH: `ssh://…` or scp's `user@host:path` (as the engine's git sources name it).
fn over_ssh(remote: &str) -> bool {
    if remote.starts_with("ssh://") {
        return true;
    }
    let Some((user_host, path)) = remote.split_once(':') else {
        return false;
    };
    !remote.contains("://")
        && user_host.contains('@')
        && !user_host.contains('/')
        && !path.is_empty()
}

/// The checkout as the tab's git module answers: the commit, then a tar of the entries; or why not (too large).
fn encode(c: &lw_engine::host::GitCheckout) -> Result<Vec<u8>, String> {
    if c.entries.len() > MAX_ENTRIES {
        return Err(format!(
            "the checkout has {} entries, over serve's limit of {MAX_ENTRIES}",
            c.entries.len()
        ));
    }
    let size: u64 = c.entries.iter().map(|(_, d)| d.len() as u64).sum();
    if size > MAX_CHECKOUT {
        return Err(format!(
            "the checkout is {size} bytes, over serve's limit of {MAX_CHECKOUT} for a tab"
        ));
    }
    let mut w = lw_layer::tar::TarWriter::new(c.commit.as_bytes().to_vec(), Default::default());
    for (e, data) in &c.entries {
        w.append_bytes(e, data).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())
}

pub fn handle(ctx: &Ctx, req: &mut Request) -> Reply {
    if *req.method() != Method::Post {
        return Reply::text(405, "POST only");
    }
    let fail = |status: u16, msg: String| Reply::json(status, &json!({ "error": msg }));
    if !ctx.authed {
        return fail(
            401,
            "git over SSH needs the token (?token= or Authorization: Bearer)".into(),
        );
    }
    if !header(req, "content-type")
        .unwrap_or("")
        .starts_with("application/json")
    {
        return fail(
            415,
            "send {remote, reference, keepGitDir} as application/json".into(),
        );
    }
    let body = match read_small(req.as_reader(), MAX_JSON) {
        Ok(b) => b,
        Err(e) => return fail(413, e.to_string()),
    };
    let input: GitIn = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return fail(400, format!("bad git request: {e}")),
    };
    if !over_ssh(&input.remote) {
        return fail(
            400,
            format!(
                "{}: serve fetches git remotes over SSH only (a tab reads http(s) remotes itself)",
                input.remote
            ),
        );
    }
    // Only the agent serve was given: the one `layerwright build --ssh default` would use for git.
    let Some(agent) = ctx.st.cfg.ssh.get("default").cloned() else {
        return fail(
            409,
            format!(
                "{}: a git remote over SSH needs an SSH agent, and this serve has none: start it with \
                 layerwright serve --ssh default",
                input.remote
            ),
        );
    };
    let mut fetcher = crate::buildhost::HttpFetcher {
        ssh_agent: Some(agent),
        ..Default::default()
    };
    let checkout = match fetcher.fetch_git(&input.remote, &input.reference, input.keep_git_dir) {
        Ok(c) => c,
        Err(e) => return fail(502, e.to_string()),
    };
    match encode(&checkout) {
        Ok(b) => Reply::new(200)
            .header("Cache-Control", "no-store")
            .bytes("application/octet-stream", b),
        Err(e) => fail(413, format!("ADD {}: {e}", input.remote)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lw_layer::Entry;

    #[test]
    fn ssh_remotes_only() {
        for r in [
            "ssh://root@127.0.0.1:48769/repo.git",
            "git@github.com:o/r.git",
        ] {
            assert!(over_ssh(r), "{r}");
        }
        for r in [
            "https://127.0.0.1/r.git",
            "http://u@h:1/r.git",
            "git://h/r.git",
            "/srv/r.git",
            "h:r.git",
        ] {
            assert!(!over_ssh(r), "{r}");
        }
    }

    /// The answer reads back as the tab's `gitCheckout` reads lw-git's: the commit, then the entries.
    #[test]
    fn the_answer_is_the_commit_then_a_tar() {
        let c = lw_engine::host::GitCheckout {
            commit: "e4211549b1b160f28e0f1a26d9d7b89e0fd0d346".into(),
            entries: vec![
                (Entry::dir("d", 0o755), vec![]),
                (Entry::file("d/f", 0o644, 2), b"hi".to_vec()),
            ],
        };
        let b = encode(&c).unwrap();
        assert_eq!(&b[..40], c.commit.as_bytes());
        let mut r = lw_layer::tar::TarReader::new(&b[40..]);
        let mut got = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            let data = r.read_to_vec(u64::MAX).unwrap();
            got.push((e.path.clone(), data));
        }
        assert_eq!(
            got,
            vec![("d".into(), vec![]), ("d/f".into(), b"hi".to_vec())]
        );
    }
}
