//! [`Listener`] and [`connect`]: message connections between *unrelated* processes, over a
//! Unix socket at a path (Python's `multiprocessing.connection.Listener` and `Client`).
//!
//! A [`pipe`](super::pipe) needs a common parent that made it before forking. A listener
//! instead binds a path; any process that can reach the path connects to it and gets the
//! same [`Connection`] a pipe gives (framed messages, `send`/`recv`, `poll`, `wait_ready`).
//! With an auth key, both sides prove they hold it before the connection is handed out (see
//! `auth.rs`); with none, anyone who may open the path is let in — restrict it with the
//! directory's permissions.
//!
//! `accept` waits through the hub, so it parks only the calling green thread; `connect` to a
//! Unix socket completes at once (it would block only while the listener's backlog is full).

use std::fmt;
use std::io;
use std::os::linux::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Connection;
use super::auth::{HANDSHAKE_TIMEOUT, Role, handshake};
use crate::hub::reactor::Direction;
use crate::net::GreenFd;

/// A bound Unix socket that hands out a [`Connection`] per client; see the module docs.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("greenrt-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("server.sock");
/// let listener = greenrt::ipc::Listener::bind(&path, Some(b"secret password"))?;
/// let client = greenrt::spawn({
///     let path = path.clone();
///     move || {
///         let conn = greenrt::ipc::connect(&path, Some(b"secret password")).unwrap();
///         conn.send(&vec![1, 2, 3]).unwrap();
///     }
/// });
/// let conn = listener.accept()?;
/// assert_eq!(conn.recv::<Vec<i32>>()?, [1, 2, 3]);
/// client.join().unwrap();
/// drop(listener); // removes the socket file
/// assert!(!path.exists());
/// # std::fs::remove_dir(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Listener {
    socket: GreenFd<UnixListener>,
    path: PathBuf,
    /// The socket file's (device, inode), so `drop` removes only the file it made.
    file_id: (u64, u64),
    authkey: Option<Vec<u8>>,
    handshake_timeout: Duration,
}

impl Listener {
    /// Binds a Unix socket at `path` (which must not exist: `AddrInUse`). With `authkey`,
    /// every client must prove it holds the same key.
    pub fn bind(path: impl AsRef<Path>, authkey: Option<&[u8]>) -> io::Result<Listener> {
        let path = path.as_ref().to_path_buf();
        let socket = UnixListener::bind(&path)?;
        socket.set_nonblocking(true)?;
        let meta = std::fs::metadata(&path)?;
        Ok(Listener {
            socket: GreenFd::new(socket),
            path,
            file_id: (meta.st_dev(), meta.st_ino()),
            authkey: authkey.map(<[u8]>::to_vec),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// How long a client may take over the handshake before `accept` drops it with
    /// `TimedOut` (default [`HANDSHAKE_TIMEOUT`]).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Listener {
        self.handshake_timeout = timeout;
        self
    }

    /// Waits for the next client and returns its connection, after the handshake if there
    /// is an auth key. A client that fails it is an error (`PermissionDenied` carrying
    /// [`AuthenticationError`](super::AuthenticationError), or `TimedOut`) and is
    /// disconnected; the listener stays usable.
    pub fn accept(&self) -> io::Result<Connection> {
        let (stream, _) = self
            .socket
            .retry(Direction::Read, || self.socket.source().accept())?;
        let conn = Connection::from_stream(stream)?;
        if let Some(key) = &self.authkey {
            handshake(&conn, key, Role::Server, self.handshake_timeout)?;
        }
        Ok(conn)
    }

    /// The path it is bound to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    /// Removes the socket file, if it is still the one this listener made (Python's
    /// `Listener.close` unlinks it too).
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.st_dev(), m.st_ino()) == self.file_id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("path", &self.path)
            .field("authenticated", &self.authkey.is_some())
            .finish()
    }
}

/// Connects to a [`Listener`] at `path` (Python's `Client`); with `authkey`, runs the
/// handshake (both sides must hold the same key) before returning the connection.
pub fn connect(path: impl AsRef<Path>, authkey: Option<&[u8]>) -> io::Result<Connection> {
    let conn = Connection::from_stream(UnixStream::connect(path)?)?;
    if let Some(key) = authkey {
        handshake(&conn, key, Role::Client, HANDSHAKE_TIMEOUT)?;
    }
    Ok(conn)
}
