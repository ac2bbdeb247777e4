//! Processes: `fork` with the green runtime in mind (Python's `multiprocessing.Process`).
//!
//! * [`Process::spawn`] forks. The child forgets the parent's hub (it shares the parent's
//!   epoll instance and must never touch it, see `hub::reset_after_fork`), runs the function
//!   on a fresh hub, and ends with `_exit`: status 0 after a normal return, 1 after a panic
//!   (whose message the panic hook has printed).
//! * The parent holds a *pidfd* for the child. `join` waits for it on the reactor like a
//!   socket — parking only the calling green thread — and reaps it with
//!   `waitid(P_PIDFD)`; signals go through `pidfd_send_signal`, so a recycled pid can never
//!   be hit.
//! * Every child is reaped: a `Process` dropped before its child ended hands the pidfd to a
//!   small reaper thread, so no zombie is left behind.
//! * A *daemon* child gets `PR_SET_PDEATHSIG`: the kernel kills it when the parent ends, even
//!   by SIGKILL. A daemon may not start children of its own (as in Python).

mod exit_rules;
mod parent;
mod pool;
mod reaper;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use parent::{ParentProcess, parent_process};
pub use pool::{AsyncResult, Pool, PoolBuilder, PoolError, Rejection, TaskError};

use crate::hub::reactor::Direction;
use crate::net::GreenFd;
use crate::sys::process as sys;

/// Set in a daemon child: it may not spawn processes.
static IS_DAEMON: AtomicBool = AtomicBool::new(false);

/// The pid of the calling process.
pub fn current_pid() -> u32 {
    std::process::id()
}

/// The pids of this process's children that are still running (Python's
/// `active_children()`), in the order they were spawned. Children spawned
/// [`detached`](Builder::detached) are not counted: nobody keeps track of them.
///
/// ```
/// use greenrt::process::{Process, active_children};
/// let child = Process::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)))?;
/// assert!(active_children().contains(&child.pid()));
/// child.join()?;
/// assert!(!active_children().contains(&child.pid()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn active_children() -> Vec<u32> {
    exit_rules::active()
}

/// The pid of this process's parent (Python's `parent_process().pid`); 1 or a subreaper's
/// pid once the parent has ended.
///
/// ```
/// use greenrt::ipc::Queue;
/// use greenrt::process::{Process, current_pid, parent_pid};
/// let pids: Queue<(u32, u32)> = Queue::new(4096)?;
/// let child = Process::spawn({
///     let pids = pids.clone();
///     move || pids.put(&(current_pid(), parent_pid())).unwrap()
/// })?;
/// assert_eq!(pids.get().unwrap(), (child.pid(), current_pid()));
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn parent_pid() -> u32 {
    sys::parent_pid() as u32
}

/// The name this process was given by [`Builder::name`] when it was spawned (Python's
/// `current_process().name`); `None` in the main process and in an unnamed child.
///
/// ```
/// use greenrt::process::{Builder, current_name};
/// assert_eq!(current_name(), None);
/// let child = Builder::new()
///     .name("worker-1")
///     .spawn(|| assert_eq!(current_name(), Some("worker-1")))
///     .unwrap();
/// assert!(child.join().unwrap().success());
/// ```
pub fn current_name() -> Option<&'static str> {
    let name = CURRENT_NAME.load(Ordering::Acquire);
    // SAFETY: a non-null pointer came from `Box::leak` in `set_current_name` and is never
    // freed; the string it points to is never changed.
    (!name.is_null()).then(|| unsafe { (*name).as_str() })
}

/// This process's name, set once in a child right after the fork (leaked on purpose: a
/// `&'static str` handed out may be in use anywhere).
static CURRENT_NAME: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());

fn set_current_name(name: Option<String>) {
    let leaked = name.map_or(std::ptr::null_mut(), |n| {
        Box::leak(Box::new(n)) as *mut String
    });
    CURRENT_NAME.store(leaked, Ordering::Release);
}

/// Configures a process before spawning it.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    /// Internal (process pools): end with the parent like a daemon, yet may fork.
    exit_with_parent: bool,
    /// Not waited for (nor terminated) when the parent ends.
    detached: bool,
}

