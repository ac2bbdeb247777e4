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

use crate::sys::c::{self, c_int, c_void, size_t, sockaddr, socklen_t, ssize_t};

use crate::hub::io::{self, Fail, Interrupts, OnWouldBlock, Stop};
use crate::hub::park::Interrupt;
use crate::hub::reactor::Direction;
use crate::sys::raw;

/// True when the calling code runs on a green thread and `patch_all()` was called.
#[inline]
pub(crate) fn cooperative() -> bool {
    super::is_patched() && crate::hub::on_green_thread()
}

/// Why a would-block retry loop should stop waiting: the deadline from the socket's timeout.
fn timeout_deadline(fd: c_int, write: bool) -> Option<Instant> {
    let option = if write {
        c::SO_SNDTIMEO
    } else {
        c::SO_RCVTIMEO
    };
    raw::socket_timeout(fd, option).and_then(crate::time::deadline_in)
}

fn user_nonblocking(fd: c_int) -> bool {
    let flags = raw::get_flags(fd);
    flags >= 0 && flags & c::O_NONBLOCK != 0
}

/// The errno a hooked call fails with when `hub::io` gives up (see the module docs).
fn errno_for(fail: Fail) -> c_int {
    match fail {
        Fail::Os(e) => e.raw_os_error().unwrap_or(c::EAGAIN),
        // SO_RCVTIMEO / SO_SNDTIMEO passed: what the kernel says then.
        Fail::Stop(Stop::TimedOut) => c::EAGAIN,
        Fail::Stop(Stop::Closed) => c::EBADF,
        Fail::Stop(Stop::Interrupted(Interrupt::Timeout)) => c::ETIMEDOUT,
        Fail::Stop(Stop::Interrupted(Interrupt::Kill)) => c::ECANCELED,
        Fail::Stop(Stop::Interrupted(Interrupt::Signal { .. })) => c::EINTR,
    }
}

/// Sets errno for `fail` and returns -1, as a failed call does.
fn fail_with<T: From<i8>>(fail: Fail) -> T {
    raw::set_errno(errno_for(fail));
    T::from(-1)
}

/// A C return value as an `io::Result`: negative means failed, with `errno`.
fn os_result<T: Copy + Default + PartialOrd>(rc: T) -> std::io::Result<T> {
    if rc < T::default() {
        Err(std::io::Error::from_raw_os_error(raw::errno()))
    } else {
        Ok(rc)
    }
}

/// What a blocking socket call does when it would block: the user's own non-blocking mode
/// gets `EAGAIN`; otherwise wait, at most the socket's `SO_RCVTIMEO`/`SO_SNDTIMEO`.
fn plan(fd: c_int, write: bool) -> OnWouldBlock {
    if user_nonblocking(fd) {
        OnWouldBlock::Return
    } else {
        OnWouldBlock::WaitUntil(timeout_deadline(fd, write))
    }
}

fn direction(write: bool) -> Direction {
    if write {
        Direction::Write
    } else {
        Direction::Read
    }
}

/// `hub::io::retry` for a hooked socket call, with signal(7)'s rule for a signal handler
/// that runs while it waits: the call is restarted if every handler had `SA_RESTART` and the
/// socket has no timeout for this direction, and fails with `EINTR` otherwise.
fn socket_retry<R>(
    fd: c_int,
    write: bool,
    mut plan: impl FnMut() -> OnWouldBlock,
    mut op: impl FnMut() -> std::io::Result<R>,
) -> Result<R, Fail> {
    loop {
        let result = io::retry(fd, direction(write), Interrupts::Report, &mut plan, &mut op);
        match result {
            Err(Fail::Stop(Stop::Interrupted(Interrupt::Signal { restart: true })))
                if timeout_deadline(fd, write).is_none() => {}
            other => return other,
        }
    }
}

/// The retry loop of a transfer: `attempt` is the non-blocking try. The first try is made
/// before entering the loop: on a ready socket that is the whole call.
fn transfer(fd: c_int, write: bool, mut attempt: impl FnMut() -> ssize_t) -> ssize_t {
    let first = attempt();
    if first >= 0 {
        return first;
    }
    let mut first = Some(first);
    let mut attempt = || first.take().unwrap_or_else(&mut attempt);
    socket_retry(fd, write, || plan(fd, write), || os_result(attempt())).unwrap_or_else(fail_with)
}

