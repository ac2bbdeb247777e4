//! A task queue in Redis shared by any number of processes and machines: the producer's side
//! (put, results, statistics). The worker's side is in `worker.rs`; the server-side steps
//! and the keys are described in `scripts.rs`.
//!
//! Delivery is *at least once*: a task runs again only if the worker running it was declared
//! dead (no heartbeat for the lease time) — each such task is counted `requeued`, so the extra
//! runs are counted and bounded by the leases dead workers held. Results are delivered
//! *exactly once*: an ack removes the lease and delivers the result in one atomic step, and
//! an ack from a worker that lost its lease (declared dead, then alive again) delivers
//! nothing and is counted `lost`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ::redis::{Cmd, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::envelope::{RawResult, decode, encode};
use super::scripts;
use super::session::Session;
use super::worker::Worker;

/// A task's id, given by the queue when it is put (1, 2, 3, ... per queue).
pub type TaskId = u64;

/// How a queue behaves; every process using one queue should use the same values.
#[derive(Clone, Debug)]
pub struct Options {
    /// A worker slot not heard from for this long is dead, and the task it held is put back
    /// for another worker. Heartbeats go every quarter of it. Default 10 s.
    pub lease: Duration,
    /// How long a call keeps reconnecting when Redis is unreachable before it fails with the
    /// connection's error. Default 30 s.
    pub patience: Duration,
    /// The most keys [`WorkQueue::put_unique`] ever admits (a crawl's page budget); `None`:
    /// no limit. Default `None`.
    pub max_unique: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lease: Duration::from_secs(10),
            patience: Duration::from_secs(30),
            max_unique: None,
        }
    }
}

/// A finished task's outcome, as delivered to the handle that put it.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskResult<R> {
    /// The id [`WorkQueue::put`] returned.
    pub id: TaskId,
    /// The worker's result, or its error message.
    pub outcome: Result<R, String>,
}

/// The queue's counts (all processes together), from [`WorkQueue::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Tasks put.
    pub put: u64,
    /// Tasks finished with `Ok`.
    pub done: u64,
    /// Tasks finished with `Err`.
    pub failed: u64,
    /// Tasks put back because the slot holding them was declared dead (each may run twice).
    pub requeued: u64,
    /// Tasks put back because a lease was dropped unfinished, or a worker left holding one.
    pub released: u64,
    /// Acks refused because the slot no longer held the lease (nothing was delivered).
    pub lost: u64,
    /// Envelopes or results that could not be read, moved to the dead letters.
    pub corrupt: u64,
    /// Put and not yet finished (waiting, or leased).
    pub unfinished: u64,
    /// Waiting to be taken.
    pub pending: u64,
}

/// What every handle of one queue in this process shares: where, what, and idle sessions.
pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) options: Options,
    idle: RefCell<Vec<Session>>,
}

impl Shared {
    /// Runs `f` with an idle session (opening one if none is idle), then keeps it for reuse.
    pub(crate) fn with_session<V>(
        &self,
        f: impl FnOnce(&mut Session) -> io::Result<V>,
    ) -> io::Result<V> {
        let popped = self.idle.borrow_mut().pop();
        let mut session = match popped {
            Some(s) => s,
            None => self.open_session()?,
        };
        let outcome = f(&mut session);
        self.idle.borrow_mut().push(session);
        outcome
    }

    pub(crate) fn open_session(&self) -> io::Result<Session> {
        Session::open(&self.url, self.options.patience)
    }

    /// The full name of key `suffix` of this queue.
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Runs a memoized script (see `session.rs`): exactly once, however often it is retried.
    pub(crate) fn memo_eval(
        &self,
        session: &mut Session,
        script: &Script,
        args: &[&[u8]],
    ) -> io::Result<String> {
        let (id, seq) = (session.id().to_string(), session.next_seq());
        session.run(|con| {
            let mut call = eval(script, &self.prefix);
            call.arg(&id).arg(seq);
            for a in args {
                call.arg(*a);
            }
            call.query(con)
        })
    }

    /// Runs a script that is safe to run twice.
    pub(crate) fn eval<V: ::redis::FromRedisValue, A: AsRef<[u8]>>(
        &self,
        session: &mut Session,
        script: &Script,
        args: &[A],
    ) -> io::Result<V> {
        session.run(|con| {
            let mut call = eval(script, &self.prefix);
            for a in args {
                call.arg(a.as_ref());
            }
            call.query(con)
        })
    }

    /// Deletes `session`'s memo entry (best effort, no reconnect: this is a goodbye).
    pub(crate) fn forget(&self, session: &mut Session) {
        let (key, id) = (self.key("sessions"), session.id().to_string());
        let _: io::Result<i64> =
            session.run_once(|con| ::redis::cmd("HDEL").arg(&key).arg(&id).query(con));
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for mut session in self.idle.take() {
            self.forget(&mut session);
        }
    }
}

