//! One Redis connection on a green socket: see the module docs of [`crate::dist`].
//!
//! A command goes out as the bytes `redis::Cmd` packs; each reply is read with one
//! `redis::Parser` kept for the connection's life: its decoder buffers what it read past a
//! reply, and a pipeline's replies arrive back to back in one read (a parser made per reply
//! lost the rest of that read, and a pipeline hung waiting for replies already received). A reply that cannot be read — the server went away,
//! a timeout, a protocol error — closes the connection: its state is unknown from then on,
//! and `is_open` says so.

use std::io::{self, Write};
use std::net::ToSocketAddrs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::{
    ConnectionAddr, ConnectionLike, IntoConnectionInfo, Parser, RedisError, RedisResult, Value,
};

use crate::net::TcpStream;

/// Requests sent by every [`Connection`] of this process (a pipeline is one).
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);

/// How many requests this process has sent to Redis through [`Connection`]s (and so through
/// every [`WorkQueue`](super::WorkQueue) and [`Worker`](super::Worker)): a command or a
/// whole pipeline counts one round trip. For measuring what a workload costs in Redis
/// round trips, e.g. per crawled page.
///
/// ```
/// let before = greenrt::dist::round_trips();
/// // ... queue work ...
/// assert!(greenrt::dist::round_trips() >= before);
/// ```
pub fn round_trips() -> u64 {
    ROUND_TRIPS.load(Ordering::Relaxed)
}

/// A Redis connection whose calls park only the calling green thread. See [`crate::dist`].
pub struct Connection {
    stream: TcpStream,
    parser: Parser,
    db: i64,
    open: bool,
}

impl Connection {
    /// Connects to a `redis://[user:password@]host[:port][/db]` URL (or anything else the
    /// `redis` crate turns into connection info), authenticates and selects the database.
    /// Only TCP addresses are supported; TLS and Unix sockets are refused with an error.
    pub fn open(url: impl IntoConnectionInfo) -> RedisResult<Connection> {
        let info = url.into_connection_info()?;
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "greenrt::dist::Connection speaks plain TCP only (no TLS, no Unix socket)",
            )
            .into());
        };
        let mut con = Connection::connect((host.as_str(), port))?;
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = ::redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password).exec(&mut con)?;
        }
        if settings.db() != 0 {
            ::redis::cmd("SELECT").arg(settings.db()).exec(&mut con)?;
            con.db = settings.db();
        }
        Ok(con)
    }

    /// Connects to `addr` (database 0, no authentication).
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            parser: Parser::new(),
            db: 0,
            open: true,
        })
    }

    /// Sets how long a reply may take (`None`: wait as long as it takes, the default). A
    /// reply that does not come in time fails the call with a timeout and closes the
    /// connection (the late reply would answer the next command).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    fn send(&mut self, packed: &[u8]) -> RedisResult<()> {
        if !self.open {
            return Err(closed());
        }
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        let sent = (&self.stream).write_all(packed);
        sent.map_err(|e| self.fail(e.into()))
    }

    fn receive(&mut self) -> RedisResult<Value> {
        loop {
            match self.parser.parse_value(&self.stream) {
                // RESP3 out-of-band pushes are not replies to our command.
                Ok(Value::Push { .. }) => continue,
                Ok(value) => return Ok(value),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// A failed read or write leaves the stream in an unknown state: close for good.
    fn fail(&mut self, e: RedisError) -> RedisError {
        self.open = false;
        e
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.stream.peer_addr().ok())
            .field("db", &self.db)
            .field("open", &self.open)
            .finish()
    }
}

fn closed() -> RedisError {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "greenrt::dist::Connection: closed after an earlier failure",
    )
    .into()
}

impl ConnectionLike for Connection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.send(cmd)?;
        self.receive()
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.send(cmd)?;
        let mut replies = Vec::with_capacity(count);
        for i in 0..offset + count {
            let reply = self.receive()?;
            if i >= offset {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    fn get_db(&self) -> i64 {
        self.db
    }

    fn check_connection(&mut self) -> bool {
        ::redis::cmd("PING").query::<String>(self).is_ok()
    }

    fn is_open(&self) -> bool {
        self.open
    }
}
