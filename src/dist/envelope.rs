//! What a task and a result look like in Redis, and reading them back.
//!
//! An envelope is `ID \n REPLY-TO \n BODY`: the id the put script gave the task, the result
//! handle waiting for its result (empty for none), and the task encoded with `postcard`. A
//! result is `ID \n ok|err \n PAYLOAD`. Anything in Redis may have been written by another
//! program — or by hand — so reading checks every part and says what is wrong.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A task as taken from `pending`: its id, who waits for the result, its encoded body.
pub(crate) struct Envelope<'a> {
    pub(crate) id: u64,
    pub(crate) reply_to: &'a str,
    pub(crate) body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Reads the envelope's three parts.
    pub(crate) fn parse(raw: &'a [u8]) -> Result<Envelope<'a>, String> {
        let (id, rest) = field(raw, "task id")?;
        let (reply_to, body) = field(rest, "reply-to")?;
        let reply_to = std::str::from_utf8(reply_to)
            .ok()
            .filter(|r| r.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or("the reply-to is not a result handle's hex id")?;
        Ok(Envelope {
            id: number(id)?,
            reply_to,
            body,
        })
    }
}

/// A result as read from a result list.
pub(crate) struct RawResult<'a> {
    pub(crate) id: u64,
    pub(crate) ok: bool,
    pub(crate) payload: &'a [u8],
}

impl<'a> RawResult<'a> {
    /// Reads the result's three parts.
    pub(crate) fn parse(raw: &'a [u8]) -> Result<RawResult<'a>, String> {
        let (id, rest) = field(raw, "task id")?;
        let (status, payload) = field(rest, "status")?;
        let ok = match status {
            b"ok" => true,
            b"err" => false,
            _ => return Err("the status is neither ok nor err".into()),
        };
        Ok(RawResult {
            id: number(id)?,
            ok,
            payload,
        })
    }
}

/// The bytes up to the next newline, and the rest after it.
fn field<'a>(raw: &'a [u8], what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let at = raw
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| format!("no newline after the {what}"))?;
    Ok((&raw[..at], &raw[at + 1..]))
}

/// A decimal task id.
fn number(digits: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| {
            format!(
                "the task id {:?} is not a number",
                String::from_utf8_lossy(digits)
            )
        })
}

/// `value` as the bytes stored in Redis.
pub(crate) fn encode<V: Serialize>(value: &V) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("cannot encode: {e}")))
}

/// Bytes read from Redis as a `V`.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("cannot decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_reads_back_its_parts() {
        let e = Envelope::parse(b"42\nab12\n\x01\x02\n").unwrap();
        assert_eq!((e.id, e.reply_to, e.body), (42, "ab12", &b"\x01\x02\n"[..]));
        let none = Envelope::parse(b"7\n\nbody").unwrap();
        assert_eq!((none.id, none.reply_to), (7, ""));
    }

    #[test]
    fn damaged_envelopes_and_results_are_refused_with_a_reason() {
        for bad in [
            &b""[..],
            b"42",
            b"42\nab",
            b"x\n\nbody",
            b"\n\nbody",
            b"1\nnot hex\nb",
        ] {
            assert!(Envelope::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(RawResult::parse(b"1\nmaybe\n").is_err());
        let r = RawResult::parse(b"9\nerr\nboom").unwrap();
        assert_eq!((r.id, r.ok, r.payload), (9, false, &b"boom"[..]));
    }
}