/// `EVALSHA sha 0 prefix` — the start of every script call (see `scripts.rs`).
pub(crate) fn eval(script: &Script, prefix: &str) -> Cmd {
    let mut call = ::redis::cmd("EVALSHA");
    call.arg(script.get_hash()).arg(0).arg(prefix);
    call
}

/// A handle on the Redis work queue `name`: put tasks, receive their results, read the
/// queue's counts, and make [`Worker`]s. Tasks `T` and results `R` travel as `serde` values.
///
/// Handles are for one OS thread (any number of green threads on it); open one per thread
/// and per process — each reconnects by itself after a dropped connection or a Redis
/// restart (see [`Options::patience`]).
///
/// ```no_run
/// use std::time::Duration;
/// use greenrt::dist::WorkQueue;
///
/// let queue: WorkQueue<u64, u64> = WorkQueue::open("redis://127.0.0.1/", "squares")?;
/// let id = queue.put(&7)?;
/// // ... a worker in any process: ...
/// let worker = queue.worker(1)?;
/// if let Some(lease) = worker.take(Duration::from_secs(1))? {
///     let n = *lease.task();
///     lease.finish(Ok(n * n))?;
/// }
/// // ... and the result comes back to the handle that put the task.
/// let result = queue.next_result(Duration::from_secs(1))?.expect("a result");
/// assert_eq!((result.id, result.outcome), (id, Ok(49)));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct WorkQueue<T, R = ()> {
    shared: Rc<Shared>,
    /// Names this handle's result list (random).
    handle: String,
    receiver: RefCell<Option<Receiver<R>>>,
    _types: PhantomData<fn(T) -> R>,
}