/// `read` on a green thread: `recv(MSG_DONTWAIT)` for sockets, the real `read` otherwise.
pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is read(2)'s.
        return unsafe { raw::read(fd, buf, count) };
    }
    socket_or_plain(
        fd,
        false,
        // SAFETY: as read(2): `buf` is valid for `count` bytes.
        || unsafe {
            raw::recvfrom(
                fd,
                buf,
                count,
                c::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        },
        // SAFETY: as above.
        || unsafe { raw::read(fd, buf, count) },
    )
}

/// A read or write on an fd that may or may not be a socket: the socket form is tried
/// without blocking; `ENOTSOCK` means a file, pipe or tty, which get the plain call for real;
/// otherwise the retry loop runs, starting with the result already in hand.
fn socket_or_plain(
    fd: c_int,
    write: bool,
    mut socket_try: impl FnMut() -> ssize_t,
    plain: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let first = socket_try();
    if first < 0 && raw::errno() == c::ENOTSOCK {
        return plain();
    }
    let mut first = Some(first);
    transfer(fd, write, || first.take().unwrap_or_else(&mut socket_try))
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
    if !cooperative() || flags & c::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's contract is recvfrom(2)'s.
        return unsafe { raw::recvfrom(fd, buf, len, flags, addr, addrlen) };
    }
    // SAFETY: as recvfrom(2).
    transfer(fd, false, || unsafe {
        raw::recvfrom(fd, buf, len, flags | c::MSG_DONTWAIT, addr, addrlen)
    })
}

/// `write` on a green thread: `send(MSG_DONTWAIT)` until everything is sent, for sockets.
pub(crate) unsafe fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is write(2)'s.
        return unsafe { raw::write(fd, buf, count) };
    }
    // SAFETY: as write(2): `buf` is valid for `count` bytes.
    let first = unsafe { raw::sendto(fd, buf, count, c::MSG_DONTWAIT, std::ptr::null(), 0) };
    if first >= 0 && first as size_t == count {
        return first; // all sent in one call
    }
    if first < 0 && raw::errno() == c::ENOTSOCK {
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
    if !cooperative() || flags & c::MSG_DONTWAIT != 0 {
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
                        flags | c::MSG_DONTWAIT,
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
    if !cooperative() || flags < 0 || flags & c::O_NONBLOCK != 0 {
        // SAFETY: the caller's contract is connect(2)'s.
        return unsafe { raw::connect(fd, addr, len) };
    }
    raw::set_flags(fd, flags | c::O_NONBLOCK);
    // SAFETY: as connect(2).
    let rc = unsafe { raw::connect(fd, addr, len) };
    let err = raw::errno();
    let (rc, err) = if rc == 0 || err != c::EINPROGRESS {
        (rc, err)
    } else {
        let connected = || match raw::writable_now(fd) {
            true => Ok(()),
            false => Err(std::io::ErrorKind::WouldBlock.into()),
        };
        let deadline = || OnWouldBlock::WaitUntil(timeout_deadline(fd, true));
        let waited = socket_retry(fd, true, deadline, connected);
        match waited {
            Ok(()) => match raw::socket_error(fd) {
                0 => (0, 0),
                e => (-1, e),
            },
            Err(Fail::Stop(Stop::TimedOut)) => (-1, c::ETIMEDOUT),
            Err(fail) => (-1, errno_for(fail)),
        }
    };
    raw::set_flags(fd, flags);
    raw::set_errno(err);
    rc
}

/// `accept4` (and `accept`) on a green thread: non-blocking tries, parking while none waits.
pub(crate) unsafe fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    accept_flags: c_int,
) -> c_int {
    let flags = raw::get_flags(fd);
    if !cooperative() || flags < 0 || flags & c::O_NONBLOCK != 0 {
        // SAFETY: the caller's contract is accept4(2)'s.
        return unsafe { raw::accept4(fd, addr, len, accept_flags) };
    }
    let attempt = || {
        raw::set_flags(fd, flags | c::O_NONBLOCK);
        // SAFETY: as accept4(2). The new socket's flags come from `accept_flags` only.
        let rc = os_result(unsafe { raw::accept4(fd, addr, len, accept_flags) });
        raw::set_flags(fd, flags);
        rc
    };
    let deadline = || OnWouldBlock::WaitUntil(timeout_deadline(fd, false));
    socket_retry(fd, false, deadline, attempt).unwrap_or_else(fail_with)
}

