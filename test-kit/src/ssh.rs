//! An ssh-agent (openssh-client) with a new ed25519 key, for the tests of `build --ssh` and the BuildKit corpus's
//! ssh cases; killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::process::run_ok;

pub struct Agent {
    child: Child,
    /// The agent's socket (`SSH_AUTH_SOCK`).
    pub sock: PathBuf,
    /// The private key file; the agent holds it when started with `load`.
    pub key: PathBuf,
}

impl Agent {
    /// An agent listening on `dir/agent.sock` and a key in `dir/id`; `load` adds the key to the agent.
    pub fn start(dir: &Path, load: bool) -> Agent {
        std::fs::create_dir_all(dir).unwrap();
        let (sock, key) = (dir.join("agent.sock"), dir.join("id"));
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) is installed");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "lw-test", "-f"])
                .arg(&key),
        );
        for _ in 0..500 {
            // The socket file appears at bind(), before the agent listens.
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if load {
            run_ok(
                Command::new("ssh-add")
                    .arg("-q")
                    .arg(&key)
                    .env("SSH_AUTH_SOCK", &sock),
            );
        }
        Agent { child, sock, key }
    }

    /// The key's fingerprint as `ssh-add -l` and `ssh-keygen -l` print it.
    pub fn fingerprint(&self) -> String {
        let out = run_ok(Command::new("ssh-keygen").arg("-lf").arg(&self.key));
        out.split_whitespace().nth(1).unwrap().to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
