//! What travels between a pool's owner, its worker factory and its workers, all over
//! `ipc::Queue`s in shared memory made before the factory was forked.
//!
//! ```text
//!   owner (manager thread)                factory process              worker k
//!   ----------------------                ---------------              --------
//!   control  --Spawn{slot}/Close/Kill-->  forks workers, joins them
//!   events   <--Spawned/Died-----------
//!   inbox[k] --Task{id, call, func, tag, arg}------------------------> runs it
//!   results  <--Done{id, outcome}-------------------------------------
//! ```
//!
//! A task names its function by address: `call` is a monomorphised trampoline that decodes the
//! argument, calls `func` (a plain `fn(A) -> R`) and encodes the result. Addresses are valid in
//! the workers because they are forks of the owner's program image. Since shared memory is
//! untrusted, each task also carries `tag`, a SipHash of (call, func) under a key that lives
//! only in the private memory of the owner and its forks: a worker runs nothing whose tag
//! does not match.

use std::hash::BuildHasher;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One task for one worker, or the request to stop after the tasks before it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Task {
    Run {
        id: u64,
        call: usize,
        func: usize,
        tag: u64,
        #[serde(with = "byte_string")]
        arg: Vec<u8>,
    },
    Stop,
}

/// Why a worker produced no value for a task, as it travels back to the owner.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// The task's function panicked with this message.
    Panicked(String),
    /// The argument could not be decoded or the result encoded.
    Codec(String),
    /// The worker would not run it: the function tag was wrong.
    BadTag,
    /// The result could not be put on the results queue.
    NotSent(String),
}

/// A finished task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Done {
    pub(crate) id: u64,
    #[serde(with = "byte_string_or_failure")]
    pub(crate) outcome: Result<Vec<u8>, Failure>,
    /// How long the worker ran the task, in nanoseconds: the manager sizes its inboxes by it.
    /// Only a hint (shared memory is untrusted): a forged value changes how many tasks wait in
    /// an inbox, never what runs.
    pub(crate) busy_ns: u64,
}

/// Owner to factory.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Control {
    /// Fork a worker for this slot.
    Spawn { slot: u32 },
    /// No more spawns: exit once every worker has exited.
    Close,
    /// SIGKILL every worker, reap them, exit.
    Kill,
}

/// Factory to owner.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Event {
    Spawned {
        slot: u32,
        pid: u32,
    },
    /// `code` is the exit code, or `None` with the signal that ended it.
    Died {
        slot: u32,
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The factory could not fork a worker for this slot.
    SpawnFailed {
        slot: u32,
        error: String,
    },
    /// The worker in this slot panicked in the pool's initializer (sent by the worker,
    /// before it exits): the pool is broken.
    InitFailed {
        slot: u32,
        message: String,
    },
}

/// An encoded argument or result as one byte string: postcard writes its length and copies
/// the bytes, where a plain `Vec<u8>` would go through serde one byte at a time (a chunk of
/// `map` is tens of kilobytes).
mod byte_string {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl serde::de::Visitor<'_> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

/// [`byte_string`] for a task's outcome: the value's bytes, or why there are none.
mod byte_string_or_failure {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Failure;

    #[derive(Serialize, Deserialize)]
    enum Outcome {
        Value(#[serde(with = "super::byte_string")] Vec<u8>),
        Failure(Failure),
    }

