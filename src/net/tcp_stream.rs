//! [`TcpStream`]: a TCP connection whose blocking calls park only the calling green thread.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Duration;

use crate::hub::reactor::Direction;

use super::{GreenFd, each_addr, raw};

/// A TCP stream between a local and a remote socket, shaped like [`std::net::TcpStream`].
///
/// Reads and writes that would block park the calling green thread and let the others run;
/// on a plain OS thread they block like std's. One green thread may read while another
/// writes the same stream (`&TcpStream` implements `Read` and `Write`).
///
/// ```
/// use std::io::{Read, Write};
/// use greenrt::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenrt::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     let mut buf = [0; 5];
///     conn.read_exact(&mut buf).unwrap();
///     conn.write_all(&buf).unwrap(); // echo
/// });
/// let mut client = TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut reply = [0; 5];
/// client.read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"hello");
/// server.join().unwrap();
/// ```
pub struct TcpStream {
    fd: GreenFd<mio::net::TcpStream>,
}

impl TcpStream {
    pub(crate) fn from_mio(stream: mio::net::TcpStream) -> TcpStream {
        TcpStream {
            fd: GreenFd::new(stream),
        }
    }

    /// Opens a connection to `addr`, trying each address it resolves to.
    ///
    /// Name resolution itself still blocks the OS thread (it is `getaddrinfo`); pass a
    /// `SocketAddr` to avoid it.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_inner(a, None))
    }

    /// Opens a connection to `addr`, failing with `TimedOut` after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let conn = greenrt::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    /// assert_eq!(conn.peer_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_inner(*addr, Some(timeout))
    }

    /// Starts a non-blocking connect, then waits for writability: the kernel's way of saying
    /// the handshake ended. `SO_ERROR` then tells whether it succeeded.
    fn connect_inner(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?);
        let connected = || {
            let inner = stream.fd.source();
            if let Some(err) = inner.take_error()? {
                return Err(err);
            }
            match inner.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        };
        stream
            .fd
            .retry_for(Direction::Write, timeout, connected, |_| false)?;
        Ok(stream)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.source().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.source().local_addr()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::net::Shutdown;
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let client = greenrt::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (mut served, _) = listener.accept()?;
    /// client.shutdown(Shutdown::Write)?; // "no more from me"
    /// let mut rest = Vec::new();
    /// assert_eq!(served.read_to_end(&mut rest)?, 0); // the server sees the end
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.fd.source().shutdown(how)
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.fd.source().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.fd.source().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.source().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.fd.source().ttl()
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.source().take_error()
    }

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = greenrt::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (mut served, _) = listener.accept()?;
    /// client.write_all(b"hi")?;
    /// let mut buf = [0; 2];
    /// assert_eq!(served.peek(&mut buf)?, 2); // looked at ...
    /// served.read_exact(&mut buf)?; // ... and still there to read
    /// assert_eq!(&buf, b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .retry(Direction::Read, || self.fd.source().peek(buf))
    }

    /// Sets how long a read may wait before failing with `ErrorKind::TimedOut`. `None`
    /// waits forever; `Some(Duration::ZERO)` is an error, as in std.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = greenrt::net::TcpStream::connect(listener.local_addr()?)?;
    /// let _silent = listener.accept()?; // never writes
    /// client.set_read_timeout(Some(Duration::from_millis(20)))?;
    /// let err = client.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::TimedOut);
    /// assert!(client.set_read_timeout(Some(Duration::ZERO)).is_err()); // as std says
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Direction::Read, timeout)
    }

    /// Sets how long a write may wait before failing with `ErrorKind::TimedOut`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Direction::Write, timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.fd.timeout(Direction::Read))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.fd.timeout(Direction::Write))
    }

    /// With `true`, calls that would block fail with `WouldBlock` instead of waiting.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = greenrt::net::TcpStream::connect(listener.local_addr()?)?;
    /// let _quiet = listener.accept()?;
    /// client.set_nonblocking(true)?;
    /// let err = client.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.fd.set_nonblocking(nonblocking);
        Ok(())
    }

    /// A second handle to the same connection (a `dup`ed fd sharing the timeouts), e.g. to
    /// read in one green thread and write in another.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let listener = greenrt::net::TcpListener::bind("127.0.0.1:0")?;
    /// let client = greenrt::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (mut served, _) = listener.accept()?;
    /// let mut writer = client.try_clone()?;
    /// let reader = greenrt::spawn(move || {
    ///     let mut reply = [0; 4];
    ///     (&client).read_exact(&mut reply).map(|()| reply) // `&TcpStream` reads too
    /// });
    /// writer.write_all(b"ping")?; // meanwhile, from this green thread
    /// let mut got = [0; 4];
    /// served.read_exact(&mut got)?;
    /// served.write_all(b"pong")?;
    /// assert_eq!(&reader.join().unwrap()?, b"pong");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let owned = self.fd.source().as_fd().try_clone_to_owned()?;
        let std = std::net::TcpStream::from(owned);
        Ok(TcpStream {
            fd: self.fd.new_clone(mio::net::TcpStream::from_std(std)),
        })
    }

    fn read_with(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.fd.retry_transfer(Direction::Read, len, || {
            Read::read(&mut self.fd.source(), buf)
        })
    }

    fn read_vectored_with(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.fd.retry_transfer(Direction::Read, len, || {
            Read::read_vectored(&mut self.fd.source(), bufs)
        })
    }

    fn write_with(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd.retry_transfer(Direction::Write, buf.len(), || {
            Write::write(&mut self.fd.source(), buf)
        })
    }

    fn write_vectored_with(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.fd.retry_transfer(Direction::Write, len, || {
            Write::write_vectored(&mut self.fd.source(), bufs)
        })
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_with(bufs)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_vectored_with(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_with(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored_with(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &raw(&self.fd))
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

super::fd_traits!(
    TcpStream,
    std::net::TcpStream,
    mio::net::TcpStream,
    "TcpStream"
);
