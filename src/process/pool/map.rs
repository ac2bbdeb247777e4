//! The `map` family of [`Pool`]: one function over many items.
//!
//! | method | Python | yields |
//! |---|---|---|
//! | `map`, `map_chunked` | `map` | every value, in input order, or the first error |
//! | `map_async`, `map_async_with` | `map_async` | an [`AsyncResult`] of all of them |
//! | `starmap`, `starmap_async` | `starmap` | `f(a, b)` for each pair |
//! | `imap` | `imap` | each value in input order, as soon as it and those before it are done |
//! | `imap_unordered` | `imap_unordered` | each value as soon as it is done |
//! | `map_plain` | — | `map` for [`Plain`] values: chunks travel as raw bytes, no serde |
//!
//! `map` and `starmap` send the items in chunks: one message (one encoded `Vec`) per chunk,
//! so the per-message cost is paid once per chunk. Each chunk's outcome is *gathered* on the
//! manager thread: values are appended to the result as soon as every chunk before theirs is
//! in (a chunk that arrives early waits in its slot), so the result is built while the
//! workers still run, not all at the end — its pages are first touched then, too; the last
//! chunk fills the `AsyncResult` (the first error fills it at once instead). A
//! chunk that comes back with another number of values than it took is an error, never a
//! shifted result (the workers' memory is as untrusted as any shared memory).
//!
//! **The codec.** postcard writes each number as a varint: 3–7 ns an item to encode and about
//! 2 to decode on this machine, four passes per item (owner, worker, worker, owner) — the
//! largest CPU cost of a `map` of small numbers (NOTES §10). So a chunk of [`Plain`] values
//! travels as their bytes instead: one copy each way, and the worker reads them back whatever
//! they are (`Plain` says any bytes are a valid value). `map_plain` does this for any `Plain`
//! type (arrays, your own); `map` does it by itself when the argument and the value are both
//! primitive numbers (`u8` to `u128`, `i8` to `i128`, `usize`, `isize`, `f32`, `f64`), which
//! it recognises by their `TypeId` — the reason its `A` must be `'static` — and sends anything
//! else through serde. The values are the same either way (postcard's varints carry every
//! number exactly); only the cost differs.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::task::{Callback, Completion, ErrorCallback, Fill, Outcome, decode};
use super::{AsyncResult, Pool, TaskError, wire};
use crate::ipc::{Plain, is_plain_number, number_bytes};

/// Chunks per worker for `map` when no chunk size is given: enough that encoding, work and
/// decoding overlap, few enough that per-message costs stay small.
const CHUNKS_PER_WORKER: usize = 16;

