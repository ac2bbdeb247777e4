//! Past one machine (feature `redis`): Redis from green threads.
//!
//! A gevent program that outgrows one machine puts its task queue or its crawl frontier in
//! Redis and starts the same program on more machines. The first piece is a connection that
//! parks only the calling green thread: [`Connection`] speaks Redis through the `redis`
//! crate's own command encoding and reply parser — the protocol is not written again here —
//! over a greenrt [`TcpStream`](crate::net::TcpStream), and implements the crate's
//! `ConnectionLike`, so the crate's whole typed API (`Commands`, `cmd(..).query`, pipelines)
//! works on it, with or without `monkey`.
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

pub use connection::Connection;
