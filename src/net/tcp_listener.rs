//! [`TcpListener`]: accepts connections, parking only the calling green thread.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;

use crate::hub::reactor::Direction;

use super::{GreenFd, TcpStream, each_addr, raw};

/// A TCP server socket, shaped like [`std::net::TcpListener`].
///
/// `bind` sets `SO_REUSEADDR` and a backlog of 1024 (mio's defaults). Accepted streams are
/// non-blocking from birth (`accept4` with `SOCK_NONBLOCK`).
///
/// ```
/// use greenrt::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let client = greenrt::spawn(move || TcpStream::connect(addr).unwrap().local_addr().unwrap());
/// let (_conn, peer) = listener.accept().unwrap();
/// assert_eq!(peer, client.join().unwrap());
/// ```
pub struct TcpListener {
    fd: GreenFd<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr`, trying each address it resolves to.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |a| {
            Ok(TcpListener {
                fd: GreenFd::new(mio::net::TcpListener::bind(a)?),
            })
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self
            .fd
            .retry(Direction::Read, || self.fd.source().accept())?;
        Ok((TcpStream::from_mio(stream), peer))
    }

    /// An endless iterator of `accept` results, like std's.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.source().local_addr()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.fd.source().set_ttl(ttl)
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.source().take_error()
    }

    /// With `true`, `accept` fails with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.fd.set_nonblocking(nonblocking);
        Ok(())
    }

    /// A second handle to the same listening socket.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let owned = self.fd.source().as_fd().try_clone_to_owned()?;
        let std = std::net::TcpListener::from(owned);
        Ok(TcpListener {
            fd: self.fd.new_clone(mio::net::TcpListener::from_std(std)),
        })
    }
}

/// The iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &raw(&self.fd))
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

super::fd_traits!(
    TcpListener,
    std::net::TcpListener,
    mio::net::TcpListener,
    "TcpListener"
);
