//! A region of shared memory holding one ipc object, anonymous or named.
//!
//! ```text
//!   offset 0                 64                                   len
//!   +------------------------+------------------------------------+
//!   | header                 | body: the object's own layout      |
//!   | magic kind version len | (state words, then bytes if any)   |
//!   +------------------------+------------------------------------+
//! ```
//!
//! * **Anonymous** regions (`MAP_SHARED | MAP_ANONYMOUS`) are made before `fork` and are
//!   inherited: parent and child see the same pages.
//! * **Named** regions are files `/dev/shm/greenrt.<name>` with mode 0600. The creator
//!   builds the object in a private temporary file and then *links* it under its name, so an
//!   opener never sees a half-initialised object, and two creators of one name cannot both
//!   win (`AlreadyExists`). The creator removes the name when its handle is dropped, and at
//!   `exit` for handles that never were (leaked or in statics); a forked child never removes
//!   its parent's names.
//!
//! An opener trusts nothing: the magic, kind, version and length must match
//! (`Region::check_header`), and every object re-checks its own fields whenever it reads
//! them (e.g. the queue's `check`, the lock word's `raw_lock::check`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::sys::per_process::PerProcess;
use crate::sys::shm;

/// Bytes before an object's body.
pub(crate) const HEADER_LEN: usize = 64;

/// "greenrt" and a NUL, little-endian: the first word of every region.
const MAGIC: u64 = u64::from_le_bytes(*b"greenrt\0");
/// Bumped whenever a layout changes, so an old process cannot misread a new object.
/// Layout version: 2 since the lock word got its holder identity (issue 13); 3 since the
/// queue has a put side and a get side, 4 since a queue's puts end on a cache line (issue 18).
const VERSION: u32 = 4;

/// Which object a region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    Event = 4,
    Condition = 5,
    Queue = 6,
    Value = 7,
    Dict = 8,
    List = 9,
    Barrier = 10,
}

#[repr(C)]
struct Header {
    magic: AtomicU64,
    kind: AtomicU32,
    version: AtomicU32,
    len: AtomicU64,
}

/// A layout that may live in a shared region and be read through `&Self`.
///
/// # Safety
/// The type must be `#[repr(C)]`, made only of atomics (so every bit pattern is a valid value
/// and all mutation goes through `&self`), have no `Drop`, and an alignment of at most 64.
pub(crate) unsafe trait SharedLayout: Sized {}

/// One mapped region. See the module docs.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    /// The file behind a named region, and whether this process made it.
    name: Option<Named>,
}

struct Named {
    path: PathBuf,
    creator_pid: Option<u32>,
}