/// `poll` on a green thread: a zero-timeout poll, then park on every fd until one may be ready.
pub(crate) unsafe fn poll(fds: *mut c::pollfd, nfds: c::nfds_t, timeout_ms: c_int) -> c_int {
    if !cooperative() || timeout_ms == 0 {
        // SAFETY: the caller's contract is poll(2)'s.
        return unsafe { raw::poll(fds, nfds, timeout_ms) };
    }
    let deadline =
        (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    // SAFETY: poll(2)'s contract: `fds` is valid for `nfds` entries.
    let entries = unsafe { std::slice::from_raw_parts(fds, nfds as usize) };
    let mut interests = Vec::with_capacity(entries.len());
    for e in entries.iter().filter(|e| e.fd >= 0) {
        let read = e.events & (c::POLLIN | c::POLLPRI) != 0;
        let write = e.events & c::POLLOUT != 0;
        if read || !write {
            interests.push((e.fd, Direction::Read)); // POLLHUP/POLLERR come as readable too
        }
        if write {
            interests.push((e.fd, Direction::Write));
        }
    }
    // SAFETY: as above.
    wait_until_ready(&interests, deadline, || unsafe { raw::poll(fds, nfds, 0) })
}

/// The loop of `poll` and `select`: look without blocking (`look`), and while nothing is
/// ready, park on `fds` until one may be. 0 when `deadline` passes, -1 with an errno when the
/// wait is interrupted.
fn wait_until_ready(
    fds: &[(c_int, Direction)],
    deadline: Option<Instant>,
    mut look: impl FnMut() -> c_int,
) -> c_int {
    loop {
        let ready = look();
        if ready != 0 {
            return ready;
        }
        match io::wait_any(fds, deadline, Interrupts::Report) {
            // Ready, or an fd was closed: look again (a closed one shows as POLLNVAL/EBADF).
            Ok(()) | Err(Fail::Stop(Stop::Closed)) => {}
            Err(Fail::Stop(Stop::TimedOut)) => return 0,
            Err(fail) => return fail_with(fail),
        }
    }
}

/// `clock_nanosleep`: relative or absolute (`TIMER_ABSTIME`) on any clock.
pub(crate) unsafe fn clock_nanosleep(
    clock: c::clockid_t,
    flags: c_int,
    req: *const c::timespec,
    rem: *mut c::timespec,
) -> c_int {
    if !cooperative() || req.is_null() {
        // SAFETY: the caller's contract is clock_nanosleep(2)'s.
        return unsafe { raw::clock_nanosleep(clock, flags, req, rem) };
    }
    // SAFETY: non-null, and valid by clock_nanosleep(2)'s contract.
    let req = unsafe { *req };
    if req.tv_nsec < 0 || req.tv_nsec >= 1_000_000_000 || req.tv_sec < 0 {
        return c::EINVAL;
    }
    let wanted = Duration::new(req.tv_sec as u64, req.tv_nsec as u32);
    let duration = if flags & c::TIMER_ABSTIME != 0 {
        let now = raw::clock_now(clock);
        wanted.saturating_sub(Duration::new(
            now.tv_sec.max(0) as u64,
            now.tv_nsec.max(0) as u32,
        ))
    } else {
        wanted
    };
    let deadline = crate::time::instant_in(duration);
    let (rc, left) = match crate::time::sleep_until_or_interrupt(deadline) {
        Ok(()) => (0, Duration::ZERO),
        // A handler ran: EINTR with the time left, as the kernel says it.
        Err(Interrupt::Signal { .. }) => (c::EINTR, deadline - Instant::now().min(deadline)),
        // Killed or timed out: EINTR with nothing left, so a caller that sleeps again for the
        // remainder (std's `thread::sleep` does) stops; the interrupt waits for the next park
        // point.
        Err(_) => (c::EINTR, Duration::ZERO),
    };
    if !rem.is_null() && flags & c::TIMER_ABSTIME == 0 {
        // SAFETY: non-null and valid by the contract.
        unsafe {
            *rem = c::timespec {
                tv_sec: left.as_secs() as c::time_t,
                tv_nsec: left.subsec_nanos() as c::c_long,
            }
        };
    }
    rc
}

/// `recvmsg` on a green thread.
pub(crate) unsafe fn recvmsg(fd: c_int, msg: *mut c::msghdr, flags: c_int) -> ssize_t {
    if !cooperative() || flags & c::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's contract is recvmsg(2)'s.
        return unsafe { raw::recvmsg(fd, msg, flags) };
    }
    // SAFETY: as recvmsg(2).
    transfer(fd, false, || unsafe {
        raw::recvmsg(fd, msg, flags | c::MSG_DONTWAIT)
    })
}

