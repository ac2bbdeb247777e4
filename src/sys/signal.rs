//! A SIGSEGV/SIGBUS hook that runs on an alternate signal stack.
//!
//! A green thread that overflows its stack touches its guard region and the kernel sends
//! SIGSEGV. The handler cannot run on the overflowed stack, so every thread with a hub gets an
//! alternate signal stack (`sigaltstack`), unless std already gave it one.
//!
//! The hook is given the faulting address. If it returns `true` the fault was ours and has been
//! reported (the hook aborts the process itself); otherwise we hand the signal to whatever
//! handler was installed before us (usually std's, which reports overflows of the thread's own
//! stack), or restore the default action so the fault re-occurs and kills the process.

use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A function that decides whether a fault at the given address is a green-thread overflow.
/// It must be async-signal-safe: no allocation, no locks.
pub(crate) type FaultHook = fn(fault_addr: usize) -> bool;

static HOOK: AtomicUsize = AtomicUsize::new(0);
static OLD_SEGV: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
static OLD_BUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());
/// Not a `std::sync::Once`: see `process::per_process::OnceFlag`.
static INSTALL: crate::sys::per_process::OnceFlag = crate::sys::per_process::OnceFlag::new();

/// Installs `hook` for SIGSEGV and SIGBUS (the hub's stack-overflow report).
pub(crate) fn install_fault_hook(hook: FaultHook) {
    HOOK.store(hook as usize, Ordering::SeqCst);
    install_fault_handlers();
}

/// Installs greenrt's SIGSEGV and SIGBUS handlers, once per process: they report a green
/// stack overflow (the hook) and a fault in a shared mapping whose file was truncated
/// (`shm::truncated_mapping`), and pass anything else on.
pub(crate) fn install_fault_handlers() {
    INSTALL.run(|| {
        OLD_SEGV.store(install_one(libc::SIGSEGV), Ordering::SeqCst);
        OLD_BUS.store(install_one(libc::SIGBUS), Ordering::SeqCst);
    });
}

/// libc's `sigaction`, past the `monkey` layer's interposed one: greenrt's own handlers (the
/// fault report, the SIGUSR1 dump) are its business, and must not count as handlers that
/// interrupt hooked calls (see `monkey/signals.rs`).
///
/// # Safety
/// As sigaction(2): `act` and `old` are null or valid.
pub(crate) unsafe fn own_sigaction(
    signal: libc::c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> libc::c_int {
    #[cfg(feature = "monkey")]
    {
        type SigAction = unsafe extern "C" fn(
            libc::c_int,
            *const libc::sigaction,
            *mut libc::sigaction,
        ) -> libc::c_int;
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol up.
        let real = unsafe { libc::dlsym(libc::RTLD_NEXT, c"sigaction".as_ptr()) };
        if real.is_null() {
            return -1;
        }
        // SAFETY: libc's sigaction has exactly this signature; the caller's contract holds.
        unsafe { std::mem::transmute::<*mut libc::c_void, SigAction>(real)(signal, act, old) }
    }
    #[cfg(not(feature = "monkey"))]
    // SAFETY: the caller's contract.
    unsafe {
        libc::sigaction(signal, act, old)
    }
}

/// Installs our handler for `signal` and returns the previous action, leaked so the handler
/// can read it at any time.
fn install_one(signal: libc::c_int) -> *mut libc::sigaction {
    let old = Box::into_raw(Box::new(MaybeUninit::<libc::sigaction>::zeroed())).cast();
    // SAFETY: a zeroed sigaction is a valid "no handler, empty mask" value; we then fill in
    // the handler and flags. `old` points to writable memory that lives forever.
    unsafe {
        let mut action: libc::sigaction = MaybeUninit::zeroed().assume_init();
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        own_sigaction(signal, &action, old);
    }
    old
}

extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if signal == libc::SIGBUS
        && let Some(path) = super::shm::truncated_mapping(addr)
    {
        write_stderr(b"\ngreenrt: the shared object ");
        write_stderr(path);
        write_stderr(b" was truncated by another process while this one had it mapped; aborting\n");
        abort();
    }
    let hook = HOOK.load(Ordering::SeqCst);
    if hook != 0 {
        // SAFETY: HOOK only ever holds a `FaultHook` stored by `install_fault_hook`.
        let hook: FaultHook = unsafe { std::mem::transmute::<usize, FaultHook>(hook) };
        if hook(addr) {
            abort();
        }
    }
    let old = if signal == libc::SIGSEGV {
        &OLD_SEGV
    } else {
        &OLD_BUS
    };
    // SAFETY: the pointer was stored before our handler could run and is never freed.
    unsafe { chain(signal, info, ctx, old.load(Ordering::SeqCst)) }
}