// SAFETY: the region is plain shared memory; every access goes through atomics or through
// byte copies guarded by the object's own lock, so it may be used from any thread.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// A zeroed anonymous region with `body_len` bytes of body, set up by `init`.
    pub(crate) fn anonymous(
        kind: Kind,
        body_len: usize,
        init: impl FnOnce(&Region),
    ) -> io::Result<Region> {
        let len = HEADER_LEN + body_len;
        Ok(Region::build(
            shm::map_shared_anonymous(len)?,
            len,
            kind,
            init,
        ))
    }

    /// Creates the named object `name` (see the module docs); `AlreadyExists` if it exists.
    pub(crate) fn create(
        name: &str,
        kind: Kind,
        body_len: usize,
        init: impl FnOnce(&Region),
    ) -> io::Result<Region> {
        let path = path_of(name)?;
        let len = HEADER_LEN + body_len;
        let tmp = temp_path()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let made = (|| -> io::Result<Region> {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.set_len(len as u64)?;
            let region = Region::build(shm::map_shared_file(&file, len)?, len, kind, init);
            std::fs::hard_link(&tmp, &path)?;
            Ok(region)
        })();
        let _ = std::fs::remove_file(&tmp);
        let mut region = made?;
        watch_for_truncation(region.ptr.as_ptr(), region.len, &path);
        let pid = std::process::id();
        register_for_exit(path.clone());
        region.name = Some(Named {
            path,
            creator_pid: Some(pid),
        });
        Ok(region)
    }

    /// Opens the named object `name`, which must hold a `kind` with a body of at least
    /// `min_body` bytes (its fixed layout).
    ///
    /// Errors: `NotFound`; `InvalidData` if the file is not a greenrt object of that kind, or
    /// is too short for its layout (a forged or truncated file: caught here, not at first use).
    pub(crate) fn open(name: &str, kind: Kind, min_body: usize) -> io::Result<Region> {
        let path = path_of(name)?;
        let file = File::options().read(true).write(true).open(&path)?;
        let meta = file.metadata()?;
        trust(&path, &meta)?;
        let len = meta.len();
        if len < (HEADER_LEN + min_body) as u64 && len >= HEADER_LEN as u64 {
            return Err(invalid(format!(
                "{} is too short for a {kind:?}: {len} bytes, its layout needs {}",
                path.display(),
                HEADER_LEN + min_body
            )));
        }
        if len < HEADER_LEN as u64 || len > isize::MAX as u64 {
            return Err(invalid(format!(
                "{} is not a greenrt object",
                path.display()
            )));
        }
        let ptr = shm::map_shared_file(&file, len as usize)?;
        watch_for_truncation(ptr, len as usize, &path);
        let region = Region {
            ptr: NonNull::new(ptr).expect("mmap returned null"),
            len: len as usize,
            name: Some(Named {
                path,
                creator_pid: None,
            }),
        };
        region.check_header(kind)?;
        Ok(region)
    }

    /// A new mapping of `len` bytes at `ptr`, initialised by `init` and then published.
    fn build(ptr: *mut u8, len: usize, kind: Kind, init: impl FnOnce(&Region)) -> Region {
        let region = Region {
            ptr: NonNull::new(ptr).expect("mmap returned null"),
            len,
            name: None,
        };
        init(&region);
        region.publish(kind);
        region
    }

    /// Writes the header last: a region is valid only once its body is initialised.
    fn publish(&self, kind: Kind) {
        let h = self.header();
        h.kind.store(kind as u32, Ordering::Relaxed);
        h.version.store(VERSION, Ordering::Relaxed);
        h.len.store(self.len as u64, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
    }

    fn check_header(&self, kind: Kind) -> io::Result<()> {
        let h = self.header();
        let what = self.describe();
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(invalid(format!(
                "{what} is not a greenrt object (bad magic)"
            )));
        }
        if h.version.load(Ordering::Relaxed) != VERSION {
            return Err(invalid(format!("{what} has an unknown layout version")));
        }
        if h.kind.load(Ordering::Relaxed) != kind as u32 {
            return Err(invalid(format!("{what} does not hold a {kind:?}")));
        }
        if h.len.load(Ordering::Relaxed) != self.len as u64 {
            return Err(invalid(format!(
                "{what}: its header disagrees with its size"
            )));
        }
        Ok(())
    }

    fn header(&self) -> &Header {
        // SAFETY: every region is at least HEADER_LEN long and page aligned; Header is made
        // of atomics, so any bytes are a valid value.
        unsafe { &*self.ptr.as_ptr().cast::<Header>() }
    }

    /// The body as a `T`, which must fit.
    pub(crate) fn body<T: SharedLayout>(&self) -> &T {
        assert!(
            HEADER_LEN + std::mem::size_of::<T>() <= self.len,
            "region too small for its layout"
        );
        // SAFETY: in bounds (checked above), aligned (page-aligned base + 64, T's alignment is
        // at most 64 by SharedLayout), and SharedLayout types accept any bytes.
        unsafe { &*self.ptr.as_ptr().add(HEADER_LEN).cast::<T>() }
    }

    /// The length of the body in bytes.
    #[inline]
    pub(crate) fn body_len(&self) -> usize {
        self.len - HEADER_LEN
    }

    /// A pointer to `len` body bytes starting at `offset`, which must lie inside the body.
    #[inline]
    pub(crate) fn body_bytes(&self, offset: usize, len: usize) -> *mut u8 {
        let end = offset.checked_add(len).expect("body range overflows");
        assert!(
            end <= self.body_len(),
            "body range {offset}..{end} outside the region"
        );
        // SAFETY: in bounds, checked just above.
        unsafe { self.ptr.as_ptr().add(HEADER_LEN + offset) }
    }

    /// For error messages.
    pub(crate) fn describe(&self) -> String {
        match &self.name {
            Some(n) => n.path.display().to_string(),
            None => "an anonymous shared region".to_string(),
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(Named {
            path,
            creator_pid: Some(pid),
        }) = &self.name
            && *pid == std::process::id()
        {
            let _ = std::fs::remove_file(path);
            forget_for_exit(path);
        }
        if self.name.is_some() {
            shm::forget_named_mapping(self.ptr.as_ptr());
        }
        // SAFETY: ptr/len are exactly our mapping and this is the last use of it.
        unsafe { shm::unmap_shared(self.ptr.as_ptr(), self.len) };
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({}, {} bytes)", self.describe(), self.len)
    }
}

