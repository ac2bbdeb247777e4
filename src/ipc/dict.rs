//! `ipc::SharedDict<K, V>`: a dictionary in shared memory (multiprocessing's
//! `Manager().dict()`, without a server process).
//!
//! The entries live in a [`CowStore`](super::cow) as one postcard-encoded list of
//! (key bytes, value bytes), sorted by key bytes (postcard encodes equal values to equal
//! bytes, so keys compare by their encoding). Every operation takes the store's lock; an
//! update decodes, changes and re-encodes the whole list and commits it with one flip, so a
//! writer killed at any instant leaves either the old or the new dictionary, never a mix.
//! Cost: O(size of the dictionary) per operation — fine for the coordination data it is for
//! (results by pid, counters, small tables), not a database.

use std::io;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cow::CowStore;
use super::region::{Kind, invalid};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Makes the dictionary own no K or V (they live encoded in shared memory) yet stay `Send` and
/// `Sync` whatever K and V are.
type Marker<K, V> = PhantomData<fn(K, V) -> (K, V)>;

/// A dictionary of serde keys and values shared by processes; see the module docs.
///
/// ```
/// use greenrt::ipc::SharedDict;
///
/// let d: SharedDict<u32, String> = SharedDict::new(64 * 1024)?;
/// let child = greenrt::process::Process::spawn({
///     let d = d.clone();
///     move || { d.insert(&1, &"from the child".to_string()).unwrap(); }
/// })?;
/// child.join()?;
/// assert_eq!(d.get(&1)?.as_deref(), Some("from the child"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedDict<K, V> {
    store: CowStore,
    _kv: Marker<K, V>,
}

impl<K, V> Clone for SharedDict<K, V> {
    fn clone(&self) -> Self {
        SharedDict {
            store: self.store.clone(),
            _kv: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for SharedDict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDict")
            .field("store", &self.store)
            .finish()
    }
}

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|e| invalid(format!("shared collection holds undecodable data: {e}")))
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> SharedDict<K, V> {
    /// An empty dictionary holding at most `capacity` encoded bytes, in anonymous shared
    /// memory (inherited across `fork`).
    pub fn new(capacity: usize) -> io::Result<SharedDict<K, V>> {
        Ok(SharedDict {
            store: CowStore::new(Kind::Dict, None, capacity)?,
            _kv: PhantomData,
        })
    }

    /// Creates the named dictionary `name`.
    pub fn create(name: &str, capacity: usize) -> io::Result<SharedDict<K, V>> {
        Ok(SharedDict {
            store: CowStore::new(Kind::Dict, Some(name), capacity)?,
            _kv: PhantomData,
        })
    }

    /// Opens the named dictionary `name`.
    pub fn open(name: &str) -> io::Result<SharedDict<K, V>> {
        Ok(SharedDict {
            store: CowStore::open(Kind::Dict, name)?,
            _kv: PhantomData,
        })
    }

    fn entries(bytes: &[u8]) -> io::Result<Entries> {
        if bytes.is_empty() {
            Ok(Vec::new())
        } else {
            decode(bytes)
        }
    }

    /// The value for `key`, if any.
    pub fn get(&self, key: &K) -> io::Result<Option<V>> {
        let k = encode(key)?;
        let entries = Self::entries(&self.store.lock()?.read()?)?;
        match entries.binary_search_by(|(ek, _)| ek.as_slice().cmp(&k)) {
            Ok(i) => decode(&entries[i].1).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sets `key` to `value`; returns the old value. Errors: `StorageFull` carrying
    /// [`CapacityExceeded`](super::CapacityExceeded) (nothing changed).
    pub fn insert(&self, key: &K, value: &V) -> io::Result<Option<V>> {
        let value = encode(value)?;
        self.update_bytes(key, move |_| Some(value))
    }

    /// Removes `key`; returns its value.
    pub fn remove(&self, key: &K) -> io::Result<Option<V>> {
        self.update_bytes(key, |_| None)
    }

    /// Read-modify-write of one entry under the lock, atomic across processes: `f` gets the
    /// current value and returns the new one (`None` removes it). Returns the old value.
    ///
    /// ```
    /// let hits: greenrt::ipc::SharedDict<String, u64> = greenrt::ipc::SharedDict::new(4096)?;
    /// hits.update(&"page".to_string(), |n| Some(n.unwrap_or(0) + 1))?;
    /// assert_eq!(hits.get(&"page".to_string())?, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn update(&self, key: &K, f: impl FnOnce(Option<V>) -> Option<V>) -> io::Result<Option<V>> {
        let mut failure = None;
        let old = self.update_bytes(key, |old| {
            let old: Option<V> = match old.map(decode).transpose() {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(e);
                    return old.map(<[u8]>::to_vec);
                }
            };
            match f(old).map(|v| encode(&v)).transpose() {
                Ok(new) => new,
                Err(e) => {
                    failure = Some(e);
                    None
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => old,
        }
    }

    fn update_bytes(
        &self,
        key: &K,
        f: impl FnOnce(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> io::Result<Option<V>> {
        let k = encode(key)?;
        let locked = self.store.lock()?;
        let mut entries = Self::entries(&locked.read()?)?;
        let found = entries.binary_search_by(|(ek, _)| ek.as_slice().cmp(&k));
        let old_bytes = found.ok().map(|i| entries[i].1.clone());
        let new = f(old_bytes.as_deref());
        match (found, new) {
            (Ok(i), Some(v)) => entries[i].1 = v,
            (Ok(i), None) => {
                entries.remove(i);
            }
            (Err(i), Some(v)) => entries.insert(i, (k, v)),
            (Err(_), None) => return Ok(None),
        }
        locked.write(&encode(&entries)?)?;
        old_bytes.map(|b| decode(&b)).transpose()
    }

    /// The number of entries.
    pub fn len(&self) -> io::Result<usize> {
        Ok(Self::entries(&self.store.lock()?.read()?)?.len())
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A consistent copy of every entry, in key-encoding order.
    pub fn snapshot(&self) -> io::Result<Vec<(K, V)>> {
        let entries = Self::entries(&self.store.lock()?.read()?)?;
        entries
            .iter()
            .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
            .collect()
    }

    /// Removes every entry.
    pub fn clear(&self) -> io::Result<()> {
        self.store.lock()?.write(&encode(&Entries::new())?)
    }
}