impl<T, R> WorkQueue<T, R>
where
    T: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    /// Opens the queue `name` on the Redis server at `url` (`redis://host:port/db`) with the
    /// default [`Options`]. Fails if the server cannot be reached within the patience.
    pub fn open(url: &str, name: &str) -> io::Result<Self> {
        Self::open_with(url, name, Options::default())
    }

    /// Opens the queue `name` with `options`.
    pub fn open_with(url: &str, name: &str, options: Options) -> io::Result<Self> {
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a queue name must be non-empty and without braces: {name:?}"),
            ));
        }
        if options.lease < Duration::from_millis(100) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the lease time must be at least 100 ms",
            ));
        }
        let shared = Rc::new(Shared {
            url: url.to_string(),
            // One hash tag: a Redis Cluster keeps all of a queue's keys on one node, which the
            // scripts need.
            prefix: format!("greenrt:{{{name}}}:"),
            options,
            idle: RefCell::new(Vec::new()),
        });
        let first = shared.open_session()?;
        shared.idle.borrow_mut().push(first);
        Ok(WorkQueue {
            shared,
            handle: format!("{:016x}", crate::sys::shm::random_u64()?),
            receiver: RefCell::new(None),
            _types: PhantomData,
        })
    }

    /// Puts a task; its result will come to this handle's [`next_result`](Self::next_result).
    pub fn put(&self, task: &T) -> io::Result<TaskId> {
        Ok(self.put_many(std::slice::from_ref(task))?[0])
    }

    /// Puts several tasks in one round trip, in order; returns their ids.
    pub fn put_many(&self, tasks: &[T]) -> io::Result<Vec<TaskId>> {
        let bodies = tasks.iter().map(encode).collect::<io::Result<Vec<_>>>()?;
        let mut args: Vec<&[u8]> = vec![self.handle.as_bytes()];
        args.extend(bodies.iter().map(Vec::as_slice));
        let reply = self
            .shared
            .with_session(|s| self.shared.memo_eval(s, &scripts::PUT, &args))?;
        let ids: Vec<TaskId> = ids(&reply)?;
        if ids.len() != tasks.len() {
            return Err(bad_reply("put", &reply));
        }
        Ok(ids)
    }

    /// Puts `task` under `key` unless a task was ever put under `key` in this queue (or the
    /// queue has admitted [`Options::max_unique`] keys): a crawl frontier, where `SADD` on the
    /// queue's seen-set decides which of many spiders fetches a URL. Returns the new task's
    /// id, or `None` when the key was seen. Nobody receives these tasks' results; workers
    /// report through [`Lease::finish_counting`](super::Lease::finish_counting).
    pub fn put_unique(&self, key: &str, task: &T) -> io::Result<Option<TaskId>> {
        Ok(self.put_unique_many(&[(key, task)])?[0])
    }

    /// [`put_unique`](Self::put_unique) for several keys in one round trip.
    pub fn put_unique_many<K: AsRef<str>>(
        &self,
        items: &[(K, &T)],
    ) -> io::Result<Vec<Option<TaskId>>> {
        let bodies = items
            .iter()
            .map(|(_, task)| encode(*task))
            .collect::<io::Result<Vec<_>>>()?;
        let limit = self.shared.options.max_unique.unwrap_or(0).to_string();
        let mut args: Vec<&[u8]> = vec![limit.as_bytes()];
        for ((key, _), body) in items.iter().zip(&bodies) {
            args.push(key.as_ref().as_bytes());
            args.push(body);
        }
        let reply = self
            .shared
            .with_session(|s| self.shared.memo_eval(s, &scripts::PUT_UNIQUE, &args))?;
        let ids = ids(&reply)?;
        if ids.len() != items.len() {
            return Err(bad_reply("put_unique", &reply));
        }
        Ok(ids.into_iter().map(|id| (id != 0).then_some(id)).collect())
    }

    /// Waits up to `timeout` for the result of a task this handle put; `None` if none came.
    /// Each result is delivered once, also across reconnects; results this handle never
    /// collects expire a day after the last one arrived.
    pub fn next_result(&self, timeout: Duration) -> io::Result<Option<TaskResult<R>>> {
        let mut slot = self.receiver.borrow_mut();
        if slot.is_none() {
            *slot = Some(Receiver {
                session: self.shared.open_session()?,
                batch: VecDeque::new(),
            });
        }
        let receiver = slot.as_mut().expect("just made");
        receiver.receive(&self.shared, &self.handle, Instant::now() + timeout)
    }

    /// A [`Worker`] with `slots` leases at most at once (one per green thread that takes).
    pub fn worker(&self, slots: usize) -> io::Result<Worker<T, R>> {
        Worker::new(self.shared.clone(), slots)
    }

    /// Tasks put and not yet finished, in all processes: 0 means every task put so far has
    /// its result (a crawl is over when this is 0 and nobody is about to put more).
    pub fn unfinished(&self) -> io::Result<u64> {
        let key = self.shared.key("stats");
        let n: Option<i64> = self.shared.with_session(|s| {
            s.run(|con| ::redis::cmd("HGET").arg(&key).arg("unfinished").query(con))
        })?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// The queue's counts, all processes together.
    pub fn stats(&self) -> io::Result<QueueStats> {
        let (stats_key, pending_key) = (self.shared.key("stats"), self.shared.key("pending"));
        let (fields, pending): (HashMap<String, i64>, u64) = self.shared.with_session(|s| {
            s.run(|con| {
                ::redis::pipe()
                    .hgetall(&stats_key)
                    .llen(&pending_key)
                    .query(con)
            })
        })?;
        let get = |name: &str| fields.get(name).copied().unwrap_or(0).max(0) as u64;
        Ok(QueueStats {
            put: get("put"),
            done: get("done"),
            failed: get("failed"),
            requeued: get("requeued"),
            released: get("released"),
            lost: get("lost"),
            corrupt: get("corrupt"),
            unfinished: get("unfinished"),
            pending,
        })
    }

    /// What workers added with [`Lease::finish_counting`](super::Lease::finish_counting), all
    /// processes together.
    pub fn counters(&self) -> io::Result<HashMap<String, i64>> {
        let key = self.shared.key("counters");
        self.shared
            .with_session(|s| s.run(|con| ::redis::cmd("HGETALL").arg(&key).query(con)))
    }

    /// Puts back the tasks of worker slots not heard from for the lease time, now (workers'
    /// heartbeats do this every quarter of the lease time); returns how many.
    pub fn reap(&self) -> io::Result<u64> {
        let lease = self.shared.options.lease;
        self.shared
            .with_session(|s| self.shared.eval(s, &scripts::REAP, &reap_args(lease)))
    }

    /// Deletes every key of this queue (tasks, leases, results, counts, seen keys): a fresh
    /// start. Do not purge while workers are running.
    pub fn purge(&self) -> io::Result<()> {
        let pattern = format!(
            "{}*",
            self.shared.prefix.replace('{', "\\{").replace('}', "\\}")
        );
        self.shared.with_session(|s| {
            s.run(|con| {
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(con)?;
                    if !keys.is_empty() {
                        ::redis::cmd("DEL").arg(&keys).exec(con)?;
                    }
                    if next == 0 {
                        return Ok(());
                    }
                    cursor = next;
                }
            })
        })
    }
}

/// The reaper's arguments: the lease time and the forget time (ms), see `scripts::REAP`.
pub(crate) fn reap_args(lease: Duration) -> [String; 2] {
    let lease_ms = lease.as_millis();
    [lease_ms.to_string(), (lease_ms * 3).to_string()]
}

