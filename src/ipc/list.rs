//! `ipc::SharedList<T>`: a list in shared memory (multiprocessing's `Manager().list()`,
//! without a server process). Same store and guarantees as `SharedDict` (see `dict.rs`):
//! every change is committed by one flip, so a writer killed at any instant leaves the old
//! or the new list, and each operation costs O(size of the list).

use std::io;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cow::CowStore;
use super::dict::{decode, encode};
use super::region::Kind;

/// A list of serde values shared by processes; see the module docs.
///
/// ```
/// let pids: greenrt::ipc::SharedList<u32> = greenrt::ipc::SharedList::new(4096)?;
/// let child = greenrt::process::Process::spawn({
///     let pids = pids.clone();
///     move || pids.push(&std::process::id()).unwrap()
/// })?;
/// child.join()?;
/// assert_eq!(pids.snapshot()?, [child.pid()]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedList<T> {
    store: CowStore,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SharedList<T> {
    fn clone(&self) -> Self {
        SharedList {
            store: self.store.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SharedList<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedList")
            .field("store", &self.store)
            .finish()
    }
}

impl<T: Serialize + DeserializeOwned> SharedList<T> {
    /// An empty list holding at most `capacity` encoded bytes, in anonymous shared memory.
    pub fn new(capacity: usize) -> io::Result<SharedList<T>> {
        Ok(SharedList {
            store: CowStore::new(Kind::List, None, capacity)?,
            _t: PhantomData,
        })
    }

    /// Creates the named list `name`.
    pub fn create(name: &str, capacity: usize) -> io::Result<SharedList<T>> {
        Ok(SharedList {
            store: CowStore::new(Kind::List, Some(name), capacity)?,
            _t: PhantomData,
        })
    }

    /// Opens the named list `name`.
    pub fn open(name: &str) -> io::Result<SharedList<T>> {
        Ok(SharedList {
            store: CowStore::open(Kind::List, name)?,
            _t: PhantomData,
        })
    }

    /// Changes the whole list under the lock, atomically across processes: `f` gets the
    /// current items and may change them freely. Errors: `StorageFull` with
    /// [`CapacityExceeded`](super::CapacityExceeded) if the result does not fit (nothing
    /// changed).
    pub fn with<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> io::Result<R> {
        let locked = self.store.lock()?;
        let bytes = locked.read()?;
        let mut items: Vec<T> = if bytes.is_empty() {
            Vec::new()
        } else {
            decode(&bytes)?
        };
        let result = f(&mut items);
        locked.write(&encode(&items)?)?;
        Ok(result)
    }

    /// Appends `item`.
    pub fn push(&self, item: &T) -> io::Result<()>
    where
        T: Clone,
    {
        self.with(|items| items.push(item.clone()))
    }

    /// Removes and returns the last item.
    pub fn pop(&self) -> io::Result<Option<T>> {
        self.with(Vec::pop)
    }

    /// A consistent copy of the items.
    pub fn snapshot(&self) -> io::Result<Vec<T>> {
        let bytes = self.store.lock()?.read()?;
        if bytes.is_empty() {
            Ok(Vec::new())
        } else {
            decode(&bytes)
        }
    }

    /// The item at `index`, if any.
    pub fn get(&self, index: usize) -> io::Result<Option<T>> {
        Ok(self.snapshot()?.into_iter().nth(index))
    }

    /// The number of items.
    pub fn len(&self) -> io::Result<usize> {
        Ok(self.snapshot()?.len())
    }

    /// True if the list is empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}