/// Passes the signal to the previous handler, or re-arms the default action and returns so
/// the faulting instruction runs again and the process dies with the usual signal.
///
/// # Safety
/// `old` must be null or point to the action saved by `install_one`.
unsafe fn chain(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    old: *const libc::sigaction,
) {
    let (handler, flags) = if old.is_null() {
        (libc::SIG_DFL, 0)
    } else {
        // SAFETY: per the contract a non-null `old` is the valid saved action.
        let old = unsafe { &*old };
        (old.sa_sigaction, old.sa_flags)
    };
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: resetting a signal to its default action is always allowed.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    } else if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so this is its signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, ctx);
    } else {
        // SAFETY: a handler without SA_SIGINFO takes just the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}

/// Gives the calling thread an alternate signal stack if it has none. Returns the mapping we
/// made, to be released with [`release_alt_stack`] when the thread's hub goes away.
pub(crate) fn ensure_alt_stack() -> io::Result<Option<(*mut u8, usize)>> {
    // SAFETY: querying the current alternate stack writes only into `current`.
    let current = unsafe {
        let mut current: libc::stack_t = MaybeUninit::zeroed().assume_init();
        if libc::sigaltstack(ptr::null(), &mut current) != 0 {
            return Err(io::Error::last_os_error());
        }
        current
    };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(None); // std (or the user) already gave this thread one
    }
    let len = 64 * 1024;
    let mem = super::mem::map_anonymous(len)?;
    let stack = libc::stack_t {
        ss_sp: mem.cast(),
        ss_flags: 0,
        ss_size: len,
    };
    // SAFETY: `mem` is a fresh mapping of `len` bytes that stays mapped while installed.
    if unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: the mapping was never installed, so nothing refers to it.
        unsafe { super::mem::unmap(mem, len) };
        return Err(err);
    }
    Ok(Some((mem, len)))
}

/// Disables and unmaps an alternate stack made by [`ensure_alt_stack`] on this thread.
///
/// # Safety
/// Must be called on the thread that installed it, with the value it returned, outside any
/// signal handler.
pub(crate) unsafe fn release_alt_stack(mem: *mut u8, len: usize) {
    let disable = libc::stack_t {
        ss_sp: ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: disabling the alternate stack of the calling thread is always allowed; after it
    // no handler can run on `mem`, so unmapping it is sound.
    unsafe {
        libc::sigaltstack(&disable, ptr::null_mut());
        super::mem::unmap(mem, len);
    }
}

/// Writes `bytes` to stderr with a raw `write(2)`: usable inside a signal handler.
pub(crate) fn write_stderr(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid readable slice for the length passed.
        let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Ends the process at once with SIGABRT, as std does after reporting a stack overflow.
pub(crate) fn abort() -> ! {
    std::process::abort()
}

/// The write end of the pipe the SIGUSR1 handler pokes (-1: not installed).
static POKE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Installs a SIGUSR1 handler that writes one byte to a pipe, and returns the pipe's read end:
/// a thread reading it learns of each signal outside the handler (which may only make
/// async-signal-safe calls). The write end is non-blocking: a full pipe just drops the poke.
pub(crate) fn poke_pipe_on_sigusr1() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the write end was just made; F_SETFL with O_NONBLOCK has no memory effects.
    unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) };
    POKE_FD.store(fds[1], std::sync::atomic::Ordering::Release);
    // SAFETY: a zeroed sigaction is a valid "no handler, empty mask" value; we then set the
    // handler (a plain function that only makes an async-signal-safe write) and SA_RESTART.
    unsafe {
        let mut action: libc::sigaction = MaybeUninit::zeroed().assume_init();
        action.sa_sigaction = on_sigusr1 as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        if own_sigaction(libc::SIGUSR1, &action, ptr::null_mut()) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(std::os::fd::OwnedFd::from_raw_fd(fds[0]))
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    let fd = POKE_FD.load(std::sync::atomic::Ordering::Acquire);
    let byte = 1u8;
    // SAFETY: write(2) by raw syscall is async-signal-safe; `byte` lives on this frame. errno
    // is saved and restored so the interrupted code does not see ours.
    unsafe {
        let saved = *libc::__errno_location();
        libc::syscall(libc::SYS_write, fd, &byte as *const u8, 1usize);
        *libc::__errno_location() = saved;
    }
}
