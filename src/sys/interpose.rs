//! The interposed C symbols of the `monkey` feature.
//!
//! A definition of `read` (or `connect`, `nanosleep`...) in the program itself comes before
//! libc's when the program is linked, so every call to `read` from Rust's std, from a C
//! library linked in, or from greenrt's own dependencies lands here first. Each function just
//! forwards to `monkey::hooks`, which either makes the real system call (`sys::raw`, by
//! `syscall(2)`, never by name: that would come back here) or parks the green thread.
//!
//! Calls made *inside* libc (`fread` reading a file, `getaddrinfo` connecting to a resolver)
//! do not come here: glibc calls its internal aliases. See NOTES.md, "monkey".

#![allow(clippy::missing_safety_doc)] // each symbol's contract is the libc function's

use libc::{c_int, c_uint, c_void, size_t, sockaddr, socklen_t, ssize_t};

use crate::monkey::hooks;

/// read(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    // SAFETY: forwarded with read(2)'s contract.
    unsafe { hooks::read(fd, buf, count) }
}

/// write(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    // SAFETY: forwarded with write(2)'s contract.
    unsafe { hooks::write(fd, buf, count) }
}

/// recv(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: recv is recvfrom without an address.
    unsafe {
        hooks::recvfrom(
            fd,
            buf,
            len,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// recvfrom(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    // SAFETY: forwarded with recvfrom(2)'s contract.
    unsafe { hooks::recvfrom(fd, buf, len, flags, addr, addrlen) }
}

/// send(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: send is sendto without an address.
    unsafe { hooks::sendto(fd, buf, len, flags, std::ptr::null(), 0) }
}

/// sendto(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    // SAFETY: forwarded with sendto(2)'s contract.
    unsafe { hooks::sendto(fd, buf, len, flags, addr, addrlen) }
}

/// connect(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded with connect(2)'s contract.
    unsafe { hooks::connect(fd, addr, len) }
}

/// accept(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: accept is accept4 without flags.
    unsafe { hooks::accept4(fd, addr, len, 0) }
}

/// accept4(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded with accept4(2)'s contract.
    unsafe { hooks::accept4(fd, addr, len, flags) }
}

/// close(2): wakes green threads waiting on the fd (with `EBADF`) first.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // SAFETY: forwarded with close(2)'s contract.
    unsafe { hooks::close(fd) }
}

/// poll(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout: c_int) -> c_int {
    // SAFETY: forwarded with poll(2)'s contract.
    unsafe { hooks::poll(fds, nfds, timeout) }
}

/// nanosleep(2), a green sleep on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    // SAFETY: nanosleep is a relative CLOCK_MONOTONIC-like sleep (Linux uses CLOCK_MONOTONIC).
    let rc = unsafe { hooks::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, req, rem) };
    if rc == 0 {
        0
    } else {
        crate::sys::raw::set_errno(rc);
        -1
    }
}

/// clock_nanosleep(2), a green sleep on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    // SAFETY: forwarded with clock_nanosleep(2)'s contract.
    unsafe { hooks::clock_nanosleep(clock, flags, req, rem) }
}

/// usleep(3), a green sleep on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let req = libc::timespec {
        tv_sec: (usec / 1_000_000) as _,
        tv_nsec: ((usec % 1_000_000) * 1000) as _,
    };
    // SAFETY: `req` is a valid timespec on this frame; no remainder wanted.
    unsafe { nanosleep(&req, std::ptr::null_mut()) }
}

/// sleep(3), a green sleep on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sleep(seconds: c_uint) -> c_uint {
    let req = libc::timespec {
        tv_sec: seconds as _,
        tv_nsec: 0,
    };
    // SAFETY: as above.
    unsafe { nanosleep(&req, std::ptr::null_mut()) };
    0
}

/// readv(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwarded with readv(2)'s contract.
    unsafe { hooks::readv(fd, iov, cnt) }
}

/// writev(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    // SAFETY: forwarded with writev(2)'s contract.
    unsafe { hooks::writev(fd, iov, cnt) }
}

/// recvmsg(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: forwarded with recvmsg(2)'s contract.
    unsafe { hooks::recvmsg(fd, msg, flags) }
}

/// sendmsg(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    // SAFETY: forwarded with sendmsg(2)'s contract.
    unsafe { hooks::sendmsg(fd, msg, flags) }
}

/// ppoll(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ppoll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout: *const libc::timespec,
    sigmask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: forwarded with ppoll(2)'s contract.
    unsafe { hooks::ppoll(fds, nfds, timeout, sigmask) }
}

/// select(2), cooperative on green threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: *mut libc::timeval,
) -> c_int {
    // SAFETY: forwarded with select(2)'s contract.
    unsafe { hooks::select(nfds, r, w, e, timeout) }
}

/// getaddrinfo(3): on a green thread the lookup runs on a helper thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const libc::c_char,
    service: *const libc::c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    // SAFETY: forwarded with getaddrinfo(3)'s contract.
    unsafe { hooks::getaddrinfo(node, service, hints, res) }
}

/// sigaction(2): a handler goes in behind greenrt's trampoline, which tells the hub it ran
/// (so green threads in hooked calls get `EINTR` as threads do); `oldact` shows the user's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    signal: c_int,
    act: *const libc::sigaction,
    oldact: *mut libc::sigaction,
) -> c_int {
    // SAFETY: forwarded with sigaction(2)'s contract.
    unsafe { crate::monkey::signals::sigaction(signal, act, oldact) }
}

/// signal(2), with glibc's BSD semantics, through [`sigaction`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(signal: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: forwarded with signal(2)'s contract.
    unsafe { crate::monkey::signals::signal(signal, handler) }
}
