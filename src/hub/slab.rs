//! A slab with generation-tagged keys: O(1) insert, lookup and remove.
//!
//! The hub keeps three tables of this kind — alive green threads, timers and I/O sources —
//! and hands out [`Key`]s into them. A key names a slot *and* the generation of that slot, so
//! a stale key (to a timer already fired, a green thread already finished, a socket already
//! closed) simply finds nothing instead of finding the slot's next occupant.
//!
//! ```text
//!   slots:  [ Full{gen 3, T} | Free{gen 5, next 4} | Full{gen 1, T} | ... ]
//!   free:   1 -> 4 -> ...          (a linked list threaded through the free slots)
//! ```

/// Names one slot of a [`Slab`] in one of its lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    /// Packs the key into a `usize`, e.g. for a `mio::Token`.
    pub(crate) fn to_usize(self) -> usize {
        ((self.generation as usize) << 32) | self.index as usize
    }

    /// The inverse of [`Key::to_usize`].
    pub(crate) fn from_usize(raw: usize) -> Key {
        Key {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        }
    }
}

enum Slot<T> {
    Full { generation: u32, value: T },
    Free { generation: u32, next_free: u32 },
}

/// The table itself. See the module docs.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    first_free: u32,
    len: usize,
}

const NONE: u32 = u32::MAX;

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            slots: Vec::new(),
            first_free: NONE,
            len: 0,
        }
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` and returns its key.
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if self.first_free == NONE {
            let index = u32::try_from(self.slots.len()).expect("greenrt slab is full (2^32 slots)");
            self.slots.push(Slot::Full {
                generation: 0,
                value,
            });
            return Key {
                index,
                generation: 0,
            };
        }
        let index = self.first_free;
        let slot = &mut self.slots[index as usize];
        let Slot::Free {
            generation,
            next_free,
        } = *slot
        else {
            unreachable!("the free list points only at free slots")
        };
        self.first_free = next_free;
        *slot = Slot::Full { generation, value };
        Key { index, generation }
    }

    /// The value under `key`, if `key` is still current.
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(Slot::Full { generation, value }) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// Mutable access to the value under `key`, if `key` is still current.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(Slot::Full { generation, value }) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// Removes and returns the value under `key`, if `key` is still current. The slot's
    /// generation moves on, so `key` will never match again.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        self.get(key)?;
        let next = Slot::Free {
            generation: key.generation.wrapping_add(1),
            next_free: self.first_free,
        };
        let old = std::mem::replace(&mut self.slots[key.index as usize], next);
        self.first_free = key.index;
        self.len -= 1;
        match old {
            Slot::Full { value, .. } => Some(value),
            Slot::Free { .. } => unreachable!("checked by get above"),
        }
    }

    /// Every stored value, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|slot| match slot {
            Slot::Full { value, .. } => Some(value),
            Slot::Free { .. } => None,
        })
    }

    /// Removes every value, handing each to `f`.
    pub(crate) fn drain_with(&mut self, mut f: impl FnMut(T)) {
        for slot in std::mem::take(&mut self.slots) {
            if let Slot::Full { value, .. } = slot {
                f(value);
            }
        }
        self.first_free = NONE;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_find_nothing() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(
            slab.get(a),
            None,
            "a reused slot must not answer to the old key"
        );
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(Key::from_usize(b.to_usize()), b);
        assert_eq!(slab.len(), 1);
    }
}
