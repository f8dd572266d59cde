//! `layerwright serve`'s `/api/git` (git remotes over SSH fetched for the tab with serve's `--ssh default` agent):
//! what it refuses, each with a message saying why. The fetch itself is the build's (`HttpFetcher::fetch_git`), and
//! the BuildKit corpus in Chromium (`www/tests/buildkit-corpus.test.mjs`, case `add_git_ssh`) builds through it.

use crate::common::serve::Served;

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn error(r: &crate::common::serve::Resp) -> String {
    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn git_over_ssh_is_refused_without_the_token_an_agent_or_an_ssh_remote() {
    let tmp = tempfile::tempdir().unwrap();
    let body =
        br#"{"remote": "ssh://root@127.0.0.1:1/repo.git", "reference": "v1", "keepGitDir": false}"#;
    let auth = ("Authorization", "Bearer test-token-0123456789");

    // serve started without --ssh: no agent to fetch with.
    let srv = Served::start(&tmp.path().join("plain"), |_| {});
    let r = srv.req("POST", "/api/git", &[JSON], body);
    assert_eq!(r.status, 401);
    assert!(error(&r).contains("needs the token"), "{}", error(&r));
    let r = srv.req("POST", "/api/git", &[JSON, auth], body);
    assert_eq!(r.status, 409);
    assert_eq!(
        error(&r),
        "ssh://root@127.0.0.1:1/repo.git: a git remote over SSH needs an SSH agent, and this serve has none: \
         start it with layerwright serve --ssh default"
    );
    let r = srv.req("GET", "/api/git", &[auth], b"");
    assert_eq!(r.status, 405);
    drop(srv);

    // With an agent (any socket: nothing is fetched here), a remote that is not SSH is the tab's own to read.
    let srv = Served::start(&tmp.path().join("agent"), |cfg| {
        cfg.ssh
            .insert("default".into(), tmp.path().join("agent.sock"));
    });
    let r = srv.req(
        "POST",
        "/api/git",
        &[JSON, auth],
        br#"{"remote": "https://127.0.0.1:1/repo.git"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        error(&r).contains("serve fetches git remotes over SSH only"),
        "{}",
        error(&r)
    );
    // An SSH remote nobody serves: git's own error, naming the remote, from the build's code path.
    let r = srv.req("POST", "/api/git", &[JSON, auth], body);
    assert_eq!(r.status, 502);
    assert!(
        error(&r).starts_with("ADD ssh://root@127.0.0.1:1/repo.git: "),
        "{}",
        error(&r)
    );
}
