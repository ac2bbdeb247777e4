//! The real system calls behind greenrt's `monkey` hooks, made with `syscall(2)` directly:
//! once `read`, `connect`, `nanosleep`... are interposed, calling them by name would call the
//! hook again. Each returns what the kernel returned (-1 with `errno` set on failure).

#![allow(clippy::missing_safety_doc)] // every function's contract is the syscall's own

use libc::{c_int, c_long, c_void, size_t, sockaddr, socklen_t, ssize_t};

/// `errno` of the calling thread.
pub(crate) fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Sets `errno` of the calling thread.
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = value };
}

/// `read(2)`. Safety: `buf` must be valid for `count` bytes of writes.
pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    // SAFETY: the caller's contract is read(2)'s.
    unsafe { libc::syscall(libc::SYS_read, fd, buf, count) as ssize_t }
}

/// `write(2)`. Safety: `buf` must be valid for `count` bytes of reads.
pub(crate) unsafe fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    // SAFETY: the caller's contract is write(2)'s.
    unsafe { libc::syscall(libc::SYS_write, fd, buf, count) as ssize_t }
}

/// `recvfrom(2)` (`recv` is `recvfrom` with no address). Safety: as recvfrom(2).
pub(crate) unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    // SAFETY: the caller's contract is recvfrom(2)'s.
    unsafe { libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, addr, addrlen) as ssize_t }
}

/// `sendto(2)` (`send` is `sendto` with no address). Safety: as sendto(2).
pub(crate) unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    // SAFETY: the caller's contract is sendto(2)'s.
    unsafe { libc::syscall(libc::SYS_sendto, fd, buf, len, flags, addr, addrlen) as ssize_t }
}

/// `connect(2)`. Safety: `addr` valid for `len` bytes.
pub(crate) unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: the caller's contract is connect(2)'s.
    unsafe { libc::syscall(libc::SYS_connect, fd, addr, len) as c_int }
}

/// `accept4(2)`. Safety: as accept4(2) (`addr`/`len` null or valid).
pub(crate) unsafe fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's contract is accept4(2)'s.
    unsafe { libc::syscall(libc::SYS_accept4, fd, addr, len, flags) as c_int }
}

/// `poll(2)` with a timeout in milliseconds. Safety: `fds` valid for `nfds` entries.
pub(crate) unsafe fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: the caller's contract is poll(2)'s.
    unsafe { libc::syscall(libc::SYS_poll, fds, nfds, timeout) as c_int }
}

/// `clock_nanosleep(2)`; returns 0 or an error number (not -1). Safety: as the syscall.
pub(crate) unsafe fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    // SAFETY: the caller's contract is clock_nanosleep(2)'s.
    let rc = unsafe { libc::syscall(libc::SYS_clock_nanosleep, clock, flags, req, rem) as c_int };
    if rc < 0 { errno() } else { 0 }
}

/// The file status flags (`fcntl(F_GETFL)`), or -1.
pub(crate) fn get_flags(fd: c_int) -> c_int {
    // SAFETY: F_GETFL takes no pointer.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) as c_int }
}

/// Sets the file status flags (`fcntl(F_SETFL)`).
pub(crate) fn set_flags(fd: c_int, flags: c_int) -> c_int {
    // SAFETY: F_SETFL takes an int.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, flags as c_long) as c_int }
}

/// `getsockopt` for a `timeval` option (`SO_RCVTIMEO`/`SO_SNDTIMEO`); None if not a socket or
/// no timeout is set.
pub(crate) fn socket_timeout(fd: c_int, option: c_int) -> Option<std::time::Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = size_of::<libc::timeval>() as socklen_t;
    // SAFETY: `tv` and `len` are valid out-pointers of the right size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            option,
            &mut tv as *mut libc::timeval,
            &mut len as *mut socklen_t,
        )
    };
    if rc < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(std::time::Duration::new(
        tv.tv_sec as u64,
        tv.tv_usec as u32 * 1000,
    ))
}

/// The pending error of a socket (`SO_ERROR`), 0 if none.
pub(crate) fn socket_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-pointers of the right size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut c_int,
            &mut len as *mut socklen_t,
        )
    };
    if rc < 0 { errno() } else { err }
}

/// Now on `clock`, as a timespec.
pub(crate) fn clock_now(clock: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; clock_gettime is not interposed.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts
}

/// `recvmsg(2)`. Safety: `msg` valid, as recvmsg(2).
pub(crate) unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is recvmsg(2)'s.
    unsafe { libc::syscall(libc::SYS_recvmsg, fd, msg, flags) as ssize_t }
}

/// `sendmsg(2)`. Safety: `msg` valid, as sendmsg(2).
pub(crate) unsafe fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract is sendmsg(2)'s.
    unsafe { libc::syscall(libc::SYS_sendmsg, fd, msg, flags) as ssize_t }
}

/// `readv(2)`. Safety: `iov` valid for `cnt` entries, each buffer writable.
pub(crate) unsafe fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: the caller's contract is readv(2)'s.
    unsafe { libc::syscall(libc::SYS_readv, fd, iov, cnt) as ssize_t }
}

/// `writev(2)`. Safety: `iov` valid for `cnt` entries.
pub(crate) unsafe fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: the caller's contract is writev(2)'s.
    unsafe { libc::syscall(libc::SYS_writev, fd, iov, cnt) as ssize_t }
}

/// `select(2)`. Safety: the sets are null or valid `fd_set`s; `timeout` null or valid.
pub(crate) unsafe fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    // SAFETY: the caller's contract is select(2)'s.
    unsafe { libc::syscall(libc::SYS_select, nfds, r, w, e, timeout) as c_int }
}

/// `ppoll(2)`. Safety: as ppoll(2).
pub(crate) unsafe fn ppoll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: the caller's contract is ppoll(2)'s; the kernel's sigset size is 8 bytes.
    unsafe { libc::syscall(libc::SYS_ppoll, fds, nfds, timeout, sigmask, 8usize) as c_int }
}

/// The next definition of the C function `name` after the program's own (libc's), for calls
/// that are not system calls (`getaddrinfo`). Null if there is none.
pub(crate) fn next_symbol(name: &std::ffi::CStr) -> *mut c_void {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol up.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) }
}

/// `close(2)`. Safety: as close(2) — `fd` is the caller's to close.
pub(crate) unsafe fn close(fd: c_int) -> c_int {
    // SAFETY: the caller's contract is close(2)'s.
    unsafe { libc::syscall(libc::SYS_close, fd) as c_int }
}

/// True if `fd` is writable right now (a `poll` that never blocks).
pub(crate) fn writable_now(fd: c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd on this frame.
    let rc = unsafe { libc::syscall(libc::SYS_poll, &mut pfd as *mut libc::pollfd, 1, 0) };
    rc > 0
}

/// `FD_ISSET`. `fd` must be below `FD_SETSIZE`.
pub(crate) fn fd_isset(fd: c_int, set: &libc::fd_set) -> bool {
    debug_assert!((0..libc::FD_SETSIZE as c_int).contains(&fd));
    // SAFETY: `set` is a valid fd_set and `fd` is inside it.
    unsafe { libc::FD_ISSET(fd, set) }
}

/// `FD_ZERO`.
pub(crate) fn fd_zero(set: &mut libc::fd_set) {
    // SAFETY: `set` is a valid fd_set.
    unsafe { libc::FD_ZERO(set) }
}

/// A signal set holding just `signal` (an invalid number gives the empty set).
pub(crate) fn sigset_of(signal: c_int) -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset/sigaddset fill it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        set
    }
}
