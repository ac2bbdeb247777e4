//! The authentication handshake of [`Listener`](super::Listener) and
//! [`connect`](super::connect): mutual challenge-response over a shared secret key, as
//! Python's `multiprocessing.connection` does (`deliver_challenge` / `answer_challenge`).
//!
//! Each side proves it knows the key without sending it: one side sends a random nonce, the
//! other answers with an HMAC-SHA256 of it under the key, the first says welcome or failure.
//! Then the roles swap, so a client also knows it reached a server holding the key.
//!
//! ```text
//!   listener (accept)                              client (connect)
//!   "#CHALLENGE#" + nonce_s (32 random bytes) -->
//!                                             <--  HMAC(key, "client" | nonce_s)
//!   "#WELCOME#" or "#FAILURE#" (and give up)  -->
//!                                             <--  "#CHALLENGE#" + nonce_c
//!   HMAC(key, "server" | nonce_c)             -->
//!                                             <--  "#WELCOME#" or "#FAILURE#"
//! ```
//!
//! The role tag in each MAC means an answer one side gave can never serve as the other
//! side's answer. The MAC is checked in constant time (`hmac`'s `verify_slice`). Until the
//! handshake is over, a message longer than [`HANDSHAKE_MAX`] is refused, and the whole
//! handshake must finish within [`HANDSHAKE_TIMEOUT`], so a silent or hostile peer cannot
//! hold an `accept` for ever.

use std::fmt;
use std::io;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Connection;

/// How long a handshake may take before `accept` or `connect` gives up (`TimedOut`), unless
/// the listener sets another limit.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest message accepted during the handshake.
pub const HANDSHAKE_MAX: usize = 256;

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const NONCE_LEN: usize = 32;

/// Which side computes a MAC: part of what is signed.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Client,
    Server,
}

impl Role {
    fn tag(self) -> &'static [u8] {
        match self {
            Role::Client => b"client",
            Role::Server => b"server",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// The handshake failed: the peer does not hold the key, or does not speak the protocol
/// (Python's `AuthenticationError`). Carried inside an `io::Error` of kind
/// `PermissionDenied`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationError {
    reason: &'static str,
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authentication failed: {}", self.reason)
    }
}

impl std::error::Error for AuthenticationError {}

fn refused(reason: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        AuthenticationError { reason },
    )
}

/// Runs the whole handshake as `role` (the listener challenges first), within `limit` and
/// with messages capped at [`HANDSHAKE_MAX`].
pub(crate) fn handshake(
    conn: &Connection,
    key: &[u8],
    role: Role,
    limit: Duration,
) -> io::Result<()> {
    conn.set_max_message(HANDSHAKE_MAX);
    let outcome = crate::timeout(limit, || match role {
        Role::Server => {
            deliver_challenge(conn, key, role).and_then(|()| answer_challenge(conn, key, role))
        }
        Role::Client => {
            answer_challenge(conn, key, role).and_then(|()| deliver_challenge(conn, key, role))
        }
    })
    .unwrap_or_else(|elapsed| Err(elapsed.into()));
    conn.set_max_message(super::DEFAULT_MAX_MESSAGE);
    outcome
}

/// Sends a fresh nonce and checks the peer's MAC of it.
fn deliver_challenge(conn: &Connection, key: &[u8], me: Role) -> io::Result<()> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::sys::shm::random_bytes(&mut nonce)?;
    conn.send_bytes(&[CHALLENGE, &nonce].concat())?;
    let answer = conn.recv_bytes()?;
    if mac(key, me.other(), &nonce).verify_slice(&answer).is_err() {
        let _ = conn.send_bytes(FAILURE);
        return Err(refused(
            "the peer's answer to our challenge is wrong (another key?)",
        ));
    }
    conn.send_bytes(WELCOME)
}

/// Answers the peer's challenge and reads its verdict.
fn answer_challenge(conn: &Connection, key: &[u8], me: Role) -> io::Result<()> {
    let message = conn.recv_bytes()?;
    let nonce = match message.strip_prefix(CHALLENGE) {
        Some(nonce) if nonce.len() == NONCE_LEN => nonce,
        _ => return Err(refused("the peer did not send a challenge")),
    };
    conn.send_bytes(&mac(key, me, nonce).finalize().into_bytes())?;
    match conn.recv_bytes()?.as_slice() {
        WELCOME => Ok(()),
        FAILURE => Err(refused("the peer rejected our answer (another key?)")),
        _ => Err(refused("the peer sent neither welcome nor failure")),
    }
}

/// HMAC-SHA256 under `key` of `role`'s tag and `nonce`.
fn mac(key: &[u8], role: Role, nonce: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(role.tag());
    mac.update(nonce);
    mac
}
