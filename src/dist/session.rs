//! A Redis session that outlives its connections.
//!
//! A work queue must ride out a Redis restart and a dropped connection: every call goes
//! through [`Session::run`], which reconnects (with backoff, for up to `patience`) and runs
//! the call again when the failure was the connection's, not the command's.
//!
//! Running a call again is only safe if running it twice does what running it once does.
//! Reads are; a `put` or an `ack` is not — if the server ran it and the reply was lost, a
//! second run would queue a task twice. So the mutating scripts are *memoized*: each carries
//! this session's id and a sequence number, and the script stores its reply under the
//! session id in the queue's `sessions` hash, in the same atomic step as its effect. A rerun
//! with the same number returns the stored reply and does nothing else — exactly once, across
//! reconnects and server restarts (with the server's append-only file on). See
//! the memo prelude in `scripts`.

use std::io;
use std::time::{Duration, Instant};

use ::redis::{RedisError, RedisResult};

use super::connection::Connection;
use super::scripts;

/// How long replies may take beyond a command's own blocking time.
pub(crate) const REPLY_SLACK: Duration = Duration::from_secs(10);

/// One logical client of a queue: a connection that is replaced when it breaks.
pub(crate) struct Session {
    url: String,
    con: Option<Connection>,
    /// Names this session in the memo hash: random, so two processes never share one.
    id: String,
    seq: u64,
    patience: Duration,
    /// How long the calls now being made may block in the server (added to the read timeout).
    blocking: Duration,
}

impl Session {
    /// Connects to `url`; a server that cannot be reached within `patience` is an error.
    pub(crate) fn open(url: &str, patience: Duration) -> io::Result<Session> {
        let mut session = Session {
            url: url.to_string(),
            con: None,
            id: format!("{:016x}", crate::sys::shm::random_u64()?),
            seq: 0,
            patience,
            blocking: Duration::ZERO,
        };
        session.run(|_| Ok(()))?;
        Ok(session)
    }

    /// This session's id (the field it owns in the memo hash).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// A fresh sequence number for one memoized call: pass the same number on every retry.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Runs `call` on a live connection. A connection failure (or a server still loading its
    /// data after a restart) drops the connection and runs `call` again on a new one, until
    /// `patience` has passed since the first failure. Every new connection loads the queue's
    /// scripts; a server that forgot them while connected (`SCRIPT FLUSH`: `NOSCRIPT`) gets
    /// them loaded again, and `call` runs again — a refused script did nothing. Any other
    /// error is returned at once.
    pub(crate) fn run<V>(
        &mut self,
        mut call: impl FnMut(&mut Connection) -> RedisResult<V>,
    ) -> io::Result<V> {
        let mut first_failure: Option<Instant> = None;
        let mut backoff = Duration::from_millis(20);
        let mut loads = 0;
        loop {
            let outcome = match self.connection() {
                Ok(con) => call(con),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) if e.code() == Some("NOSCRIPT") && loads < 3 => {
                    loads += 1;
                    // A failed load shows up again in the call that follows.
                    let _ = self.connection().and_then(|con| scripts::load_all(con));
                }
                Err(e) if is_transient(&e) => {
                    self.con = None;
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.patience {
                        return Err(to_io(e));
                    }
                    crate::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(to_io(e)),
            }
        }
    }

    /// Runs `call` once, on the live connection or a new one: no retry (for goodbyes, where
    /// waiting out an outage is worse than leaving the rest to the reaper).
    pub(crate) fn run_once<V>(
        &mut self,
        call: impl FnOnce(&mut Connection) -> RedisResult<V>,
    ) -> io::Result<V> {
        let con = self.connection().map_err(to_io)?;
        call(con).map_err(to_io)
    }

    /// The live connection, made now if there is none.
    fn connection(&mut self) -> RedisResult<&mut Connection> {
        if self.con.is_none() {
            let mut con = Connection::open(self.url.as_str())?;
            con.set_read_timeout(Some(REPLY_SLACK + self.blocking))?;
            // Loaded before the first call, so that a script in a pipeline is never refused
            // after a restart while the command behind it (a `BLMOVE`) runs anyway.
            scripts::load_all(&mut con)?;
            self.con = Some(con);
        }
        Ok(self.con.as_mut().expect("just made"))
    }

    /// Lets the next calls block in the server for up to `blocking` (a `BLMOVE`): the read
    /// timeout becomes that plus [`REPLY_SLACK`].
    pub(crate) fn allow_blocking(&mut self, blocking: Duration) -> io::Result<()> {
        if self.blocking != blocking {
            self.blocking = blocking;
            if let Some(con) = &self.con {
                con.set_read_timeout(Some(REPLY_SLACK + blocking))?;
            }
        }
        Ok(())
    }
}

/// A failure of the connection (or a server loading its data), not of the command: worth a
/// new connection and another try.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.code(), Some("LOADING") | Some("TRYAGAIN"))
}

/// A Redis error as the `io::Error` the queue's API returns.
pub(crate) fn to_io(e: RedisError) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else if e.is_connection_refusal() {
        io::ErrorKind::ConnectionRefused
    } else if e.is_io_error() || e.is_connection_dropped() {
        io::ErrorKind::ConnectionAborted
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, format!("redis: {e}"))
}
