//! The event queue: events ordered by `(virtual time, insertion sequence)`.
//!
//! Every simulated event passes through here twice (pushed, popped), so this is the hottest
//! structure of a run. The simulator keeps its events small (16 bytes: a message waits in a
//! slab of its own, rare events are boxed), so each key carries its event: `(time, sequence,
//! event)`, 32 bytes, with no slab to look the event up in. (With 80-byte events, a slab and
//! 24-byte keys were faster.)
//!
//! The keys wait in a calendar (a timing wheel): a ring of [`BUCKETS`] buckets, each
//! [`BUCKET_NS`] of virtual time wide, that covers the next 67 ms. Almost every event
//! a simulation schedules falls inside it (a message's latency, a ping's period), and
//! a push there links the key to the front of its bucket's list. A pop takes the next
//! occupied bucket (found in a bitmap of the ring), sorts its few keys once, and pops them in
//! order. Keys further ahead wait in a binary heap and move into the ring when it reaches
//! them; a key pushed into the bucket being drained is inserted in order. A binary heap of
//! every key did the same work with a mispredicted branch per level of every pop: 18% of
//! a gossip run at 100 nodes. (A 4-ary heap and a radix heap over the same keys were slower
//! than the binary heap.)
//!
//! Every bucket's list lives in one slab whose freed links are reused last freed first, so
//! the keys of a run sit in the few cache lines it touched last, and the list heads take
//! 8 KiB. A vector per bucket spread them over 2,048 allocations and 48 KiB of vector
//! headers: touching each bucket's header and its keys missed the first-level cache, and
//! gossip ran 1.11× slower at 100 nodes and 1.06× at 1,000.
//!
//! The order is the keys' order, and sequences are unique, so it is a total order that
//! does not depend on where a key waited: the same pushes pop in the same
//! order as from a `BinaryHeap` of whole events (a property test checks it).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Virtual time one bucket of the ring covers: 32.768 µs (a power of two: dividing by it is a
/// shift). At 1,000 gossiping nodes a bucket holds about nine keys, at 100 about one.
const BUCKET_NS: u64 = 1 << 15;
/// Buckets in the ring.
const BUCKETS: usize = 2048;
/// Virtual time the ring covers ahead of the bucket being drained: 67.1 ms.
#[cfg(test)]
const HORIZON_NS: u64 = BUCKET_NS * BUCKETS as u64;
const WORDS: usize = BUCKETS / 64;
/// The end of a bucket's list, or of the free list.
const NONE: u32 = u32::MAX;

/// A key in the ring and the next of its bucket's list; a free link holds no key and links
/// the next free one.
struct Link<E> {
    key: Option<Key<E>>,
    next: u32,
}

/// A key: when, the push's sequence (unique, so no two keys tie), and its event, which takes
/// no part in the order.
struct Key<E> {
    at_ns: u64,
    sequence: u64,
    event: E,
}

impl<E> Key<E> {
    /// `(at_ns, sequence)` as one integer: one 128-bit comparison orders two keys.
    fn order(&self) -> u128 {
        u128::from(self.at_ns) << 64 | u128::from(self.sequence)
    }

    /// The number of the bucket its time falls in.
    fn bucket(&self) -> u64 {
        self.at_ns / BUCKET_NS
    }
}

impl<E> PartialEq for Key<E> {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl<E> Eq for Key<E> {}
impl<E> PartialOrd for Key<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Key<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.order().cmp(&other.order())
    }
}

/// Events by `(at_ns, sequence)`, earliest first. Every sequence pushed must be unique.
///
/// Where a key waits, by its bucket number `b = at_ns / BUCKET_NS`, with `next` the first
/// bucket the ring holds:
///
/// - `b < next`: in `current`, sorted latest first, so a pop takes its last key;
/// - `next <= b < next + BUCKETS`: in the ring, at `b % BUCKETS`, unsorted;
/// - `b >= next + BUCKETS`: in `far`.
///
/// `next` only grows, and only when `current` is empty: a pop that finds it empty takes the
/// ring's first occupied bucket as `current` and moves `next` past it, then brings into the
/// ring the far keys it now reaches. Every key in `current` is therefore earlier than every
/// key in the ring, and every key in the ring earlier than every far key.
pub(crate) struct EventQueue<E> {
    current: Vec<Key<E>>,
    /// The first link of each bucket's list, `NONE` when it is empty.
    heads: Box<[u32; BUCKETS]>,
    /// The ring's keys, each linked to the next of its bucket (the last pushed first); free
    /// links hold no key and are linked from `free`. It never shrinks: it is as large as the
    /// most keys ever in the ring at once (40 bytes each for a 16-byte event).
    links: Vec<Link<E>>,
    /// The first free link, `NONE` when every link holds a key.
    free: u32,
    /// Bit `i` set: bucket `i` holds keys.
    occupied: [u64; WORDS],
    /// Keys in the ring.
    ringed: usize,
    next: u64,
    far: BinaryHeap<Reverse<Key<E>>>,
    /// The most keys the ring has held at once, for `check_slab`.
    #[cfg(test)]
    most_ringed: usize,
}

