//! Platform code: the only place where greenrt calls `libc` or makes raw syscalls.
//!
//! The rest of the crate relies on this module for these things, all Linux x86_64:
//!
//! | need                         | provided by          | used by                         |
//! |------------------------------|----------------------|---------------------------------|
//! | stack memory with a guard    | [`mem`]              | `hub::stack`                    |
//! | a SIGSEGV hook and alt stack | [`signal`]           | `hub::overflow`                 |
//! | waiting on one fd, no hub    | [`poll`]             | `net` on plain OS threads       |
//! | small process facts          | [`mem::page_size`]   | everywhere pages matter         |
//! | sub-millisecond timer wake-up| [`timerfd`]          | `hub::reactor`                  |
//! | the process's thread count   | [`threads`]          | the deadlock report             |
//! | fork, pidfds, reaping        | [`process`]          | `process::Process`              |
//! | is a lock owner alive?       | [`process::pid_state`]| `ipc` owner-death checks       |
//! | shared futexes, futex_waitv  | [`futex`]            | `ipc` primitives and waiting    |
//! | shared mappings, atexit      | [`shm`]              | `ipc::region`                   |
//! | globals that survive `fork`  | [`per_process`]      | hub, ipc, monkey (the ground floor) |
//! | prefetch for writing         | [`cpu`]              | `ipc::Queue` puts               |
//!
//! Every function here is a thin, documented wrapper: it turns a C return code into an
//! `io::Result` and says in a `// SAFETY:` comment why its arguments are valid.

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!("greenrt supports Linux on x86_64 only (futexes, epoll, MADV_GUARD_INSTALL)");

#[cfg(feature = "monkey")]
pub(crate) mod c;
pub(crate) mod cpu;
pub(crate) mod errno;
pub(crate) use errno::EBADF;
pub(crate) mod futex;
#[cfg(feature = "monkey")]
pub mod interpose;
pub(crate) mod mem;
pub(crate) mod per_process;
pub(crate) mod poll;
pub(crate) mod process;
#[cfg(feature = "monkey")]
pub(crate) mod raw;
pub(crate) mod shm;
pub(crate) mod signal;
pub(crate) mod threads;
pub(crate) mod timerfd;
