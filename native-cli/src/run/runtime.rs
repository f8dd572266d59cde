//! Running a bundle with an OCI runtime (runc, crun): finding one that works, streaming its output live, killing
//! the container on Ctrl-C or timeout, and always deleting it afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// An OCI runtime binary with its own state directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub binary: PathBuf,
    pub state: PathBuf,
}

pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first of runc, crun that answers `--version`.
pub fn find_runtime(preferred: Option<&str>) -> Result<PathBuf> {
    let names: Vec<&str> = match preferred {
        Some(p) => vec![p],
        None => vec!["runc", "crun"],
    };
    for n in names {
        let p = if n.contains('/') {
            Some(PathBuf::from(n))
        } else {
            find_in_path(n)
        };
        if let Some(p) = p {
            let ok = Command::new(&p)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if ok.is_ok_and(|s| s.success()) {
                return Ok(p);
            }
        }
    }
    match preferred {
        Some(p) => bail!("OCI runtime {p} not found, or it does not answer --version"),
        None => bail!("no OCI runtime found: install runc or crun"),
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether SIGINT/SIGTERM arrived while a [`SignalGuard`] was installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// While alive, SIGINT/SIGTERM only set a flag (so we can kill the container and clean up); the previous handlers
/// come back when the last guard is dropped (guards may overlap when steps run on several threads).
pub struct SignalGuard(());

/// (live guards, the handlers to restore).
static HANDLERS: Mutex<(usize, Vec<(libc::c_int, libc::sigaction)>)> = Mutex::new((0, Vec::new()));

impl SignalGuard {
    pub fn install() -> SignalGuard {
        let mut h = HANDLERS.lock().unwrap_or_else(|p| p.into_inner());
        if h.0 == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            for sig in [libc::SIGINT, libc::SIGTERM] {
                unsafe {
                    let mut sa: libc::sigaction = std::mem::zeroed();
                    sa.sa_sigaction = on_signal as *const () as usize;
                    libc::sigemptyset(&mut sa.sa_mask);
                    let mut prev: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, &sa, &mut prev) == 0 {
                        h.1.push((sig, prev));
                    }
                }
            }
        }
        h.0 += 1;
        SignalGuard(())
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        let mut h = HANDLERS.lock().unwrap_or_else(|p| p.into_inner());
        h.0 -= 1;
        if h.0 == 0 {
            for (sig, prev) in h.1.drain(..) {
                unsafe {
                    libc::sigaction(sig, &prev, std::ptr::null_mut());
                }
            }
        }
    }
}

/// Deletes the container (forcefully) when dropped, whatever happened.
struct ContainerGuard<'a> {
    rt: &'a Runtime,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .rt
            .command()
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// How the process ended.
pub enum Exit {
    Code(i32),
    Interrupted,
    TimedOut,
}

impl Runtime {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.state);
        c
    }

    /// IDs of the containers in our state directory.
    pub fn list(&self) -> Result<Vec<String>> {
        if !self.state.is_dir() {
            return Ok(vec![]);
        }
        let o = self.command().args(["list", "-q"]).output()?;
        Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Run the bundle at `bundle` as container `id`, streaming its stdout and stderr to `output`.
    pub fn run(
        &self,
        bundle: &Path,
        id: &str,
        timeout: Option<Duration>,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<Exit> {
        // Callers hold a SignalGuard for the whole step, so Ctrl-C lands in our flag rather than killing us.
        std::fs::create_dir_all(&self.state)?;
        let _container = ContainerGuard {
            rt: self,
            id: id.to_string(),
        };
        let mut child = {
            use std::os::unix::process::CommandExt;
            self.command()
                .arg("run")
                .arg("--bundle")
                .arg(bundle)
                .arg(id)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                // Its own process group: a terminal's Ctrl-C reaches us, and we decide how to stop the container.
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting {}", self.binary.display()))?
        };
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let mut readers = Vec::new();
        for mut pipe in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped")) as Box<dyn Read + Send>,
        ] {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 << 10];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        let start = Instant::now();
        let mut stopped: Option<Exit> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(chunk) => output(&chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if stopped.is_none() {
                let why = if interrupted() {
                    Some(Exit::Interrupted)
                } else if timeout.is_some_and(|t| start.elapsed() > t) {
                    Some(Exit::TimedOut)
                } else {
                    None
                };
                if let Some(w) = why {
                    let _ = self
                        .command()
                        .args(["kill", "--all", id, "KILL"])
                        .stderr(Stdio::null())
                        .status();
                    let _ = child.kill();
                    stopped = Some(w);
                }
            }
        }
        let status = child.wait()?;
        for r in readers {
            let _ = r.join();
        }
        if let Some(s) = stopped {
            return Ok(s);
        }
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => Ok(Exit::Code(c)),
            (None, Some(s)) => Ok(Exit::Code(128 + s)),
            _ => Err(anyhow!("the runtime ended without a status")),
        }
    }
}

/// What `exec` runs in a container.
pub struct ExecProcess<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    /// uid, gid.
    pub user: (u32, u32),
    pub tty: bool,
    /// `-i`: with a terminal, our stdin is relayed to it (without one, the `stdin` given to `exec` says it).
    pub interactive: bool,
}