impl Builder {
    /// A builder for a named, non-daemon process.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the process (shown by `Process::name`).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// A detached child is left alone when its parent ends: not waited for, not terminated
    /// (by default the parent waits for its children at exit, as Python's does; see
    /// NOTES.md, "Exit rules").
    pub fn detached(mut self, detached: bool) -> Builder {
        self.detached = detached;
        self
    }

    /// A daemon ends when its parent ends, even if the parent is killed.
    ///
    /// ```
    /// use greenrt::process::Builder;
    /// let child = Builder::new().name("sweeper").daemon(true).spawn(|| {
    ///     // a daemon may not have children of its own (multiprocessing's rule)
    ///     let refused = Builder::new().spawn(|| {}).unwrap_err();
    ///     assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
    /// })?;
    /// assert_eq!((child.name(), child.is_daemon()), (Some("sweeper"), true));
    /// assert!(child.join()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// The child ends when its parent ends (like a daemon) but may still fork: for a pool's
    /// worker factory, whose workers must not outlive the pool's owner.
    pub(crate) fn exit_with_parent(mut self) -> Builder {
        self.exit_with_parent = true;
        self
    }

    /// Forks a child that runs `f` and exits. See the module docs.
    ///
    /// Errors: a daemon trying to spawn (`PermissionDenied`), or `fork`/`pidfd_open` failing.
    pub fn spawn(self, f: impl FnOnce()) -> io::Result<Process> {
        if IS_DAEMON.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "daemonic processes are not allowed to have children",
            ));
        }
        let parent = current_pid() as sys::Pid;
        let gate = sys::ForkGate::new()?;
        let pid = {
            // No other thread of ours may hold stdout's or stderr's lock at the fork: the child
            // (which flushes stdout at its end, and prints panics) would wait for it forever.
            // Held here, they belong to this thread, which the child continues.
            let (_out, _err) = (std::io::stdout().lock(), std::io::stderr().lock());
            // SAFETY: the child runs only `run_child`, which never returns (it ends with _exit).
            let pid = unsafe { sys::fork()? };
            if pid == 0 {
                if !gate.wait_open() {
                    sys::exit_now(1);
                }
                set_current_name(self.name.clone());
                run_child(self.daemon, self.exit_with_parent, parent, f);
            }
            pid
        };
        crate::hub::trace_fork(pid as u32);
        let pidfd = match sys::pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                gate.abort(pid); // out of fds: the child never runs `f`, nothing is left
                return Err(e);
            }
        };
        gate.open();
        if !self.detached {
            exit_rules::track(&pidfd, pid as u32, self.daemon || self.exit_with_parent);
        }
        Ok(Process {
            pid: pid as u32,
            name: self.name,
            daemon: self.daemon,
            pidfd: Some(GreenFd::new(pidfd)),
            status: Mutex::new(None),
        })
    }
}

/// In the child: a fresh hub, the daemon rules, `f`, then `_exit`.
fn run_child(daemon: bool, exit_with_parent: bool, parent: sys::Pid, f: impl FnOnce()) -> ! {
    crate::hub::reset_after_fork();
    parent::set_spawned_by(parent as u32);
    if daemon || exit_with_parent {
        IS_DAEMON.store(daemon, Ordering::Relaxed);
        // Set the death signal, then re-check: the parent may have died before it was set.
        if sys::die_with_parent().is_err() || sys::parent_pid() != parent {
            sys::exit_now(1);
        }
    }
    let code = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => 0,
        Err(_) => 1, // the panic hook has printed the message
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // `_exit` skips `atexit`: wait for this child's own children and remove the named
    // objects it made, as a parent's exit does.
    exit_rules::apply();
    crate::ipc::remove_created_now();
    sys::exit_now(code)
}

/// A child process; see the module docs.
///
/// ```
/// let child = greenrt::process::Process::spawn(|| println!("hello from the child")).unwrap();
/// assert!(child.join().unwrap().success());
/// ```
pub struct Process {
    pid: u32,
    name: Option<String>,
    daemon: bool,
    /// `None` once handed to the reaper in `Drop`.
    pidfd: Option<GreenFd<OwnedFd>>,
    /// The exit status, once reaped.
    status: Mutex<Option<ExitStatus>>,
}

