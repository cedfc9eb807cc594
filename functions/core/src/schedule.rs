//! Quartz cron schedules as Databricks stores them (`quartz_cron_expression` + `timezone_id`):
//! when does a job fire next? The sweep pauses schedules in that order.

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};

use crate::databricks::jobs::CronSchedule;

/// The next time the schedule fires after `now`; `None` if it cannot be parsed or never fires.
pub fn next_fire(schedule: &CronSchedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = schedule.timezone_id.parse().unwrap_or(chrono_tz::UTC);
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
    }
}
