//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[cfg(feature = "redis")]
pub mod cutting_proxy;
#[cfg(feature = "redis")]
pub mod redis_server;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An ordered log that green threads on one OS thread append to.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Counts how many of its tokens have been dropped: proves destructors ran on unwind.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

pub struct DropToken(Arc<AtomicUsize>);

impl DropCounter {
    pub fn token(&self) -> DropToken {
        DropToken(self.0.clone())
    }

    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for DropToken {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Raises the soft limit on open files to the hard limit (tests open thousands of sockets).
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

/// A cheap order-sensitive checksum (FNV-1a) for echo tests.
pub fn fnv1a(data: &[u8], mut hash: u64) -> u64 {
    for &b in data {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash
}

pub const FNV_START: u64 = 0xcbf29ce484222325;

/// Deterministic pseudo-random bytes for connection `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A green thread that ticks `times` times, sleeping `every` between ticks: proof that the
/// hub kept running other green threads while something else waited.
pub struct Ticker {
    handle: greenrt::JoinHandle<()>,
    ticks: Rc<std::cell::Cell<u32>>,
}

impl Ticker {
    pub fn start(times: u32, every: std::time::Duration) -> Ticker {
        let ticks = Rc::new(std::cell::Cell::new(0));
        let t = ticks.clone();
        let handle = greenrt::spawn(move || {
            for _ in 0..times {
                greenrt::sleep(every);
                t.set(t.get() + 1);
            }
        });
        Ticker { handle, ticks }
    }

    /// Waits for the ticker to end and returns how many times it ticked.
    pub fn finish(self) -> u32 {
        self.handle.join().expect("the ticker does not panic");
        self.ticks.get()
    }
}

/// How a forked child ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// It called `_exit` with this code (101 for a panic).
    Exited(i32),
    /// A signal killed it: 6 is SIGABRT (an abort), 14 SIGALRM (it hung past its limit).
    Signalled(i32),
}

/// Runs `child` in a forked child process with a fresh hub, so a test can watch for an
/// abort or a hang without taking the test binary down. The child gets `limit_secs` seconds
/// (then SIGALRM ends it) and exits with `child`'s return value (101 if it panics).
pub fn in_child(limit_secs: u32, child: impl FnOnce() -> i32) -> Ended {
    // SAFETY (test): the child only runs `child` on this thread and then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        greenrt::hub::reset_after_fork();
        // SAFETY: alarm only arms a timer for this process.
        unsafe { libc::alarm(limit_secs) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child with a valid status pointer.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    if libc::WIFSIGNALED(status) {
        Ended::Signalled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    }
}

/// CPU time (user + system) the calling OS thread has used so far.
pub fn thread_cpu_time() -> std::time::Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs its closure when dropped (also while unwinding): proves a frame was unwound.
pub struct OnDrop(pub Box<dyn FnMut()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// One page of anonymous shared memory (it survives `fork`: parent and children see the same
/// words), for tests that check what a child process did. Never unmapped.
pub fn shared_page() -> *mut u32 {
    // SAFETY (test): an anonymous shared mapping of one page.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED, "mmap failed");
    page.cast()
}

/// How many times [`count_signal`] ran (the handler the signal tests install).
pub static HANDLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A signal handler that only counts.
pub extern "C" fn count_signal(_: libc::c_int) {
    HANDLED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Installs [`count_signal`] for SIGUSR2, with or without `SA_RESTART`.
pub fn install_sigusr2_counter(restart: bool) {
    // SAFETY (test): a zeroed sigaction is valid; we set the handler and flags.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_signal as *const () as usize;
        action.sa_flags = if restart { libc::SA_RESTART } else { 0 };
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// The path of example `name`, built next to the running test binary.
pub fn example(name: &str) -> std::path::PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// Runs example `name` to its end with no stdin; its stdout lines. A non-zero exit fails
/// the test, with both outputs.
pub fn run_example(name: &str, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(example(name))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e} (built by cargo test)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_owned).collect()
}

/// Waits until process `pid` is stopped (state `T` in /proc), at most 10 s.
pub fn wait_stopped(pid: u32) {
    let began = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        if state == Some("T") {
            return;
        }
        assert!(
            began.elapsed() < std::time::Duration::from_secs(10),
            "the child never stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
