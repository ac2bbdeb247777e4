//! The work queue's server-side steps, as Lua scripts Redis runs atomically.
//!
//! Each step that changes more than one key runs as one script, so another client sees it
//! done or not done, never half: a put queues the task *and* counts it unfinished; an ack
//! removes the lease *and* delivers the result *and* adds the counters, or does none of them.
//!
//! ## The keys of queue `P` (every key starts with the prefix `P`, `greenrt:{name}:`)
//! | key | type | holds |
//! |---|---|---|
//! | `P pending` | list | task envelopes; put on the left, taken from the right |
//! | `P lease:M` | list | the envelope slot `M` of some worker is running (at most one) |
//! | `P members` | sorted set | slots that hold or are taking a lease, scored by their last heartbeat (ms, server clock) |
//! | `P stats` | hash | `put`, `done`, `failed`, `requeued`, `released`, `lost`, `corrupt`, `unfinished`, `next_id` |
//! | `P counters` | hash | what acks added (`Lease::finish_counting`) |
//! | `P seen` | set | keys `put_unique` has admitted |
//! | `P results:R` | list | results for the producer handle `R` (expire a day after the last) |
//! | `P results:R:taking` | list | the batch of results handle `R` is handing out |
//! | `P sessions` | hash | session id → `seq:reply` of its last memoized call |
//! | `P dead` | list | envelopes that could not be read (dead letters) |
//!
//! An envelope is `ID \n REPLY-TO \n BODY` (`REPLY-TO` empty when nobody waits for the
//! result); a result is `ID \n ok|err \n PAYLOAD`. Times come from the server's `TIME`, so
//! the clocks of the machines running workers never matter.

use std::ops::Deref;
use std::sync::LazyLock;

use ::redis::Script;

/// A script as a `redis::Script`, which knows its SHA1: calls send `EVALSHA` and the 40-byte
/// hash, not the body (Redis hashes an `EVAL`'s body on every call; with `redis-benchmark`,
/// the ack script ran 53k calls/s by `EVAL` and 66–69k by `EVALSHA`). Each new connection
/// loads them all ([`load_all`]: a restarted server has forgotten them); a server that forgot
/// them while connected (`SCRIPT FLUSH`) answers `NOSCRIPT`, and the session loads them and
/// runs the call again — a script that was refused did nothing.
macro_rules! script {
    ($($part:expr),+ $(,)?) => {
        LazyLock::new(|| {
            let body = concat!($($part),+);
            Lua { body, script: Script::new(body) }
        })
    };
}

/// A script's text and the `redis::Script` made from it (which derefs to it).
pub(crate) struct Lua {
    body: &'static str,
    script: Script,
}

impl Deref for Lua {
    type Target = Script;
    fn deref(&self) -> &Script {
        &self.script
    }
}

/// Loads every script into the server's script cache, in one round trip.
pub(crate) fn load_all(con: &mut dyn ::redis::ConnectionLike) -> ::redis::RedisResult<()> {
    let all: [&Lua; 9] = [
        &PUT,
        &PUT_UNIQUE,
        &ACK,
        &READY,
        &LEAVE,
        &HEARTBEAT,
        &REAP,
        &QUARANTINE,
        &FETCH_RESULTS,
    ];
    let mut pipe = ::redis::pipe();
    for lua in all {
        pipe.cmd("SCRIPT").arg("LOAD").arg(lua.body).ignore();
    }
    pipe.query(con)
}

/// The opening of every memoized script. `ARGV[1]` is the key prefix, `ARGV[2]` the session
/// id, `ARGV[3]` the call's sequence number; a call whose number is the session's last
/// returns that call's stored reply and does nothing. `remember(reply)` stores and returns
/// the reply. A script's own arguments start at `ARGV[4]`.
macro_rules! memo {
    () => {
        r"
local P = ARGV[1]
local memo = redis.call('HGET', P .. 'sessions', ARGV[2])
if memo then
  local colon = string.find(memo, ':', 1, true)
  if colon and string.sub(memo, 1, colon - 1) == ARGV[3] then
    return string.sub(memo, colon + 1)
  end
end
local function remember(reply)
  redis.call('HSET', P .. 'sessions', ARGV[2], ARGV[3] .. ':' .. reply)
  return reply
end
"
    };
}

