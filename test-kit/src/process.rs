//! Processes and the host as tests see them: run a command and require success, free loopback ports, and the
//! leftovers a test must not leave (mounts, processes).

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// Run `cmd` and require success (stderr and stdout shown when it fails); returns stdout as bytes.
pub fn output_ok(cmd: &mut Command) -> Vec<u8> {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    o.stdout
}

/// Run `cmd` and require success; returns stdout as text.
pub fn run_ok(cmd: &mut Command) -> String {
    String::from_utf8(output_ok(cmd)).expect("the command's output is UTF-8")
}

/// Names the one test a re-run of the test binary is for (see [`alone`]).
pub const ALONE_ENV: &str = "LW_TEST_ALONE";

/// For a test that needs its process to itself (it signals the whole process, say): in the re-run made for it,
/// returns `true` and the test goes on. Otherwise re-runs this test binary with only this test
/// (`NAME --exact --test-threads=1`) in a process of its own, shows its output, requires it to have run and
/// passed, and returns `false` (the caller returns). `if !alone() { return; }` starts such a test.
pub fn alone() -> bool {
    let name = crate::policy::test_name();
    if std::env::var(ALONE_ENV).is_ok_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let o = Command::new(exe)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE_ENV, &name)
        .output()
        .unwrap_or_else(|e| panic!("re-running {name} alone: {e}"));
    let out = String::from_utf8_lossy(&o.stdout);
    print!("{out}");
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.status.success(),
        "{name}, run alone, failed ({})",
        o.status
    );
    assert!(
        out.contains("test result: ok. 1 passed"),
        "{name}, run alone, did not run"
    );
    false
}

/// Extract the tar file `tar` into `dir` (created) with the system's `tar`.
pub fn untar(tar: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    run_ok(Command::new("tar").arg("-xf").arg(tar).arg("-C").arg(dir));
}

/// A 127.0.0.1 port free right now (another process may take it before the caller binds it: retry on EADDRINUSE).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Lines of /proc/self/mounts that mention `under` (as mount point or source): a test's leftovers, none of
/// which may outlive it.
pub fn mounts_under(under: &Path) -> Vec<String> {
    let s = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let u = under.to_string_lossy().into_owned();
    s.lines()
        .filter(|l| l.contains(&u))
        .map(String::from)
        .collect()
}

/// Mount points at or under `dir`, deepest first (the order to unmount them in).
pub fn mount_points_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().to_string();
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v
}

/// Processes (other than this one) whose command line mentions `marker`: a RUN step's or a runtime's leftovers.
pub fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(marker) {
            out.push(format!("{pid}: {cmd}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ok_returns_stdout_and_fails_loudly() {
        assert_eq!(run_ok(Command::new("sh").args(["-c", "echo hi"])), "hi\n");
        let r = std::panic::catch_unwind(|| {
            run_ok(Command::new("sh").args(["-c", "echo no >&2; exit 3"]))
        });
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("no"), "{msg}");
    }

    #[test]
    fn this_process_is_not_among_the_processes_naming_a_marker() {
        let marker = format!("lw-test-kit-marker-{}", std::process::id());
        assert!(processes_with(&marker).is_empty());
        // `read` is a shell builtin: the shell forks nothing whose copy of its command line could be seen too.
        let mut child = Command::new("sh")
            .args(["-c", "read x; :", &marker])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mine = format!("{}: sh -c", child.id());
        // The forked child shows the parent's command line until it has exec'd: wait for the exec (up to 10 s).
        let t0 = std::time::Instant::now();
        let mut found = processes_with(&marker);
        while !found.iter().any(|p| p.starts_with(&mine))
            && t0.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            found = processes_with(&marker);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(&mine), "{found:?}");
    }
}
