//! The wall clock of the old protocol's `time` fields: HH:MM in the configured time zone.

use crate::protocol::Timestamp;

/// HH:MM in a time zone.
#[derive(Clone, Debug)]
pub struct Clock(jiff::tz::TimeZone);

impl Default for Clock {
    fn default() -> Self {
        Clock(jiff::tz::TimeZone::UTC)
    }
}

impl Clock {
    /// The clock of an IANA time zone name (`"UTC"`, `"Europe/Berlin"`).
    pub fn new(zone: &str) -> Result<Clock, String> {
        jiff::tz::TimeZone::get(zone)
            .map(Clock)
            .map_err(|e| format!("{zone:?} is not a known time zone: {e}"))
    }

    /// `ts` (milliseconds since the epoch) as HH:MM.
    pub fn hh_mm(&self, ts: Timestamp) -> String {
        match jiff::Timestamp::from_millisecond(ts) {
            Ok(t) => {
                let at = self.0.to_datetime(t);
                format!("{:02}:{:02}", at.hour(), at.minute())
            }
            Err(_) => "00:00".to_string(),
        }
    }

    pub fn now(&self) -> String {
        self.hh_mm(jiff::Timestamp::now().as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_configured_zone() {
        // 2026-01-15 12:34 UTC.
        let ts = 1_768_480_440_000;
        assert_eq!(Clock::default().hh_mm(ts), "12:34");
        assert_eq!(Clock::new("Asia/Kolkata").unwrap().hh_mm(ts), "18:04");
        assert_eq!(Clock::new("America/New_York").unwrap().hh_mm(ts), "07:34");
        assert!(Clock::new("Mars/Olympus").is_err());
    }
}