/// The server's clock in milliseconds.
macro_rules! now_ms {
    () => {
        r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"
    };
}

/// Moving every task of a slot's lease list back to the taking end of `pending` (the reaper,
/// a slot getting ready, a worker leaving): `put_back(P, slot)` returns how many moved.
macro_rules! put_back {
    () => {
        r"
local function put_back(P, slot)
  local moved = 0
  while redis.call('LMOVE', P .. 'lease:' .. slot, P .. 'pending', 'RIGHT', 'RIGHT') do
    moved = moved + 1
  end
  return moved
end
"
    };
}

/// Put: `ARGV[4]` reply-to, `ARGV[5..]` bodies. Replies with the new ids, space-separated.
pub(crate) static PUT: LazyLock<Lua> = script!(
    memo!(),
    r"
local ids = {}
for i = 5, #ARGV do
  local id = redis.call('HINCRBY', P .. 'stats', 'next_id', 1)
  redis.call('LPUSH', P .. 'pending', id .. '\n' .. ARGV[4] .. '\n' .. ARGV[i])
  ids[#ids + 1] = id
end
redis.call('HINCRBY', P .. 'stats', 'put', #ids)
redis.call('HINCRBY', P .. 'stats', 'unfinished', #ids)
return remember(table.concat(ids, ' '))
"
);

/// Put unique: `ARGV[4]` the most keys ever admitted (0: no limit), then pairs of key and
/// body. A key admitted before (or past the limit) is skipped. Replies with an id per pair,
/// `0` for a skipped one, space-separated. Nobody waits for these tasks' results.
pub(crate) static PUT_UNIQUE: LazyLock<Lua> = script!(
    memo!(),
    r"
local limit = tonumber(ARGV[4])
local ids = {}
local added = 0
for i = 5, #ARGV, 2 do
  local id = 0
  local room = limit == 0 or redis.call('SCARD', P .. 'seen') < limit
  if room and redis.call('SADD', P .. 'seen', ARGV[i]) == 1 then
    id = redis.call('HINCRBY', P .. 'stats', 'next_id', 1)
    redis.call('LPUSH', P .. 'pending', id .. '\n\n' .. ARGV[i + 1])
    added = added + 1
  end
  ids[#ids + 1] = id
end
redis.call('HINCRBY', P .. 'stats', 'put', added)
redis.call('HINCRBY', P .. 'stats', 'unfinished', added)
return remember(table.concat(ids, ' '))
"
);

/// Ack: `ARGV[4]` the slot, `ARGV[5]` the envelope, `ARGV[6]` the task id, `ARGV[7]`
/// reply-to, `ARGV[8]` `ok` or `err`, `ARGV[9]` the payload, then pairs of counter name and
/// amount. Replies `done`, or `lost` when the slot no longer holds the lease (it was
/// declared dead and the task put back): then nothing is delivered or counted but `lost`.
pub(crate) static ACK: LazyLock<Lua> = script!(
    memo!(),
    r"
if redis.call('LREM', P .. 'lease:' .. ARGV[4], 1, ARGV[5]) == 0 then
  redis.call('HINCRBY', P .. 'stats', 'lost', 1)
  return remember('lost')
end
redis.call('HINCRBY', P .. 'stats', 'unfinished', -1)
redis.call('HINCRBY', P .. 'stats', ARGV[8] == 'ok' and 'done' or 'failed', 1)
if ARGV[7] ~= '' then
  local results = P .. 'results:' .. ARGV[7]
  redis.call('LPUSH', results, ARGV[6] .. '\n' .. ARGV[8] .. '\n' .. ARGV[9])
  redis.call('PEXPIRE', results, 86400000)
end
for i = 10, #ARGV, 2 do
  redis.call('HINCRBY', P .. 'counters', ARGV[i], ARGV[i + 1])
end
return remember('done')
"
);

/// Ready to take: `ARGV[2]` the slot. Puts back whatever its lease list still holds (a lease
/// dropped unfinished, or one a lost `BLMOVE` reply hid), counted `released`, and records a
/// heartbeat for the slot. Replies with how many were put back. Runs in the same pipeline
/// as the `BLMOVE` that follows it — the reaper relies on that (see [`REAP`]).
pub(crate) static READY: LazyLock<Lua> = script!(
    now_ms!(),
    put_back!(),
    r"
local P = ARGV[1]
local moved = put_back(P, ARGV[2])
if moved > 0 then
  redis.call('HINCRBY', P .. 'stats', 'released', moved)
end
redis.call('ZADD', P .. 'members', now_ms(), ARGV[2])
return moved
"
);

/// Leave: `ARGV[2..]` slots. Puts back what their lease lists hold (counted `released`) and
/// forgets them. Replies with how many tasks were put back.
pub(crate) static LEAVE: LazyLock<Lua> = script!(
    put_back!(),
    r"
local P = ARGV[1]
local moved = 0
for i = 2, #ARGV do
  moved = moved + put_back(P, ARGV[i])
  redis.call('ZREM', P .. 'members', ARGV[i])
end
if moved > 0 then
  redis.call('HINCRBY', P .. 'stats', 'released', moved)
end
return moved
"
);

/// Heartbeat: `ARGV[2..]` slots. Records that they are alive.
pub(crate) static HEARTBEAT: LazyLock<Lua> = script!(
    now_ms!(),
    r"
local now = now_ms()
for i = 2, #ARGV do
  redis.call('ZADD', ARGV[1] .. 'members', now, ARGV[i])
end
return now
"
);

/// Reap: `ARGV[2]` the lease time, `ARGV[3]` the forget time (ms). Every slot not heard from
/// for the lease time is dead: its lease goes back to the taking end of `pending` (counted
/// `requeued`). A dead slot is forgotten after the forget time — long enough that no
/// `BLMOVE` it sent can still be waiting in the server: each was sent right after a heartbeat
/// (`READY`) and blocks for at most a quarter of the lease time, so once the forget time
/// (more than the lease time plus that) has passed, nothing can enter its lease list again.
/// Replies with how many tasks were put back.
pub(crate) static REAP: LazyLock<Lua> = script!(
    now_ms!(),
    put_back!(),
    r"
local P = ARGV[1]
local now = now_ms()
local dead = redis.call('ZRANGEBYSCORE', P .. 'members', '-inf', now - tonumber(ARGV[2]), 'WITHSCORES')
local moved = 0
for i = 1, #dead, 2 do
  moved = moved + put_back(P, dead[i])
  if tonumber(dead[i + 1]) < now - tonumber(ARGV[3]) then
    redis.call('ZREM', P .. 'members', dead[i])
  end
end
if moved > 0 then
  redis.call('HINCRBY', P .. 'stats', 'requeued', moved)
end
return moved
"
);

/// Quarantine: `ARGV[2]` the slot, `ARGV[3]` an envelope it could not read. Moves it from the
/// lease list to the dead letters, counted `corrupt`.
pub(crate) static QUARANTINE: LazyLock<Lua> = script!(
    r"
local P = ARGV[1]
if redis.call('LREM', P .. 'lease:' .. ARGV[2], 1, ARGV[3]) == 1 then
  redis.call('LPUSH', P .. 'dead', ARGV[3])
  redis.call('HINCRBY', P .. 'stats', 'corrupt', 1)
end
return 1
"
);

/// Fetch results: `ARGV[2]` the receiver's session, `ARGV[3]` the call's sequence number,
/// `ARGV[4]` the result handle, `ARGV[5]` the most to fetch. A new fetch (a new number)
/// deletes the batch the last fetch moved to `results:H:taking` — the receiver fetches only
/// when it has handed every one of those out — and moves the next batch there, oldest first;
/// a retry (the same number, after a lost reply) moves nothing. Either way it replies with
/// the batch in `taking`: each result reaches the receiver once.
pub(crate) static FETCH_RESULTS: LazyLock<Lua> = script!(
    r"
local P = ARGV[1]
local results = P .. 'results:' .. ARGV[4]
local taking = results .. ':taking'
if redis.call('HGET', P .. 'sessions', ARGV[2]) ~= ARGV[3] then
  redis.call('DEL', taking)
  for i = 1, tonumber(ARGV[5]) do
    if not redis.call('LMOVE', results, taking, 'RIGHT', 'RIGHT') then
      break
    end
  end
  redis.call('HSET', P .. 'sessions', ARGV[2], ARGV[3])
end
return redis.call('LRANGE', taking, 0, -1)
"
);
