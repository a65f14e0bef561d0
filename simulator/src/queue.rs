//! The event queue: events ordered by `(virtual time, insertion sequence)`.
//!
//! Every simulated event passes through here twice (pushed, popped), so this is the hottest
//! structure of a run. A heap moves its elements on every push and pop, and a simulator's
//! events are large (a message in flight with its incarnations, a fault, a process's
//! command), so the heap holds only 24-byte keys, `(time, sequence, slot)`, and the events
//! wait in a slab of slots that never move; a popped event's slot is reused by the next
//! push. (Two other structures over the same keys were tried and were slower than `std`'s
//! binary heap, whose pop sifts to the bottom with one comparison a level: a 4-ary heap, at
//! 100 and 1,000 nodes, and a radix heap, by about 15% at every size, since a peek that must
//! not move the heap's reference point scans a bucket that the pop then scans again.) The order
//! is the keys' order, and sequences are unique, so it is a total order that depends neither
//! on the slab nor on the heap's shape: the same pushes pop in the same order as from a
//! `BinaryHeap` of whole events (a property test checks it).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A heap entry: when, the push's sequence (unique, so no two keys tie) and the slot its
/// event waits in.
#[derive(Clone, Copy)]
struct Key {
    at_ns: u64,
    sequence: u64,
    slot: u32,
}

impl Key {
    /// `(at_ns, sequence)` as one integer: one 128-bit comparison orders two keys.
    fn order(self) -> u128 {
        u128::from(self.at_ns) << 64 | u128::from(self.sequence)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    /// Reversed: `BinaryHeap` pops its greatest element, and the queue pops its earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

/// Events by `(at_ns, sequence)`, earliest first. Every sequence pushed must be unique.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        Self { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new() }
    }

    pub(crate) fn push(&mut self, at_ns: u64, sequence: u64, event: E) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                // More than 2^32 events waiting at once cannot fit in memory anyway.
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 events are queued");
                self.slots.push(Some(event));
                slot
            }
        };
        self.heap.push(Key { at_ns, sequence, slot });
    }

    /// The time of the earliest event.
    pub(crate) fn peek_ns(&self) -> Option<u64> {
        self.heap.peek().map(|key| key.at_ns)
    }

    /// The earliest event and its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        let key = self.heap.pop()?;
        // A key is pushed with its event and popped once, so its slot is full.
        let event = self.slots[key.slot as usize].take().expect("a queued key's slot holds its event");
        self.free.push(key.slot);
        Some((key.at_ns, event))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any interleaving of pushes and pops gives the order a heap of whole events gives.
        #[test]
        fn pops_in_the_order_of_a_heap_of_whole_events(
            operations in proptest::collection::vec(proptest::option::of(0u64..50), 0..400),
        ) {
            let mut queue = EventQueue::new();
            let mut reference = BinaryHeap::new();
            for (sequence, operation) in (0u64..).zip(operations) {
                match operation {
                    Some(at_ns) => {
                        let event = format!("event {sequence}");
                        queue.push(at_ns, sequence, event.clone());
                        reference.push(Reverse((at_ns, sequence, event)));
                    }
                    None => {
                        let expected = reference.pop().map(|Reverse((at_ns, _, event))| (at_ns, event));
                        prop_assert_eq!(queue.pop(), expected);
                    }
                }
                prop_assert_eq!(queue.len(), reference.len());
                prop_assert_eq!(queue.peek_ns(), reference.peek().map(|Reverse((at_ns, _, _))| *at_ns));
            }
            while let Some(Reverse((at_ns, _, event))) = reference.pop() {
                prop_assert_eq!(queue.pop(), Some((at_ns, event)));
            }
            prop_assert_eq!(queue.pop(), None);
        }
    }

    #[test]
    fn slots_are_reused_so_the_slab_holds_only_what_waits() {
        let mut queue = EventQueue::new();
        for round in 0..1_000u64 {
            queue.push(round, 2 * round, round);
            queue.push(round, 2 * round + 1, round);
            assert_eq!(queue.pop(), Some((round, round)));
            assert_eq!(queue.pop(), Some((round, round)));
        }
        assert_eq!(queue.slots.len(), 2);
    }
}