/// `sendmsg` on a green thread (may send part, as the kernel may for a signal).
pub(crate) unsafe fn sendmsg(fd: c_int, msg: *const c::msghdr, flags: c_int) -> ssize_t {
    if !cooperative() || flags & c::MSG_DONTWAIT != 0 {
        // SAFETY: the caller's contract is sendmsg(2)'s.
        return unsafe { raw::sendmsg(fd, msg, flags) };
    }
    // SAFETY: as sendmsg(2).
    transfer(fd, true, || unsafe {
        raw::sendmsg(fd, msg, flags | c::MSG_DONTWAIT)
    })
}

/// A message header around `iov`, for doing `readv`/`writev` on a socket as `recvmsg`/`sendmsg`.
fn iov_msg(iov: *const c::iovec, cnt: c_int) -> c::msghdr {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: c::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = cnt.max(0) as _;
    msg
}

/// `readv` on a green thread: `recvmsg(MSG_DONTWAIT)` for sockets, the real `readv` otherwise.
pub(crate) unsafe fn readv(fd: c_int, iov: *const c::iovec, cnt: c_int) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is readv(2)'s.
        return unsafe { raw::readv(fd, iov, cnt) };
    }
    let mut msg = iov_msg(iov, cnt);
    socket_or_plain(
        fd,
        false,
        // SAFETY: `msg` points at the caller's iovecs, valid by readv(2)'s contract.
        || unsafe { raw::recvmsg(fd, &mut msg, c::MSG_DONTWAIT) },
        // SAFETY: as above.
        || unsafe { raw::readv(fd, iov, cnt) },
    )
}

/// `writev` on a green thread: `sendmsg(MSG_DONTWAIT)` for sockets (may send part).
pub(crate) unsafe fn writev(fd: c_int, iov: *const c::iovec, cnt: c_int) -> ssize_t {
    if !cooperative() {
        // SAFETY: the caller's contract is writev(2)'s.
        return unsafe { raw::writev(fd, iov, cnt) };
    }
    let msg = iov_msg(iov, cnt);
    socket_or_plain(
        fd,
        true,
        // SAFETY: `msg` points at the caller's iovecs, valid by writev(2)'s contract.
        || unsafe { raw::sendmsg(fd, &msg, c::MSG_DONTWAIT) },
        // SAFETY: as above.
        || unsafe { raw::writev(fd, iov, cnt) },
    )
}

/// `ppoll` on a green thread: `poll` with the timeout converted (the signal mask is not
/// applied while parked: green threads do not own signal masks).
pub(crate) unsafe fn ppoll(
    fds: *mut c::pollfd,
    nfds: c::nfds_t,
    timeout: *const c::timespec,
    sigmask: *const c::sigset_t,
) -> c_int {
    if !cooperative() {
        // SAFETY: the caller's contract is ppoll(2)'s.
        return unsafe { raw::ppoll(fds, nfds, timeout, sigmask) };
    }
    let ms = if timeout.is_null() {
        -1
    } else {
        // SAFETY: non-null and valid by ppoll(2)'s contract.
        let t = unsafe { *timeout };
        (t.tv_sec.max(0) as u64 * 1000 + (t.tv_nsec.max(0) as u64).div_ceil(1_000_000))
            .min(i32::MAX as u64) as c_int
    };
    // SAFETY: as above.
    unsafe { poll(fds, nfds, ms) }
}

