//! [`UdpSocket`]: datagrams, parking only the calling green thread.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Duration;

use crate::hub::reactor::Direction;

use super::{GreenFd, each_addr, raw};

/// A UDP socket, shaped like [`std::net::UdpSocket`].
///
/// ```
/// use greenrt::net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
pub struct UdpSocket {
    fd: GreenFd<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`, trying each address it resolves to.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |a| {
            Ok(UdpSocket {
                fd: GreenFd::new(mio::net::UdpSocket::bind(a)?),
            })
        })
    }

    /// Sends a datagram to `addr` (the first address it resolves to).
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let target = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.fd
            .retry(Direction::Write, || self.fd.source().send_to(buf, target))
    }

    /// Receives a datagram and the address it came from.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd
            .retry(Direction::Read, || self.fd.source().recv_from(buf))
    }

    /// Like `recv_from`, without consuming the datagram.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd
            .retry(Direction::Read, || self.fd.source().peek_from(buf))
    }

    /// Sets the default peer for `send` and `recv`, and filters out other senders.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |a| self.fd.source().connect(a))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .retry(Direction::Write, || self.fd.source().send(buf))
    }

    /// Receives from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .retry(Direction::Read, || self.fd.source().recv(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.source().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.fd.source().peer_addr()
    }

    /// Sets how long a receive may wait before failing with `ErrorKind::TimedOut`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.fd.set_timeout(Direction::Read, timeout)
    }

    /// Sets how long a send may wait before failing with `ErrorKind::TimedOut`.
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

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd.source().set_broadcast(on)
    }

    /// Takes the pending `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.source().take_error()
    }

    /// With `true`, calls that would block fail with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.fd.set_nonblocking(nonblocking);
        Ok(())
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let owned = self.fd.source().as_fd().try_clone_to_owned()?;
        let std = std::net::UdpSocket::from(owned);
        Ok(UdpSocket {
            fd: self.fd.new_clone(mio::net::UdpSocket::from_std(std)),
        })
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &raw(&self.fd))
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

super::fd_traits!(
    UdpSocket,
    std::net::UdpSocket,
    mio::net::UdpSocket,
    "UdpSocket"
);
