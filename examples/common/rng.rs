//! A small pseudo-random generator (xorshift64), so the storms and fuzzers need no crate and
//! a seed replays a run exactly.
#![allow(dead_code)]

/// xorshift64: never 0 from a non-zero state (seed it with `seed | 1`).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
