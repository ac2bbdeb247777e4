//! `ipc::pipe()`: a duplex pair of message connections between processes
//! (multiprocessing.Pipe).
//!
//! The pair is a Unix `socketpair`: made before `fork`, one end stays in the parent and the
//! other goes to the child. Messages are framed on the byte stream:
//!
//! ```text
//!   | len: u32 little-endian | len bytes (postcard for send/recv, raw for send_bytes) |
//! ```
//!
//! Waiting goes through the reactor like a socket, so it parks only the calling green
//! thread. A frame longer than the connection's maximum is refused before anything is
//! written (`InvalidInput` carrying [`MessageTooLarge`]); on the receiving side such a length
//! means the stream is corrupt (`InvalidData`) and the connection is unusable after it. A
//! peer killed mid-message leaves a partial frame: `recv` reports `UnexpectedEof`, never a
//! torn message.
//!
//! **Close what you do not use.** A forked child inherits *both* ends (every fd is copied by
//! `fork`), so `recv` sees end-of-stream only once every copy of the other end is closed —
//! exactly as with Python's `Pipe`. A child that should stop when the parent is done
//! needs a sentinel message, or the parent must make the pipe after forking that child.
//!
//! One writer per end at a time: frames from two processes writing the same end could
//! interleave (within one process, a lock keeps a green thread's frame whole).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hub::reactor::Direction;
use crate::net::GreenFd;

/// The default largest message a connection accepts: 32 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 32 << 20;

/// A message longer than the connection allows (inside an `InvalidInput` `io::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageTooLarge {
    /// The message's size in bytes.
    pub size: usize,
    /// The connection's maximum.
    pub max: usize,
}

impl fmt::Display for MessageTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message of {} bytes exceeds the maximum of {}",
            self.size, self.max
        )
    }
}

impl std::error::Error for MessageTooLarge {}

/// Makes a connected pair: what one end sends, the other receives, both ways.
///
/// ```
/// let (parent, child_end) = greenrt::ipc::pipe()?;
/// let child = greenrt::process::Process::spawn(move || {
///     let n: u64 = child_end.recv().unwrap();
///     child_end.send(&(n * n)).unwrap();
/// })?;
/// parent.send(&12u64)?;
/// assert_eq!(parent.recv::<u64>()?, 144);
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe() -> io::Result<(Connection, Connection)> {
    let (a, b) = UnixStream::pair()?;
    Ok((
        Connection::new(a, Ends::Both)?,
        Connection::new(b, Ends::Both)?,
    ))
}

/// Makes a one-way pair, `(receiver, sender)` (Python's `Pipe(duplex=False)`): sending on
/// the receiver, or receiving on the sender, is an error (`PermissionDenied`), and the
/// kernel refuses it too (each socket is shut down in the direction it does not use).
///
/// ```
/// let (rx, tx) = greenrt::ipc::pipe_oneway()?;
/// tx.send(&"one way")?;
/// assert_eq!(rx.recv::<String>()?, "one way");
/// assert_eq!(rx.send(&1).unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pipe_oneway() -> io::Result<(Connection, Connection)> {
    let (a, b) = UnixStream::pair()?;
    a.shutdown(std::net::Shutdown::Write)?;
    b.shutdown(std::net::Shutdown::Read)?;
    Ok((
        Connection::new(a, Ends::Receives)?,
        Connection::new(b, Ends::Sends)?,
    ))
}

/// What an end may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ends {
    Both,
    Receives,
    Sends,
}

/// A message longer than the buffer given to [`Connection::recv_bytes_into`] (Python's
/// `BufferTooShort`). The message is not lost: it is here, whole.
#[derive(Debug)]
pub struct BufferTooShort {
    /// The message that did not fit.
    pub message: Vec<u8>,
}

impl fmt::Display for BufferTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the message of {} bytes does not fit the buffer",
            self.message.len()
        )
    }
}

impl std::error::Error for BufferTooShort {}