    pub(super) fn serialize<S: Serializer>(
        outcome: &Result<Vec<u8>, Failure>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match outcome {
            Ok(bytes) => OutcomeRef::Value(bytes).serialize(s),
            Err(failure) => OutcomeRef::Failure(failure).serialize(s),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Vec<u8>, Failure>, D::Error> {
        Ok(match Outcome::deserialize(d)? {
            Outcome::Value(bytes) => Ok(bytes),
            Outcome::Failure(failure) => Err(failure),
        })
    }

    /// `Outcome` by reference, for encoding without a copy (same variants, same wire form).
    #[derive(Serialize)]
    #[serde(rename = "Outcome")]
    enum OutcomeRef<'a> {
        Value(#[serde(with = "super::byte_string")] &'a Vec<u8>),
        Failure(&'a Failure),
    }
}

/// The signature of a trampoline: function address, encoded argument -> encoded result or
/// why there is none.
pub(crate) type Trampoline = fn(usize, &[u8]) -> Result<Vec<u8>, Failure>;

/// Calls `func` (an `fn(A) -> R`) on a decoded `A` and encodes the `R`.
pub(crate) fn call<A: DeserializeOwned, R: Serialize>(
    func: usize,
    arg: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: `func` was made from an `fn(A) -> R` by `encode_task` in the owner, for this very
    // trampoline (the tag check ties the pair together), and the worker runs the same program
    // image (a fork without exec), so the address is that function.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let arg: A = postcard::from_bytes(arg)
        .map_err(|e| Failure::Codec(format!("cannot decode the task's argument: {e}")))?;
    let result = catch_unwind(AssertUnwindSafe(|| f(arg)))
        .map_err(|payload| Failure::Panicked(panic_message(&*payload)))?;
    encode(&result, size_of::<R>())
        .map_err(|e| Failure::Codec(format!("cannot encode the task's result: {e}")))
}

/// Calls `func` on every element of a decoded `Vec<A>` (one `map` chunk).
pub(crate) fn call_chunk<A: DeserializeOwned, R: Serialize>(
    func: usize,
    arg: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    run_chunk(arg, f)
}

/// Calls `func` (an `fn(A, B) -> R`) on every pair of a decoded `Vec<(A, B)>` (one
/// `starmap` chunk).
pub(crate) fn call_chunk_pairs<A: DeserializeOwned, B: DeserializeOwned, R: Serialize>(
    func: usize,
    arg: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call`, for an `fn(A, B) -> R` made by `Pool::starmap_async`.
    let f: fn(A, B) -> R = unsafe { std::mem::transmute::<usize, fn(A, B) -> R>(func) };
    run_chunk(arg, |(a, b)| f(a, b))
}

/// Calls `func` (an `fn(A) -> R`) on every value of a chunk sent as raw bytes (`map_plain`),
/// and returns the results as raw bytes: no serde at all.
pub(crate) fn call_chunk_plain<A: crate::ipc::Plain, R: crate::ipc::Plain>(
    func: usize,
    arg: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call`, for an `fn(A) -> R` made by `Pool::map_plain`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let items = crate::ipc::plain_from_bytes(arg);
    run_raw_chunk(items, f, |results| Some(crate::ipc::plain_bytes(results)))
}

/// [`call_chunk_plain`] for a `map` whose `A` and `R` are primitive numbers, known by their
/// `TypeId` (`map` takes any serde type, so it has no `Plain` bound to give).
pub(crate) fn call_chunk_numbers<A: 'static, R: 'static>(
    func: usize,
    arg: &[u8],
) -> Result<Vec<u8>, Failure> {
    // SAFETY: as in `call`, for an `fn(A) -> R` made by `Pool::map_async`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    let items = crate::ipc::numbers_from_bytes(arg);
    run_raw_chunk(items, f, crate::ipc::number_bytes)
}

/// Runs `f` on each of `items` (a raw chunk, `None` if its bytes were not whole values; a
/// panic fails the chunk) and gives back the values' bytes (`None`: not a raw type).
fn run_raw_chunk<A, R>(
    items: Option<Vec<A>>,
    f: fn(A) -> R,
    bytes: impl FnOnce(&[R]) -> Option<&[u8]>,
) -> Result<Vec<u8>, Failure> {
    let items = items
        .ok_or_else(|| Failure::Codec("a raw chunk is not a whole number of values".into()))?;
    let results: Vec<R> = catch_unwind(AssertUnwindSafe(|| items.into_iter().map(f).collect()))
        .map_err(|payload| Failure::Panicked(panic_message(&*payload)))?;
    bytes(&results)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Failure::Codec("the chunk's values are not of a raw type".into()))
}

/// Decodes a chunk of `T`s, runs `each` on every one (a panic fails the chunk) and encodes
/// the values.
fn run_chunk<T: DeserializeOwned, R: Serialize>(
    arg: &[u8],
    each: impl FnMut(T) -> R,
) -> Result<Vec<u8>, Failure> {
    let items: Vec<T> = postcard::from_bytes(arg)
        .map_err(|e| Failure::Codec(format!("cannot decode the chunk: {e}")))?;
    let results: Vec<R> = catch_unwind(AssertUnwindSafe(|| {
        items.into_iter().map(each).collect::<Vec<R>>()
    }))
    .map_err(|payload| Failure::Panicked(panic_message(&*payload)))?;
    encode(&results, results.len() * size_of::<R>())
        .map_err(|e| Failure::Codec(format!("cannot encode the chunk's results: {e}")))
}

/// Encodes `value` into a buffer of `hint` bytes made up front (for a chunk: its length times
/// the item's in-memory size, which numbers encode to at most), so a big chunk is not copied
/// again and again while its buffer grows.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    hint: usize,
) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(value, Vec::with_capacity(hint.clamp(16, 1 << 20)))
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// The key behind task tags, made before the factory is forked (so the owner and every worker
/// share it) and never written to shared memory.
#[derive(Debug, Clone)]
pub(crate) struct TagKey(std::hash::RandomState);

impl TagKey {
    pub(crate) fn new() -> TagKey {
        TagKey(std::hash::RandomState::new())
    }

    pub(crate) fn tag(&self, call: usize, func: usize) -> u64 {
        self.0.hash_one((call, func))
    }

    /// The trampoline of a task, if its tag is right.
    pub(crate) fn check(&self, call: usize, func: usize, tag: u64) -> Option<Trampoline> {
        if self.tag(call, func) != tag {
            return None;
        }
        // SAFETY: the tag proves `call` was made from a `Trampoline` by this pool's owner (no one
        // else knows the key), in this program image.
        Some(unsafe { std::mem::transmute::<usize, Trampoline>(call) })
    }
}