impl<E> EventQueue<E> {
    pub(crate) fn new() -> Self {
        Self {
            current: Vec::new(),
            heads: Box::new([NONE; BUCKETS]),
            links: Vec::new(),
            free: NONE,
            occupied: [0; WORDS],
            ringed: 0,
            next: 0,
            far: BinaryHeap::new(),
            #[cfg(test)]
            most_ringed: 0,
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, at_ns: u64, sequence: u64, event: E) {
        self.place(Key { at_ns, sequence, event });
    }

    #[inline(always)]
    fn place(&mut self, key: Key<E>) {
        let bucket = key.bucket();
        if bucket < self.next {
            let index = self.current.partition_point(|waiting| *waiting > key);
            self.current.insert(index, key);
        } else if bucket - self.next < BUCKETS as u64 {
            self.ring_push(key);
        } else {
            self.far.push(Reverse(key));
        }
    }

    #[inline(always)]
    fn ring_push(&mut self, key: Key<E>) {
        let index = (key.bucket() % BUCKETS as u64) as usize;
        let head = self.heads[index];
        let link = if self.free == NONE {
            // `NONE` ends a list, so it can name no link: 2^32 - 1 keys in the ring at once
            // (160 GiB of links) is where the ring stops rather than lose a key.
            let link = u32::try_from(self.links.len())
                .ok()
                .filter(|&link| link != NONE)
                .expect("fewer than 2^32 - 1 keys wait in the ring at once");
            self.links.push(Link { key: Some(key), next: head });
            link
        } else {
            let link = self.free;
            let free = &mut self.links[link as usize];
            self.free = free.next;
            *free = Link { key: Some(key), next: head };
            link
        };
        self.heads[index] = link;
        self.occupied[index / 64] |= 1 << (index % 64);
        self.ringed += 1;
        #[cfg(test)]
        {
            self.most_ringed = self.most_ringed.max(self.ringed);
        }
    }

    /// The ring's first occupied bucket: its index. The ring must hold a key.
    fn first_occupied(&self) -> usize {
        let start = (self.next % BUCKETS as u64) as usize;
        let mut word = start / 64;
        let mut bits = self.occupied[word] & (u64::MAX << (start % 64));
        // Wrapping round to the start word finds the bits below `start`: the latest buckets.
        for _ in 0..=WORDS {
            if bits != 0 {
                return word * 64 + bits.trailing_zeros() as usize;
            }
            word = (word + 1) % WORDS;
            bits = self.occupied[word];
        }
        unreachable!("the ring holds {} keys but no bucket is marked", self.ringed)
    }

    /// The earliest time in the ring's bucket `index`, which holds keys.
    fn earliest_in(&self, index: usize) -> u64 {
        let mut earliest = u64::MAX;
        let mut link = self.heads[index];
        debug_assert_ne!(link, NONE, "a bucket marked occupied holds keys");
        while link != NONE {
            let Link { key, next } = &self.links[link as usize];
            debug_assert!(key.is_some(), "a link in a bucket's list holds a key");
            earliest = earliest.min(key.as_ref().map_or(u64::MAX, |key| key.at_ns));
            link = *next;
        }
        earliest
    }

    /// The time of the earliest event.
    #[cfg(test)]
    fn peek_ns(&self) -> Option<u64> {
        if let Some(key) = self.current.last() {
            return Some(key.at_ns);
        }
        if self.ringed > 0 {
            // Peeking moves nothing: a key pushed after it, earlier than this bucket, must
            // still find its place in the ring rather than in front of `current`.
            return Some(self.earliest_in(self.first_occupied()));
        }
        self.far.peek().map(|Reverse(key)| key.at_ns)
    }

    /// Makes `current` hold the earliest keys if they are due by `end_ns`; returns the
    /// earliest time if they are not, `None` if the queue is empty.
    fn refill(&mut self, end_ns: u64) -> Result<(), Option<u64>> {
        if self.ringed == 0 {
            let Some(Reverse(first)) = self.far.peek() else { return Err(None) };
            if first.at_ns > end_ns {
                return Err(Some(first.at_ns));
            }
            // Nothing is nearer: the ring may jump to the first far key.
            self.next = first.bucket();
            self.reach_far();
        }
        let index = self.first_occupied();
        let start = (self.next % BUCKETS as u64) as usize;
        let bucket = self.next + ((index + BUCKETS - start) % BUCKETS) as u64;
        // A bucket that ends by `end_ns` is due whatever its earliest key (a run's end is
        // usually far ahead): only a bucket across `end_ns` needs its keys read first.
        if bucket.saturating_mul(BUCKET_NS).saturating_add(BUCKET_NS - 1) > end_ns {
            let earliest = self.earliest_in(index);
            if earliest > end_ns {
                // Not due: nothing moves, so a key pushed before it still finds its bucket.
                return Err(Some(earliest));
            }
        }
        // The list holds the bucket's keys last pushed first: keys arrive mostly in ascending
        // order (timers set in turn), so they come out mostly as one descending run, which the
        // stable sort finds in one pass (insertion sort, as the unstable sort does on short
        // inputs, is at its worst on the opposite order). Keys are unique, so stable and
        // unstable agree.
        let mut link = std::mem::replace(&mut self.heads[index], NONE);
        while link != NONE {
            let free = &mut self.links[link as usize];
            let next = std::mem::replace(&mut free.next, self.free);
            if let Some(key) = free.key.take() {
                self.current.push(key);
            }
            self.free = link;
            link = next;
        }
        debug_assert!(!self.current.is_empty(), "a bucket marked occupied holds keys");
        self.occupied[index / 64] &= !(1 << (index % 64));
        self.ringed -= self.current.len();
        self.current.sort_by(|left, right| right.cmp(left));
        self.next = bucket + 1;
        self.reach_far();
        Ok(())
    }

    /// Moves into the ring the far keys it now reaches.
    fn reach_far(&mut self) {
        while let Some(Reverse(key)) = self.far.peek() {
            if key.bucket() - self.next >= BUCKETS as u64 {
                break;
            }
            let Some(Reverse(key)) = self.far.pop() else { break };
            self.ring_push(key);
        }
    }

    /// The earliest event and its time.
    #[cfg(test)]
    fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_due(u64::MAX).ok()
    }