/// One end of a [`pipe`].
pub struct Connection {
    stream: Arc<UnixStream>,
    ends: Ends,
    max_message: AtomicUsize,
    /// The stream as the hub of the *current process* sees it; remade after a fork.
    green: std::sync::Mutex<Option<(u32, Arc<GreenFd<SharedStream>>)>>,
    /// Held while a frame is written, so a green thread's frame stays whole; holds the
    /// buffer small frames are assembled in (one `write` per small message).
    send_lock: crate::sync::Mutex<Vec<u8>>,
    /// Held while a frame is read; holds bytes read ahead (one `read` serves many small
    /// messages).
    recv_lock: crate::sync::Mutex<ReadAhead>,
}

/// Bytes read from the stream but not yet consumed: `buf[start..]`.
#[derive(Default)]
struct ReadAhead {
    buf: Vec<u8>,
    start: usize,
}

fn one_way(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, what.to_string())
}

/// Frames up to this size are assembled and written with one syscall; reads ask for this much.
const CHUNK: usize = 64 * 1024;

/// The stream, shared with the connection (the `GreenFd` does not own the fd alone).
struct SharedStream(Arc<UnixStream>);

impl AsRawFd for SharedStream {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl Connection {
    /// A duplex connection over a connected stream (from `Listener::accept` or `connect`).
    pub(crate) fn from_stream(stream: UnixStream) -> io::Result<Connection> {
        Connection::new(stream, Ends::Both)
    }

    fn new(stream: UnixStream, ends: Ends) -> io::Result<Connection> {
        stream.set_nonblocking(true)?;
        Ok(Connection {
            stream: Arc::new(stream),
            ends,
            max_message: AtomicUsize::new(DEFAULT_MAX_MESSAGE),
            green: std::sync::Mutex::new(None),
            send_lock: crate::sync::Mutex::new(Vec::new()),
            recv_lock: crate::sync::Mutex::new(ReadAhead::default()),
        })
    }

    /// Sets the largest message this end sends or accepts (default [`DEFAULT_MAX_MESSAGE`]).
    pub fn set_max_message(&self, bytes: usize) {
        self.max_message
            .store(bytes.min(u32::MAX as usize), Ordering::Relaxed);
    }

    /// This process's view of the stream (see the `green` field).
    fn green(&self) -> Arc<GreenFd<SharedStream>> {
        let pid = crate::sys::process::cached_pid();
        let mut slot = self.green.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((p, g)) if *p == pid => g.clone(),
            _ => {
                let g = Arc::new(GreenFd::new(SharedStream(self.stream.clone())));
                *slot = Some((pid, g.clone()));
                g
            }
        }
    }

