//! Quartz cron schedules as Databricks stores them (`quartz_cron_expression` + `timezone_id`):
//! when does a job fire next? The sweep pauses schedules in that order.

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use croner::parser::{CronParser, Seconds};

use crate::databricks::jobs::CronSchedule;

/// The next time the schedule fires after `now`; `None` if it cannot be parsed or never fires.
/// An unknown time zone is read as UTC, as Databricks would refuse it on create.
pub fn next_fire(schedule: &CronSchedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz = Zone::get(&schedule.timezone_id).unwrap_or_else(Zone::utc);
    let cron = CronParser::builder()
        .seconds(Seconds::Required)
        .alternative_weekdays(true)
        .build()
        .parse(&schedule.quartz_cron_expression)
        .ok()?;
    cron.find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An IANA time zone from the tz database bundled in the binary (jiff's: 200 KB of TZif data
/// in one byte array), usable wherever `chrono` wants a [`TimeZone`]. Why not `chrono-tz`: it
/// compiles the same database into pointer-rich statics, ~1.9 MB per binary with their
/// relocations — a fifth of a fence Lambda.
#[derive(Debug, Clone)]
pub struct Zone(jiff::tz::TimeZone);

/// A [`Zone`]'s offset at one instant (chrono's `from_offset` needs the zone back).
#[derive(Debug, Clone)]
pub struct ZoneOffset {
    zone: jiff::tz::TimeZone,
    fixed: FixedOffset,
}

impl Zone {
    /// The zone named `name` (case-insensitive IANA name); `None` if unknown.
    pub fn get(name: &str) -> Option<Self> {
        jiff::tz::TimeZone::get(name).ok().map(Self)
    }

    /// UTC.
    pub fn utc() -> Self {
        Self(jiff::tz::TimeZone::UTC)
    }

    fn offset(&self, seconds: i32) -> ZoneOffset {
        ZoneOffset {
            zone: self.0.clone(),
            // jiff offsets are within ±25:59:59, chrono's within ±24h: clamp the impossible.
            fixed: FixedOffset::east_opt(seconds.clamp(-86_399, 86_399))
                .unwrap_or_else(|| Utc.fix()),
        }
    }
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl std::fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fixed.fmt(f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Self {
        Self(offset.zone.clone())
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        use chrono::Datelike;
        use jiff::tz::AmbiguousOffset;
        let civil = (|| {
            jiff::civil::DateTime::new(
                i16::try_from(local.year()).ok()?,
                i8::try_from(local.month()).ok()?,
                i8::try_from(local.day()).ok()?,
                i8::try_from(local.hour()).ok()?,
                i8::try_from(local.minute()).ok()?,
                i8::try_from(local.second()).ok()?,
                i32::try_from(local.nanosecond().min(999_999_999)).ok()?,
            )
            .ok()
        })();
        let Some(civil) = civil else {
            return LocalResult::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                LocalResult::Single(self.offset(offset.seconds()))
            }
            // A local time skipped by a DST jump does not exist.
            AmbiguousOffset::Gap { .. } => LocalResult::None,
            AmbiguousOffset::Fold { before, after } => {
                LocalResult::Ambiguous(self.offset(before.seconds()), self.offset(after.seconds()))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(chrono::NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let seconds = jiff::Timestamp::from_second(utc.and_utc().timestamp())
            .map(|t| self.0.to_offset(t).seconds())
            .unwrap_or(0);
        self.offset(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sched(expr: &str, tz: &str) -> CronSchedule {
        CronSchedule {
            quartz_cron_expression: expr.into(),
            timezone_id: tz.into(),
            pause_status: None,
        }
    }

    #[test]
    fn quartz_with_timezone() {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 5, 0, 0).unwrap();
        // 02:00 in New York is 07:00 UTC in November.
        let next = next_fire(&sched("0 0 2 * * ?", "America/New_York"), now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 26, 7, 0, 0).unwrap());
        // Every minute.
        let next = next_fire(&sched("0 * * * * ?", "UTC"), now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 26, 5, 1, 0).unwrap());
        // Quartz weekday 2 = Monday; 2026-11-30 is a Monday.
        let next = next_fire(&sched("0 30 6 ? * 2", "UTC"), now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 30, 6, 30, 0).unwrap());
        assert!(next_fire(&sched("not a cron", "UTC"), now).is_none());
        // Tokyo has no DST: 09:00 local is 00:00 UTC.
        let next = next_fire(&sched("0 0 9 * * ?", "Asia/Tokyo"), now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap());
        // An unknown zone reads as UTC.
        let next = next_fire(&sched("0 0 2 * * ?", "Mars/Olympus"), now).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap());
    }

    /// DST edges in New York, 2026: spring forward 8 March 02:00 → 03:00, fall back
    /// 1 November 02:00 → 01:00.
    #[test]
    fn dst_gaps_and_folds() {
        let ny = Zone::get("America/New_York").expect("bundled");
        let local = |d, h, m| {
            NaiveDate::from_ymd_opt(2026, 3, d)
                .and_then(|d: NaiveDate| d.and_hms_opt(h, m, 0))
                .expect("valid")
        };
        assert!(matches!(
            ny.offset_from_local_datetime(&local(8, 2, 30)),
            LocalResult::None
        ));
        match ny.offset_from_local_datetime(&local(8, 3, 30)) {
            LocalResult::Single(o) => assert_eq!(o.fix().local_minus_utc(), -4 * 3600),
            other => panic!("{other:?}"),
        }
        let fold = NaiveDate::from_ymd_opt(2026, 11, 1)
            .and_then(|d| d.and_hms_opt(1, 30, 0))
            .expect("valid");
        match ny.offset_from_local_datetime(&fold) {
            LocalResult::Ambiguous(a, b) => {
                assert_eq!(a.fix().local_minus_utc(), -4 * 3600);
                assert_eq!(b.fix().local_minus_utc(), -5 * 3600);
            }
            other => panic!("{other:?}"),
        }
        // A daily 02:30 job on the spring-forward day fires the next day (no 02:30 exists).
        let before = Utc.with_ymd_and_hms(2026, 3, 8, 5, 0, 0).unwrap();
        let next = next_fire(&sched("0 30 2 * * ?", "America/New_York"), before).unwrap();
        assert!(next > before, "{next}");
        assert_eq!(
            Zone::get("america/new_york").map(|z| z.0.iana_name().map(str::to_string)),
            Some(Some("America/New_York".into()))
        );
    }
}
