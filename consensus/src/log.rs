//! The acceptor's log: what was accepted (and what is known chosen) at each
//! slot after the last snapshot.

use std::collections::VecDeque;

use crate::ballot::{Ballot, Slot};
use crate::entry::Entry;

/// One slot of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogSlot<V> {
    /// The ballot `entry` was accepted at. For an entry learned as chosen
    /// through catch-up it is the ballot of whatever was accepted before (or
    /// zero); it no longer matters, because `chosen` is reported instead.
    pub(crate) ballot: Ballot,
    pub(crate) entry: Entry<V>,
    pub(crate) chosen: bool,
}

/// Slots `first_slot ..` in a ring buffer, with holes where nothing was
/// accepted yet (phase 2 messages can arrive out of order).
#[derive(Clone, Debug)]
pub(crate) struct Log<V> {
    first_slot: Slot,
    slots: VecDeque<Option<LogSlot<V>>>,
}

impl<V> Log<V> {
    /// An empty log whose first slot follows `snapshot_slot`.
    pub(crate) fn new(snapshot_slot: Slot) -> Self {
        Log {
            first_slot: snapshot_slot + 1,
            slots: VecDeque::new(),
        }
    }

    /// The highest slot present (accepted or a hole below one), or the
    /// snapshot slot when the log is empty.
    pub(crate) fn last_slot(&self) -> Slot {
        self.first_slot + self.slots.len() as Slot - 1
    }

    fn index(&self, slot: Slot) -> Option<usize> {
        slot.checked_sub(self.first_slot)
            .map(|offset| offset as usize)
            .filter(|offset| *offset < self.slots.len())
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&LogSlot<V>> {
        self.index(slot).and_then(|i| self.slots[i].as_ref())
    }

    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut LogSlot<V>> {
        self.index(slot).and_then(|i| self.slots[i].as_mut())
    }

    /// Stores `value` at `slot`, growing the log with holes as needed. Slots
    /// at or below the snapshot are compacted and silently ignored.
    pub(crate) fn put(&mut self, slot: Slot, value: LogSlot<V>) {
        if slot < self.first_slot {
            return;
        }
        let offset = (slot - self.first_slot) as usize;
        if offset >= self.slots.len() {
            self.slots.resize_with(offset + 1, || None);
        }
        self.slots[offset] = Some(value);
    }

    /// Drops every slot up to and including `slot`.
    pub(crate) fn compact_through(&mut self, slot: Slot) {
        if slot < self.first_slot {
            return;
        }
        let drop = ((slot - self.first_slot + 1) as usize).min(self.slots.len());
        self.slots.drain(..drop);
        self.first_slot = slot + 1;
    }

    /// Present slots from `from` on, in slot order.
    pub(crate) fn iter_from(&self, from: Slot) -> impl Iterator<Item = (Slot, &LogSlot<V>)> {
        let skip = from.saturating_sub(self.first_slot) as usize;
        let first_slot = self.first_slot;
        self.slots
            .iter()
            .enumerate()
            .skip(skip)
            .filter_map(move |(i, s)| s.as_ref().map(|s| (first_slot + i as Slot, s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(round: u64) -> LogSlot<u32> {
        LogSlot {
            ballot: Ballot::new(round, 1),
            entry: Entry::Noop,
            chosen: false,
        }
    }

    #[test]
    fn holes_compaction_and_iteration() {
        let mut log = Log::new(0);
        assert_eq!(log.last_slot(), 0, "empty log ends at the snapshot");
        log.put(3, slot(3));
        log.put(1, slot(1));
        assert_eq!(log.last_slot(), 3);
        assert!(log.get(2).is_none(), "slot 2 is a hole");
        let present: Vec<Slot> = log.iter_from(1).map(|(s, _)| s).collect();
        assert_eq!(present, vec![1, 3]);

        log.compact_through(2);
        assert!(log.get(1).is_none(), "compacted");
        assert_eq!(log.get(3), Some(&slot(3)));
        log.put(2, slot(9));
        assert!(
            log.get(2).is_none(),
            "writes below the snapshot are ignored"
        );

        log.compact_through(5);
        assert_eq!(
            log.last_slot(),
            5,
            "compacting past the end moves the start"
        );
        assert_eq!(log.iter_from(0).count(), 0);
    }
}
