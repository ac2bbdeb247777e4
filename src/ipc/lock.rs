//! `ipc::Lock`: a mutual-exclusion lock shared by processes (multiprocessing.Lock).
//!
//! The lock is one robust word (see `raw_lock`): held by a *process*, taken and released
//! without a syscall when uncontended, and taken over — with [`LockError::OwnerDied`] — when
//! its holder dies holding it.

use std::io;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LockError;
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region};

/// A lock shared between processes.
///
/// Make it before `fork` with [`Lock::new`] (children inherit it), or give it a name with
/// [`Lock::create`] and [`Lock::open`]. Clones share one lock.
///
/// ```
/// use greenrt::ipc::Lock;
///
/// let lock = Lock::new()?;
/// let child = greenrt::process::Process::spawn({
///     let lock = lock.clone();
///     move || {
///         let _held = lock.lock().unwrap();
///         // ... the critical section, in the child ...
///     }
/// })?;
/// child.join()?;
/// drop(lock.lock().unwrap());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Lock {
    region: Arc<Region>,
}

/// Holds an [`ipc::Lock`](Lock); dropping it unlocks.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    _not_send: PhantomData<*const ()>,
}

impl Lock {
    /// A new unlocked lock in anonymous shared memory, inherited by forked children.
    pub fn new() -> io::Result<Lock> {
        let region = Region::anonymous(Kind::Lock, size_of::<RawLock>(), |_| {})?;
        Ok(Lock {
            region: Arc::new(region),
        })
    }

    /// Creates the named lock `name`, which unrelated processes can [`open`](Lock::open).
    /// The name is removed when this handle (and its clones) are dropped or at exit.
    pub fn create(name: &str) -> io::Result<Lock> {
        let region = Region::create(name, Kind::Lock, size_of::<RawLock>(), |_| {})?;
        Ok(Lock {
            region: Arc::new(region),
        })
    }

    /// Opens the named lock `name` made by [`Lock::create`].
    pub fn open(name: &str) -> io::Result<Lock> {
        Ok(Lock {
            region: Arc::new(Region::open(name, Kind::Lock, size_of::<RawLock>())?),
        })
    }

    fn raw(&self) -> &RawLock {
        self.region.body()
    }

    /// Takes the lock, waiting as long as needed (parking only the green thread).
    ///
    /// `Err(LockError::OwnerDied(guard))`: the previous holder died holding it; you hold it
    /// now. `Err(LockError::Corrupt(_))`: the shared word is not a valid lock.
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.lock_until(None)
    }

    /// Like [`lock`](Lock::lock), giving up with `LockError::TimedOut` after `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.lock_until(crate::time::deadline_in(timeout))
    }

    /// Takes the lock only if it is free now (`LockError::TimedOut` if not).
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        match self.raw().try_lock() {
            Ok(Some(how)) => self.guard(how),
            Ok(None) => Err(LockError::TimedOut),
            Err(e) => Err(LockError::Corrupt(e)),
        }
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        match self.raw().lock(deadline) {
            Ok(Some(how)) => self.guard(how),
            Ok(None) => Err(LockError::TimedOut),
            Err(e) => Err(LockError::Corrupt(e)),
        }
    }

    fn guard(&self, how: Acquired) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        let guard = LockGuard {
            lock: self,
            _not_send: PhantomData,
        };
        match how {
            Acquired::Clean => Ok(guard),
            Acquired::OwnerDied => Err(LockError::OwnerDied(guard)),
        }
    }

    /// The pid of the process holding the lock now, if any (a snapshot, for diagnostics).
    pub fn holder(&self) -> Option<u32> {
        self.raw().holder()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        super::unlock_or_panic(self.lock.raw());
    }
}
