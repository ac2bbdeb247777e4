//! `ipc::Value<T>` and `ipc::Array<T>`: plain data in shared memory with its own lock
//! (multiprocessing.Value and Array).
//!
//! ```text
//!   body: [ RawLock (4 bytes) | pad to 64 | T or [T; len] ]
//! ```
//!
//! The data is only touched under the lock. Because another process could have written any
//! bytes there, `T` must be [`Plain`]: every bit pattern is a valid `T` (integers, floats,
//! arrays of them — not `bool`, `char`, references or enums).

use std::io;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::LockError;
use super::plain::Plain;
use super::raw_lock::{Acquired, RawLock};
use super::region::{Kind, Region};

/// Where the data starts in the body: after the lock, 64-byte aligned.
const DATA_OFFSET: usize = 64;

/// An array of `len` values of `T` in shared memory, with its own lock. `Value<T>` is the
/// one-element case.
///
/// ```
/// use greenrt::ipc::Array;
///
/// let counts = Array::<u64>::new(4)?;
/// counts.lock().unwrap()[2] += 5;
/// assert_eq!(counts.to_vec()?, [0, 0, 5, 0]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Array<T: Plain> {
    region: Arc<Region>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            region: self.region.clone(),
            len: self.len,
            _t: PhantomData,
        }
    }
}

/// Holds an array's lock; derefs to its elements.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ArrayGuard<'a, T: Plain> {
    array: &'a Array<T>,
    _not_send: PhantomData<*const ()>,
}

fn body_len<T>(len: usize) -> io::Result<usize> {
    len.checked_mul(size_of::<T>())
        .and_then(|n| n.checked_add(DATA_OFFSET))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "ipc::Array too large"))
}

impl<T: Plain> Array<T> {
    /// `len` zero values in anonymous shared memory (inherited across `fork`).
    pub fn new(len: usize) -> io::Result<Array<T>> {
        let region = Region::anonymous(Kind::Value, body_len::<T>(len)?, |_| {})?;
        Ok(Array::wrap(region))
    }

    /// `values` copied into anonymous shared memory.
    ///
    /// ```
    /// let a = greenrt::ipc::Array::from_slice(&[1.5f64, 2.5])?;
    /// assert_eq!((a.len(), a.to_vec()?), (2, vec![1.5, 2.5]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_slice(values: &[T]) -> io::Result<Array<T>> {
        let array = Array::new(values.len())?;
        array
            .lock()
            .map_err(io::Error::from)?
            .copy_from_slice(values);
        Ok(array)
    }

    /// Creates the named array `name` of `len` zero values.
    pub fn create(name: &str, len: usize) -> io::Result<Array<T>> {
        Ok(Array::wrap(Region::create(
            name,
            Kind::Value,
            body_len::<T>(len)?,
            |_| {},
        )?))
    }

    /// Opens the named array `name`; its size must be a whole number of `T`s.
    ///
    /// ```
    /// use greenrt::ipc::Array;
    /// let name = format!("doc-array-{}", std::process::id());
    /// let made = Array::<u8>::create(&name, 3)?; // the name goes when this is dropped
    /// made.lock().unwrap()[0] = 7;
    /// assert_eq!(Array::<u8>::open(&name)?.to_vec()?, [7, 0, 0]);
    /// assert!(Array::<u64>::open(&name).is_err()); // 3 bytes are no whole u64
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(name: &str) -> io::Result<Array<T>> {
        let region = Region::open(name, Kind::Value, DATA_OFFSET)?;
        let data = region.body_len().checked_sub(DATA_OFFSET);
        match data {
            Some(n) if size_of::<T>() == 0 || n % size_of::<T>() == 0 => Ok(Array::wrap(region)),
            _ => Err(super::region::invalid(format!(
                "{}: its size is not a whole number of {}",
                region.describe(),
                std::any::type_name::<T>()
            ))),
        }
    }

    fn wrap(region: Region) -> Array<T> {
        let len = (region.body_len() - DATA_OFFSET)
            .checked_div(size_of::<T>())
            .unwrap_or(0);
        Array {
            region: Arc::new(region),
            len,
            _t: PhantomData,
        }
    }

    fn raw(&self) -> &RawLock {
        self.region.body()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the array's lock (errors as for [`Lock::lock`](super::Lock::lock)).
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.lock_until(None)
    }

    /// Takes the lock, giving up after `timeout`.
    ///
    /// ```
    /// use greenrt::ipc::{Array, LockError};
    /// use std::time::Duration;
    /// let a = Array::<u32>::new(1)?;
    /// let _held = a.lock().unwrap(); // not reentrant: held by this process now
    /// let again = a.lock_timeout(Duration::from_millis(10));
    /// assert!(matches!(again, Err(LockError::TimedOut)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        self.lock_until(crate::time::deadline_in(timeout))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<ArrayGuard<'_, T>, LockError<ArrayGuard<'_, T>>> {
        let guard = |_: ()| ArrayGuard {
            array: self,
            _not_send: PhantomData,
        };
        match self.raw().lock(deadline) {
            Ok(Some(Acquired::Clean)) => Ok(guard(())),
            Ok(Some(Acquired::OwnerDied)) => Err(LockError::OwnerDied(guard(()))),
            Ok(None) => Err(LockError::TimedOut),
            Err(e) => Err(LockError::Corrupt(e)),
        }
    }

    /// A copy of the elements, read under the lock (a dead holder's lock is taken over).
    pub fn to_vec(&self) -> io::Result<Vec<T>> {
        let guard = self.lock().or_else(LockError::recover)?;
        Ok(guard.to_vec())
    }

    fn data(&self) -> *mut T {
        self.region
            .body_bytes(DATA_OFFSET, self.len * size_of::<T>())
            .cast()
    }
}

