//! The one clock and the one timestamp format. Everything that needs "now" takes it from a
//! [`Clock`] (the application holds one and hands it down), so tests can move time forward;
//! every stored and displayed time is [`timestamp`]'s form.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// UTC, always three fractional digits, so stored values order correctly as strings (SCIM
/// filters on `meta.lastModified`, audit queries).
const STAMP: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// `t` in the stored form.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(STAMP)
        .unwrap_or_default()
}

/// An RFC 3339 date-time in the stored form; `None` when `s` is not one.
pub fn parse_timestamp(s: &str) -> Option<String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(timestamp)
}

/// The system clock, which a test may move forward. Clones share one offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time (tests only ever move it forward).
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    /// Now, in the stored form.
    pub fn stamp(&self) -> String {
        timestamp(self.now())
    }

    /// Move this clock, and every clone of it, forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_have_three_fractional_digits_and_sort_as_strings() {
        let a = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let b = a + time::Duration::milliseconds(5);
        assert_eq!(timestamp(a), "2023-11-14T22:13:20.000Z");
        assert_eq!(timestamp(b), "2023-11-14T22:13:20.005Z");
        assert!(timestamp(a) < timestamp(b));
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20+01:00").as_deref(),
            Some("2023-11-14T22:13:20.000Z")
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn an_advanced_clock_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.unix();
        clock.advance(Duration::from_secs(3600));
        assert!(other.unix() >= before + 3600);
    }
}