impl Runtime {
    /// Run the bundle as container `id` with `stdio` handed through to its process (runc's pass-through mode), or,
    /// with `tty: Some(stdin)`, with a terminal relayed to our stdio (and our stdin relayed to it when `stdin`);
    /// `started` gets the pid that runs it. On SIGINT/SIGTERM (with a [`SignalGuard`] held) the container gets
    /// SIGTERM, then SIGKILL after `grace`. Returns the process's exit code (128+N when killed by signal N).
    pub fn run_passthrough(
        &self,
        bundle: &Path,
        id: &str,
        stdio: [Stdio; 3],
        tty: Option<bool>,
        grace: Duration,
        started: &mut dyn FnMut(u32),
    ) -> Result<i32> {
        std::fs::create_dir_all(&self.state)?;
        let _container = ContainerGuard {
            rt: self,
            id: id.to_string(),
        };
        if let Some(stdin) = tty {
            // Ours goes raw before the container starts, as docker's client does, so typed input is not echoed
            // by our terminal as well as the container's, and the console's `\r\n` passes through unchanged.
            let _raw = RawTerminal::enter();
            let mut create = self.command();
            create.arg("create").arg("--bundle").arg(bundle);
            let mut start = self.command();
            start.args(["start", id]);
            let rt = self.clone();
            let cid = id.to_string();
            let launch = super::console::Launch {
                create,
                operands: vec![id.to_string()],
                start: Some(start),
                kill: Box::new(move |_, sig| rt.kill(&cid, sig)),
                grace,
                stdin,
                name: id,
            };
            return super::console::run(launch, &interrupted, started);
        }
        let [stdin, stdout, stderr] = stdio;
        let mut child = {
            use std::os::unix::process::CommandExt;
            let mut cmd = self.command();
            cmd.arg("run")
                .arg("--bundle")
                .arg(bundle)
                .arg(id)
                .stdin(stdin)
                .stdout(stdout)
                .stderr(stderr);
            // Its own process group, so a terminal's Ctrl-C reaches only us.
            cmd.process_group(0);
            cmd.spawn()
                .with_context(|| format!("starting {}", self.binary.display()))?
        };
        let mut seen = false;
        let mut term_at: Option<Instant> = None;
        let mut killed = false;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            // Signals can reach the container only once runc has started it.
            if !seen {
                seen = self.is_running(id);
                if seen {
                    started(child.id());
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            if interrupted() && term_at.is_none() {
                self.kill(id, "TERM");
                term_at = Some(Instant::now());
            }
            if !killed && term_at.is_some_and(|t| t.elapsed() > grace) {
                self.kill(id, "KILL");
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => Ok(c),
            (None, Some(s)) => Ok(128 + s),
            _ => Err(anyhow!("the runtime ended without a status")),
        }
    }

    /// Send `signal` (runc's name: TERM, KILL...) to container `id`: KILL to every process, others to its first
    /// process only (as `docker stop` does). Errors are ignored (it may have ended already).
    pub fn kill(&self, id: &str, signal: &str) {
        let all: &[&str] = if signal == "KILL" { &["--all"] } else { &[] };
        let _ = self
            .command()
            .arg("kill")
            .args(all)
            .args([id, signal])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Run `args` in running container `id` (runc exec: the container's process settings, with these overridden),
    /// stdio passed through, or with `p.tty` a terminal relayed to ours; returns the exit code. Without a terminal
    /// runc forwards our signals to the process; with one, SIGINT/SIGTERM send it SIGTERM, then SIGKILL after 10 s.
    pub fn exec(&self, id: &str, p: &ExecProcess, stdin: Stdio) -> Result<i32> {
        let (args, env, cwd, user, tty) = (p.args, p.env, p.cwd, p.user, p.tty);
        let mut cmd = self.command();
        cmd.args(["exec", "--cwd", cwd, "--user"])
            .arg(format!("{}:{}", user.0, user.1));
        for e in env {
            cmd.arg("--env").arg(e);
        }
        if tty {
            let _signals = SignalGuard::install();
            let _raw = RawTerminal::enter();
            cmd.args(["--tty", "--detach"]);
            let launch = super::console::Launch {
                create: cmd,
                operands: std::iter::once(id)
                    .chain(args.iter().map(String::as_str))
                    .map(String::from)
                    .collect(),
                start: None,
                kill: Box::new(|pid, sig| {
                    let n = if sig == "KILL" {
                        libc::SIGKILL
                    } else {
                        libc::SIGTERM
                    };
                    // SAFETY: kill(2) with a pid the runtime reported for the process we run.
                    unsafe { libc::kill(pid as i32, n) };
                }),
                grace: Duration::from_secs(10),
                stdin: p.interactive,
                name: id,
            };
            return super::console::run(launch, &interrupted, &mut |_| {});
        }
        let status = cmd
            .arg(id)
            .args(args)
            .stdin(stdin)
            .status()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => Ok(c),
            (None, Some(s)) => Ok(128 + s),
            _ => Err(anyhow!("the runtime ended without a status")),
        }
    }

    /// Whether runc reports container `id` as running.
    pub fn is_running(&self, id: &str) -> bool {
        let Ok(o) = self
            .command()
            .args(["state", id])
            .stderr(Stdio::null())
            .output()
        else {
            return false;
        };
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .is_ok_and(|v| v["status"] == "running")
    }

    /// Forget container `id` (killing what is left of it).
    pub fn delete(&self, id: &str) {
        let _ = self
            .command()
            .args(["delete", "--force", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Our own terminal (stdin's, else stdout's) in raw mode until dropped, when its previous mode comes back.
struct RawTerminal {
    fd: i32,
    saved: libc::termios,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        // SAFETY: isatty/tcgetattr/tcsetattr only read and write the termios struct given, on fds we hold open.
        unsafe {
            let fd = [0, 1].into_iter().find(|&fd| libc::isatty(fd) == 1)?;
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            (libc::tcsetattr(fd, libc::TCSANOW, &raw) == 0).then_some(RawTerminal { fd, saved })
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}
