//! Past one machine (feature `redis`): Redis from green threads, and a work queue in it.
//!
//! A gevent program that outgrows one machine puts its task queue or its crawl frontier in
//! Redis and starts the same program on more machines (RQ, Celery with a Redis broker,
//! scrapy-redis). Two pieces:
//!
//! - [`Connection`] parks only the calling green thread: it speaks Redis through the `redis`
//!   crate's own command encoding and reply parser — the protocol is not written again here —
//!   over a greenrt [`TcpStream`](crate::net::TcpStream), and implements the crate's
//!   `ConnectionLike`, so the crate's whole typed API (`Commands`, `cmd(..).query`,
//!   pipelines) works on it, with or without `monkey`.
//! - [`WorkQueue`] is a task queue any number of processes and machines share: producers
//!   `put` serde tasks and receive each result once; [`Worker`]s `take` them under a lease
//!   kept alive by heartbeats, so a worker killed with `kill -9` loses nothing — its task runs
//!   again elsewhere, counted. Every step that touches several keys is one Lua script (atomic
//!   in Redis), and every call rides out a dropped connection or a Redis restart without
//!   running twice (see the module `session`). `put_unique` turns the queue into a shared
//!   crawl frontier (the `spider` example's `--frontier`).
//!
//! ```no_run
//! use redis::Commands;
//!
//! let mut con = greenrt::dist::Connection::open("redis://127.0.0.1:6379/0")?;
//! let _: () = con.set("greeting", "hello")?;
//! let greeting: String = con.get("greeting")?;
//! assert_eq!(greeting, "hello");
//! # Ok::<(), redis::RedisError>(())
//! ```

mod connection;
mod envelope;
mod scripts;
mod session;
mod work_queue;
mod worker;

pub use connection::{Connection, round_trips};
pub use work_queue::{Options, QueueStats, TaskId, TaskResult, WorkQueue};
pub use worker::{Ack, Lease, Worker};
