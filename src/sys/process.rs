//! Processes: `fork`, pidfds, reaping, signals, the parent-death signal.
//!
//! A *pidfd* (Linux 5.3) is a file descriptor that names one process for good: unlike a pid it
//! cannot be recycled while we hold it, it becomes readable when the process exits (so a green
//! thread can wait for it on the reactor like a socket), `waitid(P_PIDFD)` reaps exactly that
//! process, and `pidfd_send_signal` never hits a stranger that inherited a reused pid.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};

/// A process id as the kernel spells it.
pub(crate) type Pid = libc::pid_t;

/// The signals `Process::terminate` and `Process::kill` send.
pub(crate) const SIGTERM: libc::c_int = libc::SIGTERM;
pub(crate) const SIGKILL: libc::c_int = libc::SIGKILL;

/// `fork(2)`: `Ok(0)` in the child, `Ok(pid)` in the parent.
///
/// # Safety
/// In a multi-threaded process the child has only the calling thread; it must not touch
/// locks another thread may have held at the fork (see NOTES.md, "fork").
pub(crate) unsafe fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the caller takes on fork's rules, stated above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(pid)
    }
}

/// A one-shot gate across a `fork`: the child waits at it until the parent has what it needs
/// to own the child (its pidfd), then runs; a parent that cannot go on kills and reaps the
/// child instead, so a failed spawn runs nothing and leaves no zombie.
pub(crate) struct ForkGate {
    read: OwnedFd,
    write: OwnedFd,
}

impl ForkGate {
    /// A pipe for the gate: fails (with nothing forked yet) when the fd table is full.
    pub(crate) fn new() -> io::Result<ForkGate> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: two fresh descriptors that nobody else owns.
        Ok(unsafe {
            ForkGate {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }

    /// In the child: waits until the parent opens the gate (true) or it is closed (false).
    /// Raw syscalls: the child may not use the hub or the `monkey` hooks yet.
    pub(crate) fn wait_open(self) -> bool {
        drop(self.write);
        let mut byte = 0u8;
        loop {
            // SAFETY: a one-byte read into `byte` on our own pipe.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_read,
                    self.read.as_raw_fd(),
                    &mut byte as *mut u8,
                    1usize,
                )
            };
            if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return n == 1;
            }
        }
    }

    /// In the parent: lets the child run.
    pub(crate) fn open(self) {
        let byte = 1u8;
        // SAFETY: a one-byte write from `byte` on our own pipe; a pipe has room for it.
        unsafe {
            libc::syscall(
                libc::SYS_write,
                self.write.as_raw_fd(),
                &byte as *const u8,
                1usize,
            )
        };
    }

    /// In the parent: the child must not run. It is killed where it waits and reaped.
    pub(crate) fn abort(self, child: libc::pid_t) {
        // SAFETY: `child` is our own child, not yet reaped, so its pid is still ours.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            while libc::waitpid(child, std::ptr::null_mut(), 0) < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
    }
}

/// A pidfd for child `pid`, non-blocking and close-on-exec.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; PIDFD_NONBLOCK is O_NONBLOCK.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Reaps the process if it has exited: `Ok(Some(status))`, or `Err(WouldBlock)` while it runs.
pub(crate) fn try_reap(pidfd: &OwnedFd) -> io::Result<ExitStatus> {
    let info = wait_pidfd(pidfd, libc::WEXITED | libc::WNOHANG)?;
    // SAFETY: waitid filled `info` for a child state change (or left it zeroed).
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Err(io::ErrorKind::WouldBlock.into()); // still running
    }
    Ok(ExitStatus::from_raw(match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        _ => status, // killed by a signal
    }))
}

/// Sends `signal` to the process named by `pidfd` (never to a recycled pid).
pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Asks the kernel to SIGKILL this process when its parent (thread) ends.
pub(crate) fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The parent's pid.
pub(crate) fn parent_pid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// Ends the process at once with `code`: no atexit handlers, no thread-local destructors —
/// what a forked child must do, since those belong to the parent's copy of the program.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// What `/proc` says about a pid, for telling a live lock owner from a dead one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PidState {
    /// No such process, or only its zombie: it holds nothing any more.
    Gone,
    /// A running (or stopped) process that started at this many clock ticks after boot.
    Alive { start_ticks: u64 },
}

