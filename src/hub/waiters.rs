//! A list of parked green threads waiting for one thing — a direction of a socket, the end
//! of a green thread — that costs no allocation for its usual length, one.
//!
//! The first waiter sits inline; more spill into a `Vec`. A socket is nearly always read by
//! one green thread, and a green thread nearly always joined by one other: kept inline in
//! the I/O source, a wake-up touches no other heap line (which counts at a thousand
//! connections, where every line touched per round trip is a cache miss); kept inline in the
//! green thread's record, a `join` that parks allocates nothing (it allocated a `Vec` before:
//! ~80 of a spawn+join's ~1,650 instructions). Waiters come off in the order they went on.

use std::rc::Rc;

use super::green::Green;

/// See the module docs.
#[derive(Default)]
pub(crate) struct Waiters {
    first: Option<Rc<Green>>,
    more: Vec<Rc<Green>>,
}

impl Waiters {
    /// Adds `green` at the back.
    pub(crate) fn push(&mut self, green: Rc<Green>) {
        match self.first {
            None => self.first = Some(green),
            Some(_) => self.more.push(green),
        }
    }

    /// Takes `green` off the list (its first entry); false if it was not on it.
    pub(crate) fn remove(&mut self, green: &Rc<Green>) -> bool {
        self.remove_ptr(Rc::as_ptr(green))
    }

    /// [`Waiters::remove`] by the record's address (the hub's current green thread, whose
    /// `Rc` the caller does not hold).
    pub(crate) fn remove_ptr(&mut self, green: *const Green) -> bool {
        let is_it = |g: &Rc<Green>| std::ptr::eq(Rc::as_ptr(g), green);
        if self.first.as_ref().is_some_and(is_it) {
            self.first = (!self.more.is_empty()).then(|| self.more.remove(0));
            return true;
        }
        match self.more.iter().position(is_it) {
            Some(i) => {
                self.more.remove(i);
                true
            }
            None => false,
        }
    }

    /// Takes the first waiter off, and says whether more are left (the rare case: the caller
    /// then takes them too, with [`take_into`](Waiters::take_into)). Touches the spill `Vec`'s
    /// length only, not its heap line.
    pub(crate) fn take_first(&mut self) -> (Option<Rc<Green>>, bool) {
        (self.first.take(), !self.more.is_empty())
    }

    /// Empties the list into `out` (whose capacity is kept for next time), in order.
    pub(crate) fn take_into(&mut self, out: &mut Vec<Rc<Green>>) {
        out.extend(self.first.take());
        out.append(&mut self.more);
    }

    /// The waiters, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Rc<Green>> {
        self.first.iter().chain(&self.more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn green(id: u64) -> Rc<Green> {
        Rc::new(Green::new(id, None, false, std::panic::Location::caller()))
    }

    #[test]
    fn waiters_come_off_in_the_order_they_went_on_also_after_a_removal() {
        let (a, b, c, d) = (green(1), green(2), green(3), green(4));
        let mut list = Waiters::default();
        for g in [&a, &b, &c, &d] {
            list.push(g.clone());
        }
        assert!(list.remove(&a), "the inline first one");
        assert!(list.remove(&c), "one that spilled");
        assert!(!list.remove(&c), "already off");
        let ids: Vec<u64> = list.iter().map(|g| g.id).collect();
        assert_eq!(ids, [2, 4]);
        let mut out = Vec::new();
        list.take_into(&mut out);
        assert_eq!(out.iter().map(|g| g.id).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(list.iter().count(), 0, "empty after");
    }
}