impl<T: Plain> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the data lies inside the region (checked by body_bytes), is 64-byte aligned
        // (page + 64 + 64), any bits are a valid T (Plain), and we hold the lock, so no
        // greenrt user writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.array.data(), self.array.len) }
    }
}

impl<T: Plain> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; the lock makes this guard the only accessor.
        unsafe { std::slice::from_raw_parts_mut(self.array.data(), self.array.len) }
    }
}

impl<T: Plain> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        super::unlock_or_panic(self.array.raw());
    }
}

/// One `T` in shared memory with its own lock.
///
/// ```
/// use greenrt::ipc::Value;
///
/// let counter = Value::new(0u64)?;
/// let child = greenrt::process::Process::spawn({
///     let counter = counter.clone();
///     move || *counter.lock().unwrap() += 1
/// })?;
/// child.join()?;
/// assert_eq!(counter.get()?, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Value<T: Plain> {
    array: Array<T>,
}

impl<T: Plain> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            array: self.array.clone(),
        }
    }
}

/// Holds a value's lock; derefs to the value.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ValueGuard<'a, T: Plain>(ArrayGuard<'a, T>);

impl<T: Plain> Value<T> {
    /// `value` in anonymous shared memory (inherited across `fork`).
    pub fn new(value: T) -> io::Result<Value<T>> {
        Ok(Value {
            array: Array::from_slice(&[value])?,
        })
    }

    /// Creates the named value `name`, starting at `value`.
    pub fn create(name: &str, value: T) -> io::Result<Value<T>> {
        let array = Array::create(name, 1)?;
        array.lock().map_err(io::Error::from)?[0] = value;
        Ok(Value { array })
    }

    /// Opens the named value `name`.
    ///
    /// ```
    /// use greenrt::ipc::{Array, Value};
    /// let name = format!("doc-value-{}", std::process::id());
    /// let made = Value::create(&name, 5u32)?;
    /// let opened = Value::<u32>::open(&name)?; // e.g. in an unrelated process
    /// opened.set(6)?;
    /// assert_eq!(made.get()?, 6);
    /// let pair = format!("doc-pair-{}", std::process::id());
    /// let _two = Array::<u32>::create(&pair, 2)?;
    /// assert!(Value::<u32>::open(&pair).is_err()); // not a single value
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(name: &str) -> io::Result<Value<T>> {
        let array = Array::open(name)?;
        if array.len() != 1 {
            return Err(super::region::invalid(format!(
                "ipc object {name:?} is not a single value"
            )));
        }
        Ok(Value { array })
    }

    /// Takes the value's lock (errors as for [`Lock::lock`](super::Lock::lock)).
    ///
    /// ```
    /// use greenrt::ipc::{LockError, Value};
    /// let balance = Value::new(100i64)?;
    /// let child = greenrt::process::Process::spawn({
    ///     let balance = balance.clone();
    ///     move || {
    ///         let mut guard = balance.lock().unwrap();
    ///         *guard -= 30;
    ///         std::mem::forget(guard); // ends holding the lock, as a process killed mid-update
    ///     }
    /// })?;
    /// child.join()?;
    /// match balance.lock() {
    ///     // The lock is ours now; what it guards may be half-updated: check, then go on.
    ///     Err(LockError::OwnerDied(guard)) => assert_eq!(*guard, 70),
    ///     _ => panic!("the dead holder is reported to the next one"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        wrap_value(self.array.lock())
    }

    /// Takes the lock, giving up after `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, LockError<ValueGuard<'_, T>>> {
        wrap_value(self.array.lock_timeout(timeout))
    }

    /// Reads the value under the lock.
    pub fn get(&self) -> io::Result<T> {
        Ok(*self.lock().or_else(LockError::recover)?)
    }

    /// Writes the value under the lock.
    pub fn set(&self, value: T) -> io::Result<()> {
        *self.lock().or_else(LockError::recover)? = value;
        Ok(())
    }
}

fn wrap_value<'a, T: Plain>(
    r: Result<ArrayGuard<'a, T>, LockError<ArrayGuard<'a, T>>>,
) -> Result<ValueGuard<'a, T>, LockError<ValueGuard<'a, T>>> {
    match r {
        Ok(g) => Ok(ValueGuard(g)),
        Err(LockError::OwnerDied(g)) => Err(LockError::OwnerDied(ValueGuard(g))),
        Err(LockError::TimedOut) => Err(LockError::TimedOut),
        Err(LockError::Corrupt(e)) => Err(LockError::Corrupt(e)),
    }
}

impl<T: Plain> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0[0]
    }
}

impl<T: Plain> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0[0]
    }
}