    /// The earliest event and its time if it is due at or before `end_ns`; otherwise the
    /// earliest time, or `None` if the queue is empty.
    pub(crate) fn pop_due(&mut self, end_ns: u64) -> Result<(u64, E), Option<u64>> {
        match self.current.last() {
            Some(key) if key.at_ns > end_ns => return Err(Some(key.at_ns)),
            Some(_) => {}
            None => self.refill(end_ns)?,
        }
        // `refill` succeeds only with keys in `current`.
        let Some(key) = self.current.pop() else { return Err(None) };
        Ok((key.at_ns, key.event))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.ringed + self.far.len()
    }

    /// Panics unless the slab is whole: every link is in exactly one list (a bucket's or the
    /// free one), a bucket's links hold keys of that bucket and free ones none, the bitmap
    /// marks the buckets with keys, `ringed` counts them, and a freed link is reused before
    /// the slab grows (so it holds no more links than keys ever waited at once).
    #[cfg(test)]
    fn check_slab(&self) {
        let mut seen = vec![false; self.links.len()];
        let mut visit = |link: u32| {
            let index = link as usize;
            assert!(!std::mem::replace(&mut seen[index], true), "link {index} is in two lists");
        };
        let mut keys = 0;
        for (index, &head) in self.heads.iter().enumerate() {
            let marked = self.occupied[index / 64] & (1 << (index % 64)) != 0;
            assert_eq!(marked, head != NONE, "bucket {index}'s bit and its list disagree");
            let mut link = head;
            while link != NONE {
                visit(link);
                let Link { key, next } = &self.links[link as usize];
                let key = key.as_ref().expect("a linked key");
                assert_eq!((key.bucket() % BUCKETS as u64) as usize, index, "a key in another bucket");
                assert!(key.bucket() >= self.next && key.bucket() - self.next < BUCKETS as u64);
                keys += 1;
                link = *next;
            }
        }
        let mut link = self.free;
        while link != NONE {
            visit(link);
            assert!(self.links[link as usize].key.is_none(), "a free link holds a key");
            link = self.links[link as usize].next;
        }
        assert_eq!(keys, self.ringed);
        assert!(seen.iter().all(|&seen| seen), "a link is in no list");
        assert!(self.links.len() <= self.most_ringed, "the slab grew while a link was free");
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Operation {
        Push(u64),
        /// A push this long after the last time popped (as the simulator pushes): lands on
        /// the edges of the ring as it stands, wherever it has turned to.
        PushAfter(u64),
        Pop,
        PopDue(u64),
        /// A pop of what is due by this long after the last time popped: ends on and around
        /// the edges of the bucket being reached, wherever the ring has turned to.
        PopDueAfter(u64),
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            2 => at_ns().prop_map(Operation::Push),
            2 => after_ns().prop_map(Operation::PushAfter),
            1 => Just(Operation::Pop),
            1 => at_ns().prop_map(Operation::PopDue),
            1 => after_ns().prop_map(Operation::PopDueAfter),
        ]
    }