/// An `InvalidData` error: what a corrupt or foreign region yields.
pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// `/dev/shm/greenrt.<name>`; names are 1..=200 of `[A-Za-z0-9._-]`.
fn path_of(name: &str) -> io::Result<PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.');
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "bad ipc object name {name:?}: use 1 to 200 of A-Z a-z 0-9 . _ - (not starting with .)"
            ),
        ));
    }
    Ok(PathBuf::from(format!("/dev/shm/greenrt.{name}")))
}

/// Another process may shrink a named object's file while we have it mapped; touching the
/// lost pages then raises SIGBUS. greenrt's fault handler names the object before aborting
/// instead of a bare "Bus error" (an operation cannot be failed cleanly from inside a fault).
fn watch_for_truncation(ptr: *mut u8, len: usize, path: &Path) {
    crate::sys::signal::install_fault_handlers();
    shm::note_named_mapping(ptr, len, path);
}

/// Refuses a named object this user did not make: greenrt creates them owned by the creator
/// and mode 0600, so a file of another owner, or one others may write, was put there by
/// someone else (who could change it under us at any moment).
fn trust(path: &Path, meta: &std::fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = shm::effective_uid();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} belongs to uid {}, not to this user ({me}): not opening it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {:o}, not 0600: others may write it; not opening it",
                path.display(),
                meta.mode() & 0o777
            ),
        ));
    }
    Ok(())
}

/// A fresh name to build a new object under before it is linked into place. Unpredictable
/// (64 random bits): another user who could guess it could make `create` fail by making the
/// file first.
fn temp_path() -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let salt = shm::random_u64()?;
    Ok(PathBuf::from(format!(
        "/dev/shm/.greenrt-tmp.{}.{n}.{salt:016x}",
        std::process::id()
    )))
}

/// Names this process created and has not removed yet (per process: a forked child starts
/// with none, and never with a lock some other thread of its parent held).
static CREATED: PerProcess<Mutex<Vec<PathBuf>>> = PerProcess::new();

fn created() -> &'static Mutex<Vec<PathBuf>> {
    CREATED.get(|| Mutex::new(Vec::new()))
}

fn register_for_exit(path: PathBuf) {
    // Not a `Once`: a fork while another thread ran it would leave the child's copy "running".
    static HOOKED: AtomicBool = AtomicBool::new(false);
    if !HOOKED.swap(true, Ordering::AcqRel) {
        shm::at_exit(remove_created_at_exit);
    }
    created()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path);
}

fn forget_for_exit(path: &PathBuf) {
    created()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

/// Removes the named objects this process created and still has: at `exit` (an `atexit`
/// hook) and at the end of a child process, which ends with `_exit` and so skips `atexit`.
pub(crate) fn remove_created_now() {
    remove_created_at_exit();
}

extern "C" fn remove_created_at_exit() {
    // try_lock: never block at exit on a lock some other thread died holding.
    if let Ok(created) = created().try_lock() {
        for path in created.iter() {
            let _ = std::fs::remove_file(path);
        }
    }
}