impl Process {
    /// Forks a child running `f`; see [`Builder::spawn`].
    pub fn spawn(f: impl FnOnce()) -> io::Result<Process> {
        Builder::new().spawn(f)
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether it was started as a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Waits for the child to end and reaps it. From a green thread this parks only that
    /// green thread (the pidfd is on the reactor).
    pub fn join(&self) -> io::Result<ExitStatus> {
        self.wait(None)
    }

    /// Waits at most `timeout`; `Ok(None)` if the child still runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sleeper = || std::thread::sleep(Duration::from_secs(5));
    /// let child = greenrt::process::Process::spawn(sleeper)?;
    /// assert!(child.join_timeout(Duration::from_millis(20))?.is_none()); // still running
    /// child.kill()?;
    /// assert!(child.join_timeout(Duration::from_secs(5))?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        match self.wait(Some(timeout)) {
            Ok(status) => Ok(Some(status)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the child still runs (reaping it if it has ended).
    pub fn is_alive(&self) -> bool {
        self.reaped().is_none()
            && matches!(self.try_reap(), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// The exit code once it ended normally (`None` while running or after a signal).
    ///
    /// ```
    /// let child = greenrt::process::Process::spawn(|| std::process::exit(3))?;
    /// child.join()?;
    /// assert!(!child.is_alive());
    /// assert_eq!(child.exit_code(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn exit_code(&self) -> Option<i32> {
        if self.reaped().is_none() {
            let _ = self.try_reap();
        }
        self.reaped().and_then(|s| s.code())
    }

    /// An fd that becomes readable when the child ends (Python's `Process.sentinel`): its
    /// pidfd. Wait on it with [`ipc::wait_ready`](crate::ipc::wait_ready) together with pipe
    /// ends and other processes, or hand it to your own `poll`/`epoll`. It stays open, and
    /// readable after the end, until the `Process` is dropped or closed.
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.fd().source().as_fd()
    }

    /// Releases the child's resources (its pidfd) once it has ended, returning how it ended
    /// (Python's `Process.close()`). While it still runs, hands the `Process` back — Python
    /// raises `ValueError` there. Every later use is a compile error: `close` takes the value.
    ///
    /// ```
    /// let child = greenrt::process::Process::spawn(|| {})?;
    /// child.join()?;
    /// let status = child.close().expect("it has ended");
    /// assert!(status.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(self) -> Result<ExitStatus, Process> {
        match self.reaped().or_else(|| self.try_reap().ok()) {
            Some(status) => Ok(status), // dropping self closes the pidfd; nothing to reap
            None => Err(self),
        }
    }

    /// Sends SIGTERM.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let sleeper = || std::thread::sleep(std::time::Duration::from_secs(5));
    /// let child = greenrt::process::Process::spawn(sleeper)?;
    /// child.terminate()?;
    /// let status = child.join()?;
    /// assert_eq!(status.signal(), Some(15)); // ended by SIGTERM
    /// assert_eq!(child.exit_code(), None); // no exit code after a signal
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn terminate(&self) -> io::Result<()> {
        self.signal(sys::SIGTERM)
    }

    /// Sends SIGKILL.
    pub fn kill(&self) -> io::Result<()> {
        self.signal(sys::SIGKILL)
    }

    fn signal(&self, signal: i32) -> io::Result<()> {
        if self.reaped().is_some() {
            return Ok(()); // already gone and reaped: nothing to signal
        }
        sys::pidfd_send_signal(self.fd().source(), signal)
    }

    fn wait(&self, timeout: Option<Duration>) -> io::Result<ExitStatus> {
        if let Some(status) = self.reaped() {
            return Ok(status);
        }
        self.fd()
            .retry_for(Direction::Read, timeout, || self.try_reap(), |_| false)
    }

    fn try_reap(&self) -> io::Result<ExitStatus> {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = *status {
            return Ok(s);
        }
        let s = sys::try_reap(self.fd().source())?;
        *status = Some(s);
        Ok(s)
    }

    fn reaped(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fd(&self) -> &GreenFd<OwnedFd> {
        self.pidfd
            .as_ref()
            .expect("the pidfd is taken only in Drop")
    }
}

impl Drop for Process {
    /// A child that has not been reaped goes to the reaper thread: never a zombie.
    fn drop(&mut self) {
        if self.reaped().is_some() || self.try_reap().is_ok() {
            return;
        }
        if let Some(fd) = self.pidfd.take() {
            reaper::adopt(fd.into_source());
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("status", &self.reaped())
            .finish()
    }
}
