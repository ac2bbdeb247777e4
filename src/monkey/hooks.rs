//! What each interposed call does. Every hook starts with the same question — is this call
//! made on a green thread after `patch_all()`? — and if not, makes the real system call and
//! nothing else. On a green thread, socket calls are tried without blocking
//! (`MSG_DONTWAIT`, or `O_NONBLOCK` for the one call) and, when they would block, the green
//! thread parks until the fd is ready. What the user sees does not change:
//!
//! | the user's socket / call                     | the hook                                   |
//! |----------------------------------------------|--------------------------------------------|
//! | not a socket (file, pipe, tty)               | the real call (after one `ENOTSOCK` try)   |
//! | made non-blocking by the user                | the real call's `EAGAIN`, unchanged        |
//! | `SO_RCVTIMEO` / `SO_SNDTIMEO` set            | waits at most that long, then `EAGAIN`     |
//! | `MSG_DONTWAIT` in the flags                  | the real call                              |
//! | blocking `write`/`send`                      | sends everything, like the kernel would    |

use std::time::{Duration, Instant};

use libc::{c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};

use super::wait::{Interest, wait_any};
use crate::sys::raw;

/// True when the calling code runs on a green thread and `patch_all()` was called.
#[inline]
pub(crate) fn cooperative() -> bool {
    super::is_patched() && crate::hub::on_green_thread()
}

/// Why a would-block retry loop should stop waiting: the deadline from the socket's timeout.
fn timeout_deadline(fd: c_int, write: bool) -> Option<Instant> {
    let option = if write {
        libc::SO_SNDTIMEO
    } else {
        libc::SO_RCVTIMEO
    };
    raw::socket_timeout(fd, option).map(|t| Instant::now() + t)
}

fn user_nonblocking(fd: c_int) -> bool {
    let flags = raw::get_flags(fd);
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

/// The retry loop of a transfer: `attempt` is the non-blocking try. Returns its result, or
/// -1 with `EAGAIN` when the socket's timeout passes.
fn transfer(fd: c_int, write: bool, mut attempt: impl FnMut() -> ssize_t) -> ssize_t {
    let mut deadline = None;
    loop {
        let n = attempt();
        if n >= 0 {
            return n;
        }
        match raw::errno() {
            libc::EINTR => continue,
            libc::EAGAIN => {
                if user_nonblocking(fd) {
                    raw::set_errno(libc::EAGAIN);
                    return -1;
                }
                let until = *deadline.get_or_insert_with(|| timeout_deadline(fd, write));
                let interest = Interest {
                    fd,
                    read: !write,
                    write,
                };
                if !wait_any(&[interest], until) {
                    raw::set_errno(libc::EAGAIN);
                    return -1;
                }
            }
            _ => return -1,
        }
    }
}

/// `read` on a green thread: `recv(MSG_DONTWAIT)` for sockets, the real `read` otherwise.
pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is read(2)'s.
        return unsafe { raw::read(fd, buf, count) };
    }
    // SAFETY: as read(2): `buf` is valid for `count` bytes.
    let first = unsafe {
        raw::recvfrom(
            fd,
            buf,
            count,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if first < 0 && raw::errno() == libc::ENOTSOCK {
        // SAFETY: as above.
        return unsafe { raw::read(fd, buf, count) };
    }
    let mut first = Some(first);
    transfer(fd, false, || {
        first.take().unwrap_or_else(|| {
            // SAFETY: as above.
            unsafe {
                raw::recvfrom(
                    fd,
                    buf,
                    count,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            }
        })
    })
}

/// `recvfrom` (and `recv`) on a green thread.
pub(crate) unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    if !cooperative() || flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's contract is recvfrom(2)'s.
        return unsafe { raw::recvfrom(fd, buf, len, flags, addr, addrlen) };
    }
    // SAFETY: as recvfrom(2).
    transfer(fd, false, || unsafe {
        raw::recvfrom(fd, buf, len, flags | libc::MSG_DONTWAIT, addr, addrlen)
    })
}

/// `write` on a green thread: `send(MSG_DONTWAIT)` until everything is sent, for sockets.
pub(crate) unsafe fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is write(2)'s.
        return unsafe { raw::write(fd, buf, count) };
    }
    // SAFETY: as write(2): `buf` is valid for `count` bytes.
    let first = unsafe { raw::sendto(fd, buf, count, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
    if first < 0 && raw::errno() == libc::ENOTSOCK {
        // SAFETY: as above.
        return unsafe { raw::write(fd, buf, count) };
    }
    // SAFETY: as above.
    unsafe { send_all(fd, buf, count, 0, std::ptr::null(), 0, Some(first)) }
}

/// `sendto` (and `send`) on a green thread.
pub(crate) unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    if !cooperative() || flags & libc::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's contract is sendto(2)'s.
        return unsafe { raw::sendto(fd, buf, len, flags, addr, addrlen) };
    }
    // SAFETY: as sendto(2).
    unsafe { send_all(fd, buf, len, flags, addr, addrlen, None) }
}

