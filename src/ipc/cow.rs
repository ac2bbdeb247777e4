//! A crash-safe blob in shared memory: two areas, one active; an update writes the inactive
//! one and then flips which is active. The store under `SharedDict` and `SharedList`.
//!
//! ```text
//!   CowState: lock | active (0 or 1) | len[0] | len[1]       area 0 (capacity) | area 1 (capacity)
//! ```
//!
//! | word      | meaning                                                         |
//! |-----------|-----------------------------------------------------------------|
//! | `lock`    | robust lock word (see `raw_lock`): one writer or reader at a time |
//! | `active`  | which area holds the current contents                           |
//! | `len[i]`  | bytes used in area `i`                                          |
//!
//! The flip (one store to `active`, after the new area and its length are written) is the
//! commit point. A writer killed before it leaves the old contents current; after it, the
//! new ones. No journal is needed, and a lock taken over from a dead holder (`OwnerDied`)
//! guards consistent data. The price: every update rewrites the whole contents, O(size).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::raw_lock::RawLock;
use super::region::{Kind, Region, SharedLayout, invalid};

#[repr(C)]
struct CowState {
    lock: RawLock,
    active: AtomicU32,
    capacity: AtomicU64,
    len: [AtomicU64; 2],
}

// SAFETY: repr(C), atomics only.
unsafe impl SharedLayout for CowState {}

const AREAS_OFFSET: usize = size_of::<CowState>().next_multiple_of(64);

/// The contents were larger than the store's capacity (inside an `io::Error` of kind
/// `StorageFull`); nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityExceeded {
    /// Bytes the new contents need.
    pub needed: usize,
    /// Bytes the store holds.
    pub capacity: usize,
}

impl std::fmt::Display for CapacityExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shared collection full: {} bytes needed, capacity {}",
            self.needed, self.capacity
        )
    }
}

impl std::error::Error for CapacityExceeded {}

/// See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct CowStore {
    region: Arc<Region>,
}

/// The store, locked: read the current bytes, write new ones.
pub(crate) struct Locked<'a> {
    store: &'a CowStore,
}

impl CowStore {
    pub(crate) fn new(kind: Kind, name: Option<&str>, capacity: usize) -> io::Result<CowStore> {
        let len = AREAS_OFFSET + 2 * capacity;
        let init = |r: &Region| {
            r.body::<CowState>()
                .capacity
                .store(capacity as u64, Ordering::Relaxed)
        };
        let region = match name {
            Some(name) => Region::create(name, kind, len, init)?,
            None => Region::anonymous(kind, len, init)?,
        };
        Ok(CowStore {
            region: Arc::new(region),
        })
    }

    pub(crate) fn open(kind: Kind, name: &str) -> io::Result<CowStore> {
        let store = CowStore {
            region: Arc::new(Region::open(name, kind, AREAS_OFFSET)?),
        };
        store.capacity()?;
        Ok(store)
    }

    fn state(&self) -> &CowState {
        self.region.body()
    }

    /// The capacity, checked against the region's size.
    fn capacity(&self) -> io::Result<usize> {
        let capacity = self.state().capacity.load(Ordering::Relaxed);
        let fits = (capacity as usize)
            .checked_mul(2)
            .and_then(|n| n.checked_add(AREAS_OFFSET));
        if fits != Some(self.region.body_len()) {
            return Err(invalid(format!(
                "shared collection in {} is corrupt (capacity {capacity})",
                self.region.describe()
            )));
        }
        Ok(capacity as usize)
    }

    /// Takes the lock. A dead holder's lock is simply taken over: the data is consistent.
    pub(crate) fn lock(&self) -> io::Result<Locked<'_>> {
        self.state().lock.lock(None)?.expect("no deadline");
        Ok(Locked { store: self })
    }
}

impl Locked<'_> {
    /// A copy of the current bytes (empty for a new store).
    pub(crate) fn read(&self) -> io::Result<Vec<u8>> {
        let s = self.store.state();
        let capacity = self.store.capacity()?;
        let active = s.active.load(Ordering::Acquire);
        if active > 1 {
            return Err(invalid(format!(
                "shared collection: active area {active} is corrupt"
            )));
        }
        let len = s.len[active as usize].load(Ordering::Relaxed);
        if len > capacity as u64 {
            return Err(invalid(format!(
                "shared collection: length {len} exceeds capacity {capacity}"
            )));
        }
        let start = AREAS_OFFSET + active as usize * capacity;
        let mut out = vec![0; len as usize];
        // SAFETY: `body_bytes` bounds-checks the range; we hold the lock, so no greenrt user
        // writes this area meanwhile (writers only ever write the inactive one).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.store.region.body_bytes(start, out.len()),
                out.as_mut_ptr(),
                out.len(),
            )
        };
        Ok(out)
    }

    /// Replaces the contents with `bytes`: into the inactive area, then the flip.
    pub(crate) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let s = self.store.state();
        let capacity = self.store.capacity()?;
        if bytes.len() > capacity {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                CapacityExceeded {
                    needed: bytes.len(),
                    capacity,
                },
            ));
        }
        let inactive = 1 - s.active.load(Ordering::Acquire).min(1);
        let start = AREAS_OFFSET + inactive as usize * capacity;
        let half = bytes.len() / 2;
        // SAFETY: bounds-checked by `body_bytes`; the inactive area is read by no one (readers
        // hold the lock and read the active area).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.store.region.body_bytes(start, half),
                half,
            )
        };
        super::fault::point(super::fault::CrashPoint::CollectionMidWrite);
        let rest = bytes.len() - half;
        // SAFETY: as above, for the second half.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes[half..].as_ptr(),
                self.store.region.body_bytes(start + half, rest),
                rest,
            )
        };
        s.len[inactive as usize].store(bytes.len() as u64, Ordering::Relaxed);
        s.active.store(inactive, Ordering::Release); // the commit point
        Ok(())
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(&self.store.state().lock);
    }
}
