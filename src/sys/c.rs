//! The C vocabulary of the interposed calls (feature `monkey`): the types, flags and error
//! numbers that `monkey` speaks because the functions it stands in for speak them. They are
//! named here, in `sys/`, so that the rest of the crate never names `libc`; the few libc
//! *functions* the hooks need are wrapped in `sys::raw`.

pub(crate) use libc::{
    addrinfo, c_char, c_int, c_long, c_void, clockid_t, fd_set, iovec, msghdr, nfds_t, pollfd,
    sighandler_t, siginfo_t, sigset_t, size_t, sockaddr, socklen_t, ssize_t, time_t, timespec,
    timeval,
};

/// `struct sigaction` (named apart from the `sigaction` function).
pub(crate) type SigAction = libc::sigaction;

pub(crate) use libc::{
    EAGAIN, EAI_SYSTEM, EBADF, ECANCELED, EINPROGRESS, EINTR, EINVAL, ENOTSOCK, ETIMEDOUT,
    FD_SETSIZE, MSG_DONTWAIT, O_NONBLOCK, POLLIN, POLLOUT, POLLPRI, SA_RESTART, SA_SIGINFO,
    SIG_DFL, SIG_ERR, SIG_IGN, SO_RCVTIMEO, SO_SNDTIMEO, TIMER_ABSTIME,
};