/// Looks up `pid` without signalling it: `kill(pid, 0)`, then `/proc/<pid>/stat` for its
/// state and start time (field 22, in clock ticks since boot).
pub(crate) fn pid_state(pid: u32) -> PidState {
    // SAFETY: signal 0 only checks that the process exists; it delivers nothing.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return PidState::Gone;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return PidState::Gone;
    };
    // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("X");
    if state == "Z" || state == "X" || state == "x" {
        return PidState::Gone;
    }
    // After the state (field 3) come fields 4..; the start time is field 22.
    match fields.nth(18).and_then(|s| s.parse().ok()) {
        Some(start_ticks) => PidState::Alive { start_ticks },
        None => PidState::Gone,
    }
}

/// Now, in the clock ticks since boot that `/proc/<pid>/stat` uses for start times.
pub(crate) fn boot_ticks_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_BOOTTIME exists on every supported kernel.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf with a valid name has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ts.tv_sec as u64 * hz + ts.tv_nsec as u64 * hz / 1_000_000_000
}

/// Registers `prepare` to run in the forking thread just before every `fork` (glibc's, and
/// anything that calls it) and `parent` in that thread just after, in the parent.
/// Call it while the process has one thread (a constructor), so no fork can slip in between.
pub(crate) fn on_fork(prepare: extern "C" fn(), parent: extern "C" fn()) {
    // SAFETY: registers plain functions; they must be fork-safe, which the caller's are.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), None) };
}

/// The pid [`cached_pid`] hands out; 0 until asked, and again in every forked child.
static PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn forget_pid_in_child() {
    PID.store(0, Ordering::Relaxed);
}

extern "C" fn register_forget_pid() {
    // SAFETY: registers a plain function that only stores to an atomic (fork-safe).
    unsafe { libc::pthread_atfork(None, None, Some(forget_pid_in_child)) };
}

/// Registered by the C runtime before `main` (`.init_array`), while the process has one
/// thread. Registering it lazily, at the first call, was a race: glibc's `fork` lets go of
/// its handler list while it runs each *prepare* handler (the hub has one), and a handler
/// registered then is not run for that fork. A first call on another thread in that window
/// cached the parent's pid and left it in the child, which then recorded itself in shared
/// memory as its parent (`tests/fork_pid.rs`; seen as a barrier party whose death went
/// unnoticed, because its slot named the living parent).
#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_FORGET_PID: extern "C" fn() = register_forget_pid;

/// This process's pid, cached: `getpid` is a real syscall, and ipc fast paths make none.
/// A `fork` (by any means that runs `pthread_atfork` handlers, as glibc's `fork` does)
/// clears the cache in the child (see [`REGISTER_FORGET_PID`]).
#[inline]
pub(crate) fn cached_pid() -> u32 {
    let pid = PID.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    ask_pid()
}

#[cold]
fn ask_pid() -> u32 {
    std::hint::black_box(&REGISTER_FORGET_PID); // keeps the constructor in the link
    let pid = std::process::id();
    PID.store(pid, Ordering::Relaxed);
    pid
}

/// Sends SIGKILL to this process: it ends at once, exactly as if killed from outside.
pub(crate) fn kill_self() -> ! {
    // SAFETY: signalling our own pid has no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    // SIGKILL cannot be caught; if delivery is somehow delayed, do not run on.
    exit_now(137)
}

/// Stops this process (SIGSTOP) until someone sends SIGCONT: the fault injection of a process
/// frozen inside a critical section.
pub(crate) fn stop_self() {
    // SAFETY: signalling our own pid has no memory-safety preconditions.
    unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
}

/// True once the child behind `pidfd` has ended (reaped or not); never reaps it.
pub(crate) fn has_ended(pidfd: &OwnedFd) -> bool {
    // WNOWAIT leaves the child to whoever reaps it. An error (ECHILD): already reaped.
    match wait_pidfd(pidfd, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) {
        // SAFETY: si_pid is valid to read after waitid filled `info` (or left it zeroed).
        Ok(info) => (unsafe { info.si_pid() }) != 0,
        Err(_) => true,
    }
}

/// `waitid(P_PIDFD, pidfd, flags)`: the child's state change, or zeroed if none (WNOHANG).
fn wait_pidfd(pidfd: &OwnedFd, flags: libc::c_int) -> io::Result<libc::siginfo_t> {
    // SAFETY: a zeroed siginfo_t is valid; waitid writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: P_PIDFD with a pidfd we own; `info` is valid for writing.
    let rc = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            flags,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}