impl Pool {
    /// `f` over `items` in the workers; the values in input order, or the first error.
    /// Items travel in chunks (about sixteen per worker, so encoding, work and decoding
    /// overlap); when `A` and `R` are both primitive numbers, as their raw bytes, with no
    /// serde (see the module docs).
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_async(f, items).get()
    }

    /// [`map`](Pool::map) with an explicit chunk size (items per message).
    pub fn map_chunked<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunk: usize,
    ) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_chunks(f, items, Some(chunk), None, None).get()
    }

    /// [`map`](Pool::map) without waiting (Python's `map_async`): the values come through
    /// the returned [`AsyncResult`] — all of them in input order, or the first error.
    ///
    /// ```
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    ///
    /// let pool = greenrt::process::Pool::new(2)?;
    /// let pending = pool.map_async(double, 0..100);
    /// // ... other work while the workers run ...
    /// assert_eq!(pending.get().unwrap()[99], 198);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.map_chunks(f, items, None, None, None)
    }

    /// [`map_async`](Pool::map_async) with a `callback` on all the values, or an
    /// `error_callback` on the first error, run on the pool's manager thread before the
    /// result is ready (Python's `callback=` and `error_callback=`).
    pub fn map_async_with<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        callback: impl FnOnce(&Vec<R>) + Send + 'static,
        error_callback: impl FnOnce(&TaskError) + Send + 'static,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (callback, error_callback) = (Box::new(callback), Box::new(error_callback));
        self.map_chunks(f, items, None, Some(callback), Some(error_callback))
    }

    /// `f(a, b)` for every pair, in the workers (Python's `starmap`); the values in input
    /// order, or the first error. For more arguments, take a tuple and use `map`.
    ///
    /// ```
    /// fn power(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    ///
    /// let pool = greenrt::process::Pool::new(2)?;
    /// assert_eq!(pool.starmap(power, [(2, 10), (3, 3)]).unwrap(), [1024, 27]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn starmap<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> Result<Vec<R>, TaskError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async(f, items).get()
    }

    /// [`starmap`](Pool::starmap) without waiting (Python's `starmap_async`).
    pub fn starmap_async<A, B, R>(
        &self,
        f: fn(A, B) -> R,
        items: impl IntoIterator<Item = (A, B)>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<(A, B)> = items.into_iter().collect();
        let chunk = self.default_chunk(items.len());
        let call = wire::call_chunk_pairs::<A, B, R>;
        self.map_gathered(call, f as usize, &items, chunk, None, None)
    }

    /// [`map`](Pool::map) for plain data ([`Plain`]: numbers, arrays of numbers): each chunk
    /// travels as the values' raw bytes, with no serde on either side — for maps over many
    /// small values, where encoding is most of the work (see the module docs).
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = greenrt::process::Pool::new(2)?;
    /// let items: Vec<u64> = (0..10_000).collect();
    /// let squares = pool.map_plain(square, &items).unwrap();
    /// assert_eq!(squares[9_999], 9_999 * 9_999);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn map_plain<A: Plain, R: Plain>(
        &self,
        f: fn(A) -> R,
        items: &[A],
    ) -> Result<Vec<R>, TaskError> {
        let chunk = self.default_chunk(items.len());
        let call = wire::call_chunk_plain::<A, R>;
        let encode = |batch: &[A]| Ok(crate::ipc::plain_bytes(batch).to_vec());
        self.gather_chunks(
            call,
            f as usize,
            items,
            chunk,
            encode,
            decode_plain::<R>,
            None,
            None,
        )
        .get()
    }

    /// `f` over `items`, yielding each value (or error) in input order, as soon as it and
    /// every value before it are done (Python's `imap`). Every task is submitted at once.
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// let pool = greenrt::process::Pool::new(2)?;
    /// let squares: Vec<u64> = pool.imap(square, 1..=4).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn imap<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> impl Iterator<Item = Result<R, TaskError>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let pending: Vec<AsyncResult<R>> = items
            .into_iter()
            .map(|item| self.apply_async(f, item))
            .collect();
        pending.into_iter().map(AsyncResult::get)
    }

    /// `f` over `items`, yielding each value (or error) as soon as its task finishes.
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
    ) -> impl Iterator<Item = Result<R, TaskError>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let done: Arc<crate::sync::Queue<Result<R, TaskError>>> =
            Arc::new(crate::sync::Queue::new(0));
        let mut count = 0;
        for item in items {
            let done = done.clone();
            let arg_hint = size_of::<A>();
            let completion: Completion = Box::new(move |outcome| {
                let _ = done.put(decode::<R>(outcome));
            });
            self.send(wire::call::<A, R>, f as usize, &item, arg_hint, completion);
            count += 1;
        }
        (0..count).map(move |_| done.get().unwrap_or(Err(TaskError::Terminated)))
    }

    /// `f` over `items` in chunks of `chunk` (default: about `CHUNKS_PER_WORKER` per worker),
    /// gathered into one result: as raw bytes when `A` and `R` are both primitive numbers
    /// (see the module docs), else serde-encoded.
    fn map_chunks<A, R>(
        &self,
        f: fn(A) -> R,
        items: impl IntoIterator<Item = A>,
        chunk: Option<usize>,
        callback: Option<Callback<Vec<R>>>,
        error_callback: Option<ErrorCallback>,
    ) -> AsyncResult<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let items: Vec<A> = items.into_iter().collect();
        let items = &items[..];
        let chunk = chunk.unwrap_or_else(|| self.default_chunk(items.len()));
        if !(is_plain_number::<A>() && is_plain_number::<R>()) {
            let call = wire::call_chunk::<A, R>;
            return self.map_gathered(call, f as usize, items, chunk, callback, error_callback);
        }
        let encode = |batch: &[A]| Ok(number_bytes(batch).expect("a number").to_vec());
        self.gather_chunks(
            wire::call_chunk_numbers::<A, R>,
            f as usize,
            items,
            chunk,
            encode,
            decode_numbers::<R>,
            callback,
            error_callback,
        )
    }

    /// Chunks for `items` items: about `CHUNKS_PER_WORKER` per worker.
    fn default_chunk(&self, items: usize) -> usize {
        items.div_ceil(self.workers() * CHUNKS_PER_WORKER).max(1)
    }

    /// Sends `items` in serde-encoded chunks of `chunk` through the trampoline `call` and
    /// gathers the chunks' values into one result.
    fn map_gathered<T: Serialize, R: DeserializeOwned + Send + 'static>(
        &self,
        call: wire::Trampoline,
        func: usize,
        items: &[T],
        chunk: usize,
        callback: Option<Callback<Vec<R>>>,
        error_callback: Option<ErrorCallback>,
    ) -> AsyncResult<Vec<R>> {
        let encode = |batch: &[T]| super::encode_arg(batch, size_of_val(batch));
        let decode = decode::<Vec<R>>;
        self.gather_chunks(
            call,
            func,
            items,
            chunk,
            encode,
            decode,
            callback,
            error_callback,
        )
    }

    /// Sends `items` in chunks of `chunk`, each made into a message by `encode`, through the
    /// trampoline `call`, and gathers what `decode` makes of the chunks' outcomes into one
    /// result (see the module docs). A chunk that cannot be encoded fails the result.
    #[allow(clippy::too_many_arguments)]
    fn gather_chunks<T, R: Send + 'static>(
        &self,
        call: wire::Trampoline,
        func: usize,
        items: &[T],
        chunk: usize,
        encode: impl Fn(&[T]) -> Result<Vec<u8>, TaskError>,
        decode: ChunkDecoder<R>,
        callback: Option<Callback<Vec<R>>>,
        error_callback: Option<ErrorCallback>,
    ) -> AsyncResult<Vec<R>> {
        let (result, fill) = AsyncResult::pending(callback, error_callback);
        let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
        let gather = Arc::new(Gather::new(&chunks, fill, decode));
        if chunks.is_empty() {
            gather.finish_if_complete();
        }
        for (index, batch) in chunks.into_iter().enumerate() {
            let gather = gather.clone();
            let completion: Completion = Box::new(move |outcome| gather.chunk_done(index, outcome));
            match encode(batch) {
                Ok(bytes) => self.send_encoded(call, func, bytes, completion),
                Err(error) => completion(Err(error)),
            }
        }
        result
    }
}

