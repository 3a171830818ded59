//! How much a device asks for per round trip: a response budget chosen from what the link
//! delivered before (bytes per second × a target time per round trip), so a round trip takes
//! about that long on a fast link and on a slow one (ADR 0039). Pure arithmetic: the
//! transport feeds it each exchange's bytes and seconds; nothing here reads a clock.

use std::time::Duration;

/// The smallest budget a server grants (it raises a smaller one to this).
pub const MIN_BUDGET: u32 = 16 * 1024;
/// The largest budget a server grants (it cuts a larger one to this).
pub const MAX_BUDGET: u32 = 32 * 1024 * 1024;
/// Asked before anything is measured: 256 KiB, about 4 s at half a megabit per second
/// once compressed (a phone's first sync may be on a poor link).
pub const FIRST_BUDGET: u32 = 256 * 1024;
/// How long a round trip should take: long enough that the link's latency is a small part
/// of it, short enough that a round — the unit that is applied whole or not at all — fits in
/// a background window and little is repeated when a round is abandoned.
pub const DEFAULT_ROUND_TRIP_TARGET: Duration = Duration::from_secs(4);
/// Exchanges that moved less than this say more about the link's latency than its rate:
/// they are not counted.
pub const MIN_SAMPLE_BYTES: u64 = 32 * 1024;

/// A smoothed estimate of how fast responses arrive: bytes of response (decompressed, the
/// budget's own unit) per second of exchange (request sent to response read; the server's
/// work is part of it, the device's apply is not).
///
/// A slower sample moves the estimate halfway to it; a faster one a quarter of the way: a
/// link that got worse is believed sooner than one that got better.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkEstimate {
    rate: Option<f64>,
    samples: u32,
}

impl LinkEstimate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one exchange: `bytes` of response received in `elapsed`.
    pub fn observe(&mut self, bytes: u64, elapsed: Duration) {
        if bytes < MIN_SAMPLE_BYTES {
            return;
        }
        // A loopback answer can take less than the clock's resolution.
        let seconds = elapsed.as_secs_f64().max(0.001);
        let sample = bytes as f64 / seconds;
        self.rate = Some(match self.rate {
            None => sample,
            Some(old) if sample < old => old + (sample - old) / 2.0,
            Some(old) => old + (sample - old) / 4.0,
        });
        self.samples = self.samples.saturating_add(1);
    }

    /// Bytes per second, once an exchange large enough has been counted.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Exchanges counted so far.
    pub fn samples(&self) -> u32 {
        self.samples
    }

    /// The budget to ask for so a round trip takes about `target`: [`FIRST_BUDGET`] until
    /// something is measured, always within what a server grants.
    pub fn budget(&self, target: Duration) -> u32 {
        match self.rate {
            None => FIRST_BUDGET,
            Some(rate) => {
                let bytes = rate * target.as_secs_f64();
                // `as` saturates (and maps NaN to 0): the clamp does the rest.
                (bytes as u64).clamp(u64::from(MIN_BUDGET), u64::from(MAX_BUDGET)) as u32
            }
        }
    }
}

/// Round trips a pull of `bytes` (in the budget's unit) takes at `budget` per round trip
/// when nothing else cuts a response short: what the budget forces, and no more.
pub fn round_trips_forced(bytes: u64, budget: u32) -> u64 {
    bytes.div_ceil(u64::from(budget.max(1))).max(1)
}

/// The same for a sync whose round trips asked for `budgets` in turn (the budget follows the
/// link as it is measured), the last one repeated if more are needed.
pub fn round_trips_forced_by(bytes: u64, budgets: &[u32]) -> u64 {
    let mut left = bytes;
    for (i, b) in budgets.iter().enumerate() {
        let b = u64::from((*b).max(1));
        if left <= b {
            return i as u64 + 1;
        }
        left -= b;
    }
    match budgets.last() {
        Some(last) => budgets.len() as u64 + round_trips_forced(left, *last),
        None => round_trips_forced(bytes, FIRST_BUDGET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn before_any_exchange_the_first_budget_is_asked() {
        let link = LinkEstimate::new();
        assert_eq!(link.rate(), None);
        assert_eq!(link.budget(DEFAULT_ROUND_TRIP_TARGET), FIRST_BUDGET);
    }

    #[test]
    fn the_budget_is_rate_times_target() {
        let mut link = LinkEstimate::new();
        link.observe(1_000_000, 2 * S);
        assert_eq!(link.rate(), Some(500_000.0));
        assert_eq!(link.budget(4 * S), 2_000_000);
        assert_eq!(link.budget(S), 500_000);
    }

    #[test]
    fn small_exchanges_measure_latency_and_are_not_counted() {
        let mut link = LinkEstimate::new();
        link.observe(MIN_SAMPLE_BYTES - 1, Duration::from_millis(300));
        assert_eq!((link.rate(), link.samples()), (None, 0));
        link.observe(MIN_SAMPLE_BYTES, S);
        assert_eq!(link.samples(), 1);
    }

    #[test]
    fn a_slower_link_is_believed_sooner_than_a_faster_one() {
        let mut link = LinkEstimate::new();
        link.observe(1_000_000, S);
        link.observe(200_000, S); // halfway down
        assert_eq!(link.rate(), Some(600_000.0));
        link.observe(1_000_000, S); // a quarter of the way up
        assert_eq!(link.rate(), Some(700_000.0));
        assert_eq!(link.samples(), 3);
    }

    #[test]
    fn the_budget_stays_within_what_a_server_grants() {
        let mut fast = LinkEstimate::new();
        fast.observe(u64::MAX, Duration::ZERO);
        assert_eq!(fast.budget(Duration::from_secs(3600)), MAX_BUDGET);
        let mut slow = LinkEstimate::new();
        slow.observe(MIN_SAMPLE_BYTES, Duration::from_secs(3600));
        assert_eq!(slow.budget(DEFAULT_ROUND_TRIP_TARGET), MIN_BUDGET);
        assert_eq!(fast.budget(Duration::ZERO), MIN_BUDGET);
    }

    #[test]
    fn round_trips_forced_is_the_ceiling_with_at_least_one() {
        assert_eq!(round_trips_forced(0, 1024), 1);
        assert_eq!(round_trips_forced(1024, 1024), 1);
        assert_eq!(round_trips_forced(1025, 1024), 2);
        assert_eq!(round_trips_forced(10 << 20, 4 << 20), 3);
        assert_eq!(round_trips_forced(5, 0), 5);
    }

    #[test]
    fn round_trips_forced_by_follow_the_budgets_asked() {
        // A first sync's 256 KiB, then the measured link's 32 MiB.
        let (first, then) = (256 * 1024, 32 << 20);
        assert_eq!(round_trips_forced_by(100 * 1024, &[first]), 1);
        assert_eq!(round_trips_forced_by(400 * 1024, &[first, then]), 2);
        assert_eq!(round_trips_forced_by(0, &[first]), 1);
        // More than the budgets asked: the last one repeats.
        assert_eq!(round_trips_forced_by(3 * 1024, &[1024]), 3);
        assert_eq!(round_trips_forced_by(4 * 1024, &[1024, 2048]), 3);
        assert_eq!(round_trips_forced_by(1024, &[]), 1);
    }
}