    /// Offsets around one bucket, the horizon and the ring's last bucket.
    fn after_ns() -> impl Strategy<Value = u64> {
        (
            prop_oneof![
                Just(0),
                Just(BUCKET_NS),
                Just(HORIZON_NS - BUCKET_NS),
                Just(HORIZON_NS),
                Just(2 * HORIZON_NS)
            ],
            0u64..3,
        )
            .prop_map(|(base, offset)| (base + offset).saturating_sub(1))
    }

    /// Times that land everywhere a key can wait.
    fn at_ns() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..50,
            0..4 * HORIZON_NS,
            (0u64..3 * BUCKETS as u64, 0u64..3)
                .prop_map(|(bucket, offset)| (bucket * BUCKET_NS + offset).saturating_sub(1)),
            (0u64..4, 0u64..3)
                .prop_map(|(horizons, offset)| (horizons * HORIZON_NS + offset).saturating_sub(1)),
            u64::MAX - 3 * HORIZON_NS..=u64::MAX,
            Just(u64::MAX),
            Just(u64::MAX / BUCKET_NS * BUCKET_NS),
        ]
    }

    proptest! {
        /// Any interleaving of pushes, pops and pops of what is due by a time gives the order
        /// a heap of whole events gives: keys in the bucket being drained, in the ring, at
        /// its edges and beyond it, and times earlier than what was popped already.
        #[test]
        fn pops_in_the_order_of_a_heap_of_whole_events(
            operations in proptest::collection::vec(operation(), 0..400),
        ) {
            let mut queue = EventQueue::new();
            let mut reference = BinaryHeap::new();
            let mut popped_ns = 0u64;
            for (sequence, operation) in (0u64..).zip(operations) {
                match operation {
                    Operation::Push(at_ns) | Operation::PushAfter(at_ns) => {
                        let at_ns = if matches!(operation, Operation::PushAfter(_)) {
                            popped_ns.saturating_add(at_ns)
                        } else {
                            at_ns
                        };
                        let event = format!("event {sequence}");
                        queue.push(at_ns, sequence, event.clone());
                        reference.push(Reverse((at_ns, sequence, event)));
                    }
                    Operation::Pop => {
                        let expected = reference.pop().map(|Reverse((at_ns, _, event))| (at_ns, event));
                        let popped = queue.pop();
                        popped_ns = popped.as_ref().map_or(popped_ns, |(at_ns, _)| *at_ns);
                        prop_assert_eq!(popped, expected);
                    }
                    Operation::PopDue(end_ns) | Operation::PopDueAfter(end_ns) => {
                        let end_ns = if matches!(operation, Operation::PopDueAfter(_)) {
                            popped_ns.saturating_add(end_ns)
                        } else {
                            end_ns
                        };
                        let expected = match reference.peek() {
                            Some(Reverse((at_ns, _, _))) if *at_ns <= end_ns => {
                                reference.pop().map(|Reverse((at_ns, _, event))| (at_ns, event)).ok_or(None)
                            }
                            earliest => Err(earliest.map(|Reverse((at_ns, _, _))| *at_ns)),
                        };
                        let popped = queue.pop_due(end_ns);
                        popped_ns = popped.as_ref().map_or(popped_ns, |(at_ns, _)| *at_ns);
                        prop_assert_eq!(popped, expected);
                    }
                }
                queue.check_slab();
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
    fn the_ring_wraps_round_to_buckets_below_where_it_starts() {
        // After a pop from bucket 10 the ring starts at bucket 11 (index 11); bucket 2,058 is
        // its last, at index 10: in the start word, below the start.
        let mut queue = EventQueue::new();
        queue.push(10 * BUCKET_NS, 0, "first");
        assert_eq!(queue.pop(), Some((10 * BUCKET_NS, "first")));
        let last_ns = (11 + BUCKETS as u64 - 1) * BUCKET_NS;
        queue.push(last_ns, 1, "last");
        queue.push(last_ns + BUCKET_NS, 2, "beyond");
        assert_eq!(queue.far.len(), 1, "one bucket past the ring waits in the heap");
        assert_eq!(queue.pop(), Some((last_ns, "last")));
        assert_eq!(queue.pop(), Some((last_ns + BUCKET_NS, "beyond")));
        assert_eq!(queue.pop(), None);
    }
}