/// A blocking send transfers every byte (or fails): repeat non-blocking sends, parking while
/// the socket is full. `first` is the result of a send already made.
#[allow(clippy::too_many_arguments)]
unsafe fn send_all(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
    mut first: Option<ssize_t>,
) -> ssize_t {
    let mut sent = 0usize;
    loop {
        let n = transfer(fd, true, || {
            first.take().unwrap_or_else(|| {
                // SAFETY: `sent < len`, so the pointer and length stay inside the caller's buffer.
                unsafe {
                    raw::sendto(
                        fd,
                        buf.cast::<u8>().add(sent).cast(),
                        len - sent,
                        flags | libc::MSG_DONTWAIT,
                        addr,
                        addrlen,
                    )
                }
            })
        });
        if n < 0 {
            return if sent > 0 { sent as ssize_t } else { -1 };
        }
        sent += n as usize;
        if sent >= len || user_nonblocking(fd) {
            return sent as ssize_t;
        }
    }
}

/// `connect` on a green thread: non-blocking for the one call, then wait for writable.
pub(crate) unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let flags = raw::get_flags(fd);
    if !cooperative() || flags < 0 || flags & libc::O_NONBLOCK != 0 {
        // SAFETY: the caller's contract is connect(2)'s.
        return unsafe { raw::connect(fd, addr, len) };
    }
    raw::set_flags(fd, flags | libc::O_NONBLOCK);
    // SAFETY: as connect(2).
    let rc = unsafe { raw::connect(fd, addr, len) };
    let err = raw::errno();
    let result = if rc == 0 || err != libc::EINPROGRESS {
        (rc, err)
    } else if wait_any(
        &[Interest {
            fd,
            read: false,
            write: true,
        }],
        timeout_deadline(fd, true),
    ) {
        match raw::socket_error(fd) {
            0 => (0, 0),
            e => (-1, e),
        }
    } else {
        (-1, libc::ETIMEDOUT)
    };
    raw::set_flags(fd, flags);
    raw::set_errno(result.1);
    result.0
}

/// `accept4` (and `accept`) on a green thread: non-blocking tries, parking while none waits.
pub(crate) unsafe fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    accept_flags: c_int,
) -> c_int {
    let flags = raw::get_flags(fd);
    if !cooperative() || flags < 0 || flags & libc::O_NONBLOCK != 0 {
        // SAFETY: the caller's contract is accept4(2)'s.
        return unsafe { raw::accept4(fd, addr, len, accept_flags) };
    }
    let deadline = timeout_deadline(fd, false);
    loop {
        raw::set_flags(fd, flags | libc::O_NONBLOCK);
        // SAFETY: as accept4(2). The new socket's flags come from `accept_flags` only.
        let rc = unsafe { raw::accept4(fd, addr, len, accept_flags) };
        let err = raw::errno();
        raw::set_flags(fd, flags);
        if rc >= 0 || (err != libc::EAGAIN && err != libc::EINTR) {
            raw::set_errno(err);
            return rc;
        }
        if err == libc::EAGAIN
            && !wait_any(
                &[Interest {
                    fd,
                    read: true,
                    write: false,
                }],
                deadline,
            )
        {
            raw::set_errno(libc::EAGAIN);
            return -1;
        }
    }
}

/// `poll` on a green thread: a zero-timeout poll, then park on every fd until one may be ready.
pub(crate) unsafe fn poll(fds: *mut libc::pollfd, nfds: libc::nfds_t, timeout_ms: c_int) -> c_int {
    if !cooperative() || timeout_ms == 0 {
        // SAFETY: the caller's contract is poll(2)'s.
        return unsafe { raw::poll(fds, nfds, timeout_ms) };
    }
    let deadline =
        (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    // SAFETY: poll(2)'s contract: `fds` is valid for `nfds` entries.
    let entries = unsafe { std::slice::from_raw_parts(fds, nfds as usize) };
    let mut interests: Vec<Interest> = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| e.fd >= 0) {
        let (read, write) = (
            e.events & (libc::POLLIN | libc::POLLPRI) != 0,
            e.events & libc::POLLOUT != 0,
        );
        match interests.iter_mut().find(|i| i.fd == e.fd) {
            Some(i) => {
                i.read |= read;
                i.write |= write;
            }
            None => interests.push(Interest {
                fd: e.fd,
                read: read || !write,
                write,
            }),
        }
    }
    loop {
        // SAFETY: as above.
        let ready = unsafe { raw::poll(fds, nfds, 0) };
        if ready != 0 {
            return ready;
        }
        if !wait_any(&interests, deadline) {
            return 0;
        }
    }
}

/// A sleep on a green thread: park on the hub's timers.
pub(crate) fn sleep_for(duration: Duration) {
    crate::sleep(duration);
}

/// `clock_nanosleep`: relative or absolute (`TIMER_ABSTIME`) on any clock.
pub(crate) unsafe fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    if !cooperative() || req.is_null() {
        // SAFETY: the caller's contract is clock_nanosleep(2)'s.
        return unsafe { raw::clock_nanosleep(clock, flags, req, rem) };
    }
    // SAFETY: non-null, and valid by clock_nanosleep(2)'s contract.
    let req = unsafe { *req };
    if req.tv_nsec < 0 || req.tv_nsec >= 1_000_000_000 || req.tv_sec < 0 {
        return libc::EINVAL;
    }
    let wanted = Duration::new(req.tv_sec as u64, req.tv_nsec as u32);
    let duration = if flags & libc::TIMER_ABSTIME != 0 {
        let now = raw::clock_now(clock);
        wanted.saturating_sub(Duration::new(
            now.tv_sec.max(0) as u64,
            now.tv_nsec.max(0) as u32,
        ))
    } else {
        wanted
    };
    sleep_for(duration);
    if !rem.is_null() {
        // SAFETY: non-null, valid by the contract.
        unsafe {
            *rem = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    0
}