/// A worker's raw result bytes as values of `R` (`map_plain`).
fn decode_plain<R: Plain>(outcome: Outcome) -> Result<Vec<R>, TaskError> {
    decode_raw(outcome, crate::ipc::plain_from_bytes)
}

/// A worker's raw result bytes as numbers (`map` of numbers).
fn decode_numbers<R: 'static>(outcome: Outcome) -> Result<Vec<R>, TaskError> {
    decode_raw(outcome, crate::ipc::numbers_from_bytes)
}

fn decode_raw<R>(
    outcome: Outcome,
    values: fn(&[u8]) -> Option<Vec<R>>,
) -> Result<Vec<R>, TaskError> {
    outcome.and_then(|bytes| {
        values(&bytes).ok_or_else(|| {
            TaskError::Codec("a raw chunk's results are not a whole number of values".into())
        })
    })
}

/// Turns a chunk's outcome into its values.
type ChunkDecoder<R> = fn(Outcome) -> Result<Vec<R>, TaskError>;

/// Collects the outcomes of one `map`'s chunks (see the module docs).
struct Gather<R> {
    state: Mutex<GatherState<R>>,
    decode: ChunkDecoder<R>,
    /// How many values each chunk must come back with.
    expected: Vec<usize>,
}

struct GatherState<R> {
    /// The values of chunks `0..next`, in input order.
    values: Vec<R>,
    /// The first chunk not appended yet.
    next: usize,
    /// One slot per chunk that arrived before the chunks ahead of it.
    parts: Vec<Option<Vec<R>>>,
    left: usize,
    /// Taken by whoever fills the result: the last chunk, or the first error.
    fill: Option<Fill<Vec<R>>>,
}

impl<R: Send + 'static> Gather<R> {
    fn new<T>(chunks: &[&[T]], fill: Fill<Vec<R>>, decode: ChunkDecoder<R>) -> Gather<R> {
        Gather {
            state: Mutex::new(GatherState {
                values: Vec::new(),
                next: 0,
                parts: (0..chunks.len()).map(|_| None).collect(),
                left: chunks.len(),
                fill: Some(fill),
            }),
            decode,
            expected: chunks.iter().map(|c| c.len()).collect(),
        }
    }

    /// One chunk's outcome: its values go in its slot; an error fills the result at once.
    fn chunk_done(&self, index: usize, outcome: Outcome) {
        let values = (self.decode)(outcome).and_then(|values| {
            let want = self.expected[index];
            if values.len() == want {
                return Ok(values);
            }
            Err(TaskError::Codec(format!(
                "chunk {index} came back with {} values for {want} items",
                values.len()
            )))
        });
        match values {
            Ok(values) => {
                let mut state = self.lock();
                state.parts[index] = Some(values);
                state.left -= 1;
                self.append_ready(&mut state);
                drop(state);
                self.finish_if_complete();
            }
            Err(error) => {
                let fill = self.lock().fill.take();
                if let Some(fill) = fill {
                    fill(Err(error));
                }
            }
        }
    }

    /// Appends the chunks that are now next in input order to the result.
    fn append_ready(&self, state: &mut GatherState<R>) {
        while let Some(slot) = state.parts.get_mut(state.next) {
            let Some(part) = slot.take() else {
                return;
            };
            if state.values.capacity() == 0 {
                state.values.reserve_exact(self.expected.iter().sum());
            }
            state.values.extend(part);
            state.next += 1;
        }
    }

    /// Fills the result with every value in order, once the last chunk is in.
    fn finish_if_complete(&self) {
        let (fill, values) = {
            let mut state = self.lock();
            if state.left > 0 || state.fill.is_none() {
                return;
            }
            (state.fill.take(), std::mem::take(&mut state.values))
        };
        if let Some(fill) = fill {
            fill(Ok(values));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GatherState<R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
