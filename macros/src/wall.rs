//! `wall = "..."`: where a test's wall clock starts, read at compile time. Either a signed
//! duration from the true clock, in `time`'s syntax (`"+30d"`, `"-1h"`), or an RFC 3339
//! instant (`"2038-01-19T03:14:00Z"`), converted here to seconds since the Unix epoch.

use crate::duration;

/// What `wall = "..."` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wall {
    /// Seconds added to the true wall clock.
    Offset(i64),
    /// This instant when the test starts: seconds since the epoch, and nanoseconds.
    At { unix_secs: i64, nanos: u32 },
}

/// What a malformed value is told, at the literal.
const ACCEPTED: &str = "a signed duration from the true clock (\"+30d\", \"-1h30m\", \
    as for `time`) or an RFC 3339 instant in UTC (\"2038-01-19T03:14:00Z\")";

/// The earliest and latest instants: the test's clock is kept as an offset of 64-bit
/// nanoseconds from the true one, which reaches about 292 years either way.
const FIRST_YEAR: i64 = 1900;
const LAST_YEAR: i64 = 2200;

/// Reads a `wall` value.
///
/// # Errors
///
/// A sentence saying what is wrong with `text` and what is accepted.
pub(crate) fn parse(text: &str) -> Result<Wall, String> {
    let looks_like_instant = text.len() >= 5
        && text.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && text.as_bytes()[4] == b'-';
    if looks_like_instant {
        return parse_instant(text).map(|(unix_secs, nanos)| Wall::At { unix_secs, nanos });
    }
    let secs = duration::parse_seconds(text).map_err(|why| {
        // The duration grammar's own message names only durations.
        format!("{why}; or an RFC 3339 instant in UTC (\"2038-01-19T03:14:00Z\")")
    })?;
    if secs.abs() > duration::MAX_OFFSET_SECS {
        return Err(format!(
            "offset `{text}` is {secs} seconds; a wall clock offset is at most \
             ±{} seconds (about 146 years)",
            duration::MAX_OFFSET_SECS
        ));
    }
    Ok(Wall::Offset(secs))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into seconds since the epoch and nanoseconds.
fn parse_instant(text: &str) -> Result<(i64, u32), String> {
    let bad =
        |what: &str| format!("`{text}` is not an RFC 3339 instant: {what}; expected {ACCEPTED}");
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>, what: &str| -> Result<i64, String> {
        let part = b
            .get(range.clone())
            .ok_or_else(|| bad(&format!("no {what}")))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad(&format!("the {what} must be digits")));
        }
        Ok(std::str::from_utf8(part)
            .expect("ascii")
            .parse()
            .expect("digits"))
    };
    let separator = |at: usize, want: &[u8], what: &str| -> Result<(), String> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(bad(&format!("expected {what} at byte {}", at + 1))),
        }
    };
    let year = digits(0..4, "year")?;
    separator(4, b"-", "`-`")?;
    let month = digits(5..7, "month")?;
    separator(7, b"-", "`-`")?;
    let day = digits(8..10, "day")?;
    separator(10, b"Tt", "`T` between the date and the time")?;
    let hour = digits(11..13, "hour")?;
    separator(13, b":", "`:`")?;
    let minute = digits(14..16, "minute")?;
    separator(16, b":", "`:`")?;
    let second = digits(17..19, "second")?;
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if end == start || end - start > 9 {
            return Err(bad("a fraction of a second has 1 to 9 digits"));
        }
        let fraction = &text[start..end];
        nanos = format!("{fraction:0<9}").parse().expect("9 digits");
        at = end;
    }
    let zone = &text[at.min(text.len())..];
    let zone_secs = match zone {
        "Z" | "z" => 0,
        "" => return Err(bad("no time zone: end it with `Z` for UTC")),
        _ => {
            let z = zone.as_bytes();
            let sign = match z[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return Err(bad("the time zone is `Z` or `+HH:MM`/`-HH:MM`")),
            };
            let well_formed = z.len() == 6
                && z[1..3].iter().all(u8::is_ascii_digit)
                && z[3] == b':'
                && z[4..6].iter().all(u8::is_ascii_digit);
            if !well_formed {
                return Err(bad("the time zone is `Z` or `+HH:MM`/`-HH:MM`"));
            }
            let (h, m): (i64, i64) = (zone[1..3].parse().unwrap(), zone[4..6].parse().unwrap());
            if h > 23 || m > 59 {
                return Err(bad("the time zone's offset is out of range"));
            }
            sign * (h * 3600 + m * 60)
        }
    };
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        return Err(bad(&format!(
            "the year must lie from {FIRST_YEAR} to {LAST_YEAR}, within reach of the \
             true clock"
        )));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("the month must be 01 to 12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(bad(&format!("{year}-{month:02} has no day {day:02}")));
    }
    if hour > 23 || minute > 59 {
        return Err(bad("the hour must be 00 to 23 and the minute 00 to 59"));
    }
    if second > 59 {
        return Err(bad(
            "the second must be 00 to 59 (the Unix clock has no leap second 60)",
        ));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - zone_secs;
    Ok((secs, nanos))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (proleptic Gregorian), after Howard Hinnant's
/// `days_from_civil`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_use_the_duration_syntax_with_days_and_signs() {
        assert_eq!(parse("+1d"), Ok(Wall::Offset(86_400)));
        assert_eq!(parse("-30d"), Ok(Wall::Offset(-2_592_000)));
        assert_eq!(parse("3600"), Ok(Wall::Offset(3600)));
        assert_eq!(parse("-1h30m"), Ok(Wall::Offset(-5400)));
        assert_eq!(parse("0s"), Ok(Wall::Offset(0)));
    }

    #[test]
    fn instants_are_seconds_since_the_epoch() {
        assert_eq!(
            parse("1970-01-01T00:00:00Z"),
            Ok(Wall::At {
                unix_secs: 0,
                nanos: 0
            })
        );
        assert_eq!(
            parse("2038-01-19T03:14:07Z"),
            Ok(Wall::At {
                unix_secs: i32::MAX as i64,
                nanos: 0
            })
        );
        assert_eq!(
            parse("2038-01-19T03:14:00Z"),
            Ok(Wall::At {
                unix_secs: 2_147_483_640,
                nanos: 0
            })
        );
        assert_eq!(
            parse("2024-02-29T12:00:00.25z"),
            Ok(Wall::At {
                unix_secs: 1_709_208_000,
                nanos: 250_000_000
            })
        );
        assert_eq!(
            parse("2000-01-01T01:00:00+01:00"),
            Ok(Wall::At {
                unix_secs: 946_684_800,
                nanos: 0
            })
        );
        assert_eq!(
            parse("1969-12-31T23:59:59Z"),
            Ok(Wall::At {
                unix_secs: -1,
                nanos: 0
            })
        );
    }

    #[test]
    fn malformed_values_say_why_and_what_is_accepted() {
        for (text, why) in [
            ("+1x", "unknown unit `x`"),
            ("soon", "without a number"),
            ("", "empty duration"),
            ("2038-01-19", "expected `T` between the date and the time"),
            ("2038-01-19 03:14:00Z", "expected `T`"),
            ("2038-01-19T03:14:00", "no time zone"),
            ("2038-01-19T03:14:00+0100", "`Z` or `+HH:MM`"),
            ("2038-13-19T03:14:00Z", "month must be 01 to 12"),
            ("2023-02-29T03:14:00Z", "2023-02 has no day 29"),
            ("2038-01-19T24:00:00Z", "hour must be 00 to 23"),
            ("2016-12-31T23:59:60Z", "no leap second"),
            ("2038-01-19T03:14:00.Z", "1 to 9 digits"),
            ("9999-01-01T00:00:00Z", "from 1900 to 2200"),
            ("20x8-01-01T00:00:00Z", "unknown unit"),
            ("54000d", "about 146 years"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        assert!(parse("2038-01-19").unwrap_err().contains("RFC 3339"));
        assert!(parse("1x").unwrap_err().contains("RFC 3339 instant"));
    }
}