/// `select` on a green thread: a zero-timeout select on copies of the sets, then park on
/// every fd in them until one may be ready.
pub(crate) unsafe fn select(
    nfds: c_int,
    r: *mut c::fd_set,
    w: *mut c::fd_set,
    e: *mut c::fd_set,
    timeout: *mut c::timeval,
) -> c_int {
    // SAFETY: read only if non-null, valid by select(2)'s contract.
    let zero_timeout =
        !timeout.is_null() && unsafe { (*timeout).tv_sec == 0 && (*timeout).tv_usec == 0 };
    if !cooperative() || zero_timeout || !(0..=c::FD_SETSIZE as c_int).contains(&nfds) {
        // SAFETY: the caller's contract is select(2)'s.
        return unsafe { raw::select(nfds, r, w, e, timeout) };
    }
    let deadline = (!timeout.is_null()).then(|| {
        // SAFETY: non-null, valid.
        let t = unsafe { *timeout };
        crate::time::instant_in(Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_usec.clamp(0, 999_999) as u32 * 1000,
        ))
    });
    // SAFETY: each set is null or a valid fd_set, copied by value.
    let (r0, w0, e0) = unsafe {
        (
            r.as_ref().copied(),
            w.as_ref().copied(),
            e.as_ref().copied(),
        )
    };
    // `fd` < nfds <= FD_SETSIZE, inside the set.
    let is_set =
        |set: &Option<c::fd_set>, fd: c_int| set.as_ref().is_some_and(|s| raw::fd_isset(fd, s));
    let mut interests = Vec::new();
    for fd in 0..nfds {
        if is_set(&r0, fd) || is_set(&e0, fd) {
            interests.push((fd, Direction::Read));
        }
        if is_set(&w0, fd) {
            interests.push((fd, Direction::Write));
        }
    }
    let look = || {
        let (mut r1, mut w1, mut e1) = (r0, w0, e0);
        let mut zero = c::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let ptr =
            |s: &mut Option<c::fd_set>| s.as_mut().map_or(std::ptr::null_mut(), |s| s as *mut _);
        // SAFETY: pointers to our own copies, valid for the call.
        let ready =
            unsafe { raw::select(nfds, ptr(&mut r1), ptr(&mut w1), ptr(&mut e1), &mut zero) };
        if ready != 0 {
            // SAFETY: the caller's sets are valid where non-null; we write back what select
            // saw (or, on an error, nothing).
            unsafe {
                for (dst, src) in [(r, r1), (w, w1), (e, e1)] {
                    if let (Some(d), Some(s), true) = (dst.as_mut(), src, ready > 0) {
                        *d = s;
                    }
                }
            }
        }
        ready
    };
    let ready = wait_until_ready(&interests, deadline, look);
    if ready == 0 {
        // SAFETY: as above; a timed-out select reports empty sets and no time left.
        unsafe {
            for dst in [r, w, e] {
                if let Some(d) = dst.as_mut() {
                    raw::fd_zero(d);
                }
            }
            if let Some(t) = timeout.as_mut() {
                *t = c::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                };
            }
        }
    }
    ready
}

/// `close` on a thread with a hub: green threads waiting on `fd` are woken (their calls fail
/// with `EBADF`) and the hub forgets the fd, then the real close.
pub(crate) unsafe fn close(fd: c_int) -> c_int {
    crate::hub::io::closing(fd);
    // SAFETY: the caller's contract is close(2)'s.
    unsafe { raw::close(fd) }
}

/// The real `getaddrinfo`'s signature.
type GetAddrInfo = unsafe extern "C" fn(
    *const c::c_char,
    *const c::c_char,
    *const c::addrinfo,
    *mut *mut c::addrinfo,
) -> c_int;

/// `getaddrinfo` on a green thread: the real lookup runs on a helper thread while the green
/// thread parks, so one slow lookup does not stall the hub.
pub(crate) unsafe fn getaddrinfo(
    node: *const c::c_char,
    service: *const c::c_char,
    hints: *const c::addrinfo,
    res: *mut *mut c::addrinfo,
) -> c_int {
    let real = raw::next_symbol(c"getaddrinfo");
    if real.is_null() {
        return c::EAI_SYSTEM;
    }
    // SAFETY: `real` is libc's getaddrinfo, which has exactly this signature.
    let real: GetAddrInfo = unsafe { std::mem::transmute::<*mut c_void, GetAddrInfo>(real) };
    if !cooperative() {
        // SAFETY: the caller's contract is getaddrinfo(3)'s.
        return unsafe { real(node, service, hints, res) };
    }
    // The pointers stay valid while we wait: they belong to the parked green thread's caller.
    let (node, service, hints, res) = (
        node as usize,
        service as usize,
        hints as usize,
        res as usize,
    );
    let lookup = super::resolver().submit(move || {
        // SAFETY: see above; getaddrinfo(3)'s contract holds for these pointers.
        unsafe {
            real(
                node as *const _,
                service as *const _,
                hints as *const _,
                res as *mut _,
            )
        }
    });
    lookup.result().unwrap_or(c::EAI_SYSTEM)
}