    /// Sends `value`, encoded with postcard.
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let bytes = postcard::to_stdvec(value)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send_bytes(&bytes)
    }

    /// Receives a value sent with [`send`](Connection::send).
    ///
    /// A message that is not exactly one encoded `T` is `InvalidData` — also one with bytes
    /// left over, a common sign of a value of another type (a tuple received as its first
    /// field), which is then not silently half-read. The encoding carries no type names, so
    /// a mismatch that happens to decode in full cannot be seen: send and receive one type.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<T> {
        let bytes = self.recv_bytes()?;
        let not_a_t = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "pipe message is not a valid {}: {why}",
                    std::any::type_name::<T>()
                ),
            )
        };
        match postcard::take_from_bytes(&bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(not_a_t(format!("{} bytes left over", rest.len()))),
            Err(e) => Err(not_a_t(e.to_string())),
        }
    }

    /// Sends `bytes` as one message.
    pub fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        if self.ends == Ends::Receives {
            return Err(one_way("the receiving end of a one-way pipe cannot send"));
        }
        let max = self.max_message.load(Ordering::Relaxed);
        if bytes.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                MessageTooLarge {
                    size: bytes.len(),
                    max,
                },
            ));
        }
        let mut frame = self.send_lock.lock();
        let green = self.green();
        let header = (bytes.len() as u32).to_le_bytes();
        if bytes.len() + header.len() <= CHUNK {
            frame.clear();
            frame.extend_from_slice(&header);
            frame.extend_from_slice(bytes);
            return self.write_all(&green, &frame);
        }
        self.write_all(&green, &header)?;
        self.write_all(&green, bytes)
    }

    /// Receives one message's bytes.
    ///
    /// Errors: `UnexpectedEof` when the other end is closed (or died mid-message);
    /// `InvalidData` for a length above this end's maximum.
    pub fn recv_bytes(&self) -> io::Result<Vec<u8>> {
        let mut ahead = self.recv_lock.lock();
        let green = self.green();
        let len = self.frame_len(&green, &mut ahead)?;
        let mut bytes = vec![0; len];
        self.read_exact(&green, &mut ahead, &mut bytes)?;
        Ok(bytes)
    }

    /// Receives one message into `buf`, returning its length (Python's
    /// `recv_bytes_into`): no allocation when it fits.
    ///
    /// # Errors
    /// A message longer than `buf`: `InvalidInput` carrying [`BufferTooShort`] with the whole
    /// message (`get_ref().downcast_ref()`); nothing is lost. Otherwise as
    /// [`recv_bytes`](Connection::recv_bytes).
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut ahead = self.recv_lock.lock();
        let green = self.green();
        let len = self.frame_len(&green, &mut ahead)?;
        if len > buf.len() {
            let mut message = vec![0; len];
            self.read_exact(&green, &mut ahead, &mut message)?;
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                BufferTooShort { message },
            ));
        }
        self.read_exact(&green, &mut ahead, &mut buf[..len])?;
        Ok(len)
    }

    /// Reads a frame's length header and checks it against this end's maximum.
    fn frame_len(&self, green: &GreenFd<SharedStream>, ahead: &mut ReadAhead) -> io::Result<usize> {
        if self.ends == Ends::Sends {
            return Err(one_way("the sending end of a one-way pipe cannot receive"));
        }
        let mut len = [0u8; 4];
        self.read_exact(green, ahead, &mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        let max = self.max_message.load(Ordering::Relaxed);
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "pipe frame of {len} bytes exceeds the maximum of {max}: the stream is corrupt"
                ),
            ));
        }
        Ok(len)
    }

    /// True if a message (or the end of the stream) can be read now or arrives within
    /// `timeout`; `None` waits as long as it takes.
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let fd = self.stream.as_raw_fd();
        // Bytes already read ahead count — unless a receiver holds them (and the lock) right
        // now: poll never waits for the receive lock, so its timeout holds while another green
        // thread sits in `recv`; it then just watches the stream.
        if let Some(ahead) = self.recv_lock.try_lock()
            && ahead.start < ahead.buf.len()
        {
            return Ok(true);
        }
        let readable = || match crate::sys::poll::ready_now(fd, false)? {
            true => Ok(()),
            false => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        };
        match self
            .green()
            .retry_for(Direction::Read, timeout, readable, |_| false)
        {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn write_all(&self, green: &GreenFd<SharedStream>, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = green.retry_transfer(Direction::Write, bytes.len(), || {
                (&*self.stream).write(bytes)
            })?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Fills `out` from the read-ahead bytes, reading more from the stream as needed.
    fn read_exact(
        &self,
        green: &GreenFd<SharedStream>,
        ahead: &mut ReadAhead,
        mut out: &mut [u8],
    ) -> io::Result<()> {
        while !out.is_empty() {
            if ahead.start == ahead.buf.len() {
                self.read_more(green, ahead)?;
            }
            let n = out.len().min(ahead.buf.len() - ahead.start);
            out[..n].copy_from_slice(&ahead.buf[ahead.start..ahead.start + n]);
            ahead.start += n;
            out = &mut out[n..];
        }
        Ok(())
    }

    /// Replaces the (consumed) read-ahead with up to `CHUNK` new bytes.
    fn read_more(&self, green: &GreenFd<SharedStream>, ahead: &mut ReadAhead) -> io::Result<()> {
        ahead.buf.resize(CHUNK, 0);
        ahead.start = 0;
        let read = green.retry_transfer(Direction::Read, CHUNK, || {
            (&*self.stream).read(&mut ahead.buf)
        });
        let n = read.inspect_err(|_| ahead.buf.clear())?;
        ahead.buf.truncate(n);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other end of the pipe is closed",
            ));
        }
        Ok(())
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.stream.as_raw_fd())
            .finish()
    }
}
