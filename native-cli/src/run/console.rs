//! A container's terminal, made the way containerd makes it: `runc create --console-socket` hands us the console's
//! master before the process starts, we relay it to our own stdio, and we reap the process as its subreaper.
//!
//! Why not `runc run` in the foreground: runc clears ONLCR on the console only after it receives it, which can be
//! after the container's shell has saved its terminal settings (ONLCR on) and restores them, while runc has also
//! turned OPOST back on for our terminal; both sides then translate `\n` and the output shows `\r\r\n`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};

/// Sends a signal (runc's name: TERM, KILL) to the process whose pid is given.
pub type Kill = Box<dyn Fn(u32, &str)>;

/// How a process with a console is started, and how it is stopped.
pub struct Launch<'a> {
    /// `runc create` or `runc exec --detach` with their flags, but not the console and pid-file ones, added here.
    pub create: Command,
    /// What follows the flags: the container's ID (and for exec, the command).
    pub operands: Vec<String>,
    /// `runc start ID` after a create; nothing after an exec (it runs at once).
    pub start: Option<Command>,
    /// Sends a signal (runc's name) to the process (its pid given); called on SIGINT/SIGTERM, then with KILL
    /// after `grace`.
    pub kill: Kill,
    pub grace: Duration,
    /// Whether our stdin is relayed to the console (`-i`).
    pub stdin: bool,
    /// Names the socket's directory (the container's ID).
    pub name: &'a str,
}

/// A directory only we can enter, for the console socket (so nobody else can connect and hand us a console of
/// their own), in the temporary directory: a socket's path must be short. Removed on drop.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn make(name: &str) -> Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        let short: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let p = std::env::temp_dir().join(format!(
            "layerwright-console-{}-{short}",
            std::process::id()
        ));
        // Not create_all: a directory someone else made first is refused.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .with_context(|| format!("making {}", p.display()))?;
        Ok(PrivateDir(p))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `l`'s process with a console relayed to our stdin/stdout; `started` gets its pid once it runs. Returns its
/// exit code (128+N when killed by signal N).
pub fn run(
    l: Launch<'_>,
    interrupted: &dyn Fn() -> bool,
    started: &mut dyn FnMut(u32),
) -> Result<i32> {
    // The process is runc's grandchild; once runc create has exited it is ours to wait for.
    // SAFETY: prctl with an int argument only sets a flag on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!(
            "making this process a subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
    let dir = PrivateDir::make(l.name)?;
    let sock = dir.0.join("sock");
    let pid_file = dir.0.join("pid");
    let listener = UnixListener::bind(&sock).context("making the console socket")?;
    let mut create = l.create;
    create
        .arg("--console-socket")
        .arg(&sock)
        .arg("--pid-file")
        .arg(&pid_file)
        .args(&l.operands)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let st = create.status().context("starting the runtime")?;
    if !st.success() {
        bail!("the runtime could not create the container's process ({st})");
    }
    // runc has connected and sent the console before create returned; the connection waits in the backlog.
    listener.set_nonblocking(true)?;
    let (conn, _) = listener.accept().context("the runtime sent no console")?;
    let master = recv_fd(&conn).context("receiving the container's console")?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .context("reading the runtime's pid file")?
        .trim()
        .parse()
        .context("the runtime's pid file")?;
    let _winch = Winch::install();
    resize(&master);
    if let Some(mut start) = l.start {
        let st = start.stdin(Stdio::null()).stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("the runtime could not start the container ({st})");
        }
    }
    started(pid as u32);
    let output = relay_output(&master)?;
    if l.stdin {
        relay_input(&master)?;
    }
    let status = wait(pid, &l.kill, l.grace, interrupted, &master)?;
    // What the process wrote just before it ended is still in the console: read to its end (EIO once every
    // holder of the console's other side is gone), but do not hang on a descendant that kept it open.
    let _ = output.recv_timeout(Duration::from_secs(2));
    Ok(status)
}

