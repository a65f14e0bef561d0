//! Who gets a connection slot. A source address may open [`ADDRESS_CONNECTS_BURST`] connections
//! at once and one more per [`ADDRESS_CONNECT_REFILL_NS`]; connections without a session share
//! a quota of [`UNAUTHENTICATED_CONNECTIONS_MAX`], and a new one evicts the oldest when it is
//! full. So a flood of silent connections holds at most the quota, never the slots of
//! established peers, and a returning peer (another address, or the same one at a sane rate)
//! gets in by evicting the oldest silent one. [`Throttle`] keeps the refusals' log lines to
//! one per second.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Connections without a session, at most; a new one evicts the oldest.
pub(crate) const UNAUTHENTICATED_CONNECTIONS_MAX: usize = 16;
/// Connections one source address may open at once.
pub(crate) const ADDRESS_CONNECTS_BURST: u32 = 8;
/// Time that earns an address one more connection, up to the burst.
pub(crate) const ADDRESS_CONNECT_REFILL_NS: u64 = 500_000_000;
/// Source addresses tracked at once; past it, the one idle longest is forgotten.
pub(crate) const ADDRESSES_TRACKED_MAX: usize = 1024;
/// Least time between two log lines of one [`Throttle`].
pub(crate) const THROTTLED_LOG_INTERVAL_NS: u64 = 1_000_000_000;

/// A token bucket per source address: `burst` at once, then one more per `refill_ns`, for
/// at most [`ADDRESSES_TRACKED_MAX`] addresses (past it, the one that earned a token longest
/// ago is forgotten: it has had the most time to refill, so forgetting it costs the least).
#[derive(Debug)]
pub(crate) struct AddressBudget {
    burst: u32,
    refill_ns: u64,
    /// Address → (tokens it holds now, when it last earned one).
    buckets: BTreeMap<IpAddr, (u32, u64)>,
}

impl AddressBudget {
    /// A budget of `burst` tokens per address, earning one per `refill_ns`.
    pub(crate) fn new(burst: u32, refill_ns: u64) -> Self {
        Self { burst, refill_ns: refill_ns.max(1), buckets: BTreeMap::new() }
    }

    /// Spends one token of `address` at `now_ns`; false when it has none left.
    pub(crate) fn spend(&mut self, address: IpAddr, now_ns: u64) -> bool {
        if !self.buckets.contains_key(&address)
            && self.buckets.len() >= ADDRESSES_TRACKED_MAX
            && let Some(oldest) =
                self.buckets.iter().min_by_key(|(_, (_, at_ns))| *at_ns).map(|(key, _)| *key)
        {
            self.buckets.remove(&oldest);
        }
        let (tokens, refilled_ns) = self.buckets.entry(address).or_insert((self.burst, now_ns));
        let earned = now_ns.saturating_sub(*refilled_ns) / self.refill_ns;
        if earned > 0 {
            *tokens = tokens.saturating_add(u32::try_from(earned).unwrap_or(u32::MAX)).min(self.burst);
            *refilled_ns = now_ns;
        }
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }
}

/// Connections each source address may still open: [`ADDRESS_CONNECTS_BURST`] at once, one
/// more per [`ADDRESS_CONNECT_REFILL_NS`].
#[derive(Debug)]
pub(crate) struct Admission(AddressBudget);

impl Default for Admission {
    fn default() -> Self {
        Self(AddressBudget::new(ADDRESS_CONNECTS_BURST, ADDRESS_CONNECT_REFILL_NS))
    }
}

impl Admission {
    /// Spends one connection of `address` at `now_ns`; false when it has none left.
    pub(crate) fn admit(&mut self, address: IpAddr, now_ns: u64) -> bool {
        self.0.spend(address, now_ns)
    }
}

/// A log line that repeats under attack: printed at most once per
/// [`THROTTLED_LOG_INTERVAL_NS`], saying how many were left out since.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    last_ns: Option<u64>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(suppressed)` when a line may be printed at `now_ns` (with how many were left out
    /// since the last one), `None` when this one is left out.
    pub(crate) fn allow(&mut self, now_ns: u64) -> Option<u64> {
        if self.last_ns.is_some_and(|last_ns| now_ns.saturating_sub(last_ns) < THROTTLED_LOG_INTERVAL_NS) {
            self.suppressed += 1;
            return None;
        }
        self.last_ns = Some(now_ns);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_a_burst_then_a_steady_rate() {
        let mut admission = Admission::default();
        let flooder: IpAddr = [10, 0, 0, 66].into();
        let other: IpAddr = [10, 0, 0, 7].into();
        let admitted = (0..20).filter(|_| admission.admit(flooder, 0)).count();
        assert_eq!(admitted as u32, ADDRESS_CONNECTS_BURST);
        assert!(admission.admit(other, 0), "another address is not affected");
        assert!(!admission.admit(flooder, ADDRESS_CONNECT_REFILL_NS - 1));
        assert!(admission.admit(flooder, ADDRESS_CONNECT_REFILL_NS));
        assert!(!admission.admit(flooder, ADDRESS_CONNECT_REFILL_NS));
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let mut admission = Admission::default();
        for index in 0..(ADDRESSES_TRACKED_MAX as u32 + 10) {
            assert!(admission.admit(IpAddr::from(index.to_be_bytes()), u64::from(index)));
        }
        assert_eq!(admission.0.buckets.len(), ADDRESSES_TRACKED_MAX);
    }

    #[test]
    fn a_throttle_prints_once_per_interval_and_counts_the_rest() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.allow(0), Some(0));
        assert_eq!(throttle.allow(1), None);
        assert_eq!(throttle.allow(2), None);
        assert_eq!(throttle.allow(THROTTLED_LOG_INTERVAL_NS), Some(2));
    }
}
