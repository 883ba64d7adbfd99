//! `core.version`, `core.uptime`, `system.listMethods`.

use common::types::Uptime;

use super::api::State;
use crate::usrloc::unix_now;

/// `core.version`: name, version and platform, like Kamailio's
/// `kamailio 5.8.2 (x86_64/linux)`.
pub fn version() -> String {
    format!(
        "kamrs {} ({}/{})",
        common::VERSION,
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// `core.uptime`.
pub fn uptime(state: &State) -> Uptime {
    let now = unix_now();
    Uptime {
        now: ctime(now),
        up_since: ctime(state.started),
        uptime: now.saturating_sub(state.started),
    }
}

/// `ctime(3)`'s format, `Thu Jun  5 06:11:38 2024`, in UTC (Kamailio prints
/// local time; a daemon's log and API are easier to correlate across
/// machines in UTC).
pub fn ctime(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // `days` < 2^48, so the conversions to and from i64 are exact.
    let (year, month, day) = crate::time::civil_from_days(days as i64);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[((days + 4) % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!(
        "{weekday} {month} {day:>2} {:02}:{:02}:{:02} {year}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