/// The receiving side of a handle: its own session (it blocks), and the batch of results
/// fetched and not yet handed out.
struct Receiver<R> {
    session: Session,
    batch: VecDeque<TaskResult<R>>,
}

/// The most results one fetch moves.
const RESULT_BATCH: usize = 128;

impl<R: DeserializeOwned> Receiver<R> {
    /// The next result until `deadline`: from the batch in hand, else a new batch (one round
    /// trip for up to [`RESULT_BATCH`]), else after waiting for one to arrive.
    fn receive(
        &mut self,
        shared: &Shared,
        handle: &str,
        deadline: Instant,
    ) -> io::Result<Option<TaskResult<R>>> {
        let results = shared.key(&format!("results:{handle}"));
        loop {
            if let Some(result) = self.batch.pop_front() {
                return Ok(Some(result));
            }
            self.fetch(shared, handle)?;
            if !self.batch.is_empty() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // Wait until a result is there without taking it: BLMOVE from the list's right
            // end to its right end moves nothing, and loses nothing if its reply is lost.
            let block = left
                .min(shared.options.lease / 4)
                .max(Duration::from_millis(1));
            self.session.allow_blocking(block)?;
            let _: Option<Vec<u8>> = self.session.run(|con| {
                ::redis::cmd("BLMOVE")
                    .arg(&results)
                    .arg(&results)
                    .arg("RIGHT")
                    .arg("RIGHT")
                    .arg(block.as_secs_f64())
                    .query(con)
            })?;
        }
    }

    /// Fetches the next batch (see `scripts::FETCH_RESULTS`) and reads it; unreadable results
    /// go to the dead letters, after the readable ones are safe in the batch.
    fn fetch(&mut self, shared: &Shared, handle: &str) -> io::Result<()> {
        let (id, seq) = (self.session.id().to_string(), self.session.next_seq());
        let batch: Vec<Vec<u8>> = self.session.run(|con| {
            eval_with(
                &scripts::FETCH_RESULTS,
                &shared.prefix,
                &[&id, &seq.to_string(), handle, &RESULT_BATCH.to_string()],
            )
            .query(con)
        })?;
        let mut unreadable = Vec::new();
        for raw in batch {
            match RawResult::parse(&raw) {
                Ok(r) => self.batch.push_back(read_result(&r)),
                Err(_) => unreadable.push(raw),
            }
        }
        if unreadable.is_empty() {
            return Ok(());
        }
        let (dead, stats) = (shared.key("dead"), shared.key("stats"));
        self.session.run(|con| {
            ::redis::pipe()
                .lpush(&dead, &unreadable)
                .ignore()
                .hincr(&stats, "corrupt", unreadable.len())
                .ignore()
                .query::<()>(con)
        })
    }
}

/// A result's outcome: the decoded value, or the worker's error message.
fn read_result<R: DeserializeOwned>(r: &RawResult<'_>) -> TaskResult<R> {
    let outcome = if r.ok {
        decode(r.payload)
    } else {
        Err(String::from_utf8_lossy(r.payload).into_owned())
    };
    TaskResult { id: r.id, outcome }
}

/// `EVALSHA sha 0 prefix args...` as a command for a pipeline.
pub(crate) fn eval_with<A: AsRef<[u8]>>(script: &Script, prefix: &str, args: &[A]) -> Cmd {
    let mut call = eval(script, prefix);
    for a in args {
        call.arg(a.as_ref());
    }
    call
}

/// The space-separated ids a put script replies with.
fn ids(reply: &str) -> io::Result<Vec<TaskId>> {
    reply
        .split_ascii_whitespace()
        .map(|id| id.parse().map_err(|_| bad_reply("put", reply)))
        .collect()
}

fn bad_reply(what: &str, reply: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("redis: unexpected reply to {what}: {reply:?}"),
    )
}

impl<T, R> Drop for WorkQueue<T, R> {
    /// Says goodbye for the receiving session (its memo entry and the batch it handed out).
    fn drop(&mut self) {
        if let Some(receiver) = self.receiver.get_mut().as_mut() {
            let taking = self.shared.key(&format!("results:{}:taking", self.handle));
            let _: io::Result<i64> = receiver
                .session
                .run_once(|con| ::redis::cmd("DEL").arg(&taking).query(con));
            self.shared.forget(&mut receiver.session);
        }
    }
}

impl<T, R> std::fmt::Debug for WorkQueue<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkQueue")
            .field("url", &self.shared.url)
            .field("prefix", &self.shared.prefix)
            .field("handle", &self.handle)
            .finish()
    }
}