/// Waits for `pid` (ours as subreaper), passing on interrupts and window-size changes.
fn wait(
    pid: i32,
    kill: &dyn Fn(u32, &str),
    grace: Duration,
    interrupted: &dyn Fn() -> bool,
    master: &OwnedFd,
) -> Result<i32> {
    let mut term_at: Option<Instant> = None;
    let mut killed = false;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the status int given.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return Ok(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                return Ok(128 + libc::WTERMSIG(status));
            }
            continue;
        }
        if r < 0 {
            return Err(anyhow!(
                "waiting for the container's process: {}",
                std::io::Error::last_os_error()
            ));
        }
        if interrupted() && term_at.is_none() {
            kill(pid as u32, "TERM");
            term_at = Some(Instant::now());
        }
        if !killed && term_at.is_some_and(|t| t.elapsed() > grace) {
            kill(pid as u32, "KILL");
            killed = true;
        }
        if WINCH.swap(false, Ordering::SeqCst) {
            resize(master);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Copies the console to our stdout on a thread; the channel closes when the console ends.
fn relay_output(master: &OwnedFd) -> Result<mpsc::Receiver<()>> {
    let mut from = File::from(master.try_clone()?);
    // A file of our stdout's fd, not `io::stdout()`, whose line buffering would hold back a prompt.
    let mut to = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        drop(tx);
    });
    Ok(rx)
}

/// Copies our stdin to the console on a thread, until our stdin ends; it is not waited for (a read of a terminal
/// cannot be cancelled), and ends with this process.
fn relay_input(master: &OwnedFd) -> Result<()> {
    let mut to = File::from(master.try_clone()?);
    let mut from = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// The fd runc sends over `conn` (one SCM_RIGHTS message).
fn recv_fd(conn: &UnixStream) -> Result<OwnedFd> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut data = [0u8; 256];
    // Room for one control message carrying one int, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    // SAFETY: msghdr points at buffers that outlive the call; the CMSG macros walk only `control`, whose length
    // recvmsg has set, and the fd is read from a message the kernel marked SCM_RIGHTS.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        if libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return Ok(OwnedFd::from_raw_fd(fd));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    bail!("the runtime's message held no file descriptor")
}

/// Gives the console our terminal's size (stdin's, else stdout's); nothing when neither is a terminal.
fn resize(master: &OwnedFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write only the winsize struct given.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if [0, 1]
            .into_iter()
            .any(|fd| libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0)
        {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

static WINCH: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: libc::c_int) {
    WINCH.store(true, Ordering::SeqCst);
}

/// SIGWINCH noted in [`WINCH`] while held; the previous handler comes back on drop.
struct Winch(libc::sigaction);

impl Winch {
    fn install() -> Winch {
        // SAFETY: sigaction with a handler that only stores an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_winch as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut prev: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGWINCH, &sa, &mut prev);
            Winch(prev)
        }
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        // SAFETY: restores the handler saved by `install`.
        unsafe {
            libc::sigaction(libc::SIGWINCH, &self.0, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_fd_takes_the_fd_sent() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(b"console").unwrap();
        // SAFETY: sendmsg with one SCM_RIGHTS message built in a buffer of the right size.
        unsafe {
            let mut byte = [0u8; 1];
            let mut iov = libc::iovec {
                iov_base: byte.as_mut_ptr().cast(),
                iov_len: 1,
            };
            let mut control = [0u64; 8];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), tmp.as_raw_fd());
            assert_eq!(libc::sendmsg(a.as_raw_fd(), &msg, 0), 1);
        }
        let mut got = File::from(recv_fd(&b).unwrap());
        use std::io::Seek;
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "console");
    }

    #[test]
    fn recv_fd_refuses_a_message_without_one() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"x").unwrap();
        let e = recv_fd(&b).unwrap_err();
        assert!(e.to_string().contains("no file descriptor"), "{e}");
    }
}
