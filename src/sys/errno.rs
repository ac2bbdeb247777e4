//! The `errno` values greenrt itself produces or tests for, named once here so that code
//! outside `sys/` need not name `libc`.

/// Bad file descriptor: the fd was closed while a green thread waited on it.
pub(crate) const EBADF: i32 = libc::EBADF;
