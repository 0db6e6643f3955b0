//! Signed durations as nstest accepts them: `"3600"`, `"+1h30m"`, `"-90s"`, `"2d"`.
//!
//! Plain data (layer 1 of docs/src/architecture.md): depends on nothing.
//! Runs in: the macro at compile time, and the runner (`NSTEST_TIMEOUT`).
//!
//! One grammar for the attribute's clock offsets and timeouts (parsed at compile time by
//! `nstest-macros`) and for `NSTEST_TIMEOUT` (parsed by the runner). A proc-macro crate
//! cannot export items, so the file is shared instead: it lives here, inside the macro
//! package, and `harness/src/duration.rs` is a relative symlink to it. Both packages then
//! hold the file itself (`cargo package` packs a symlink's content), and each verifies on
//! its own, as serde_derive_internals shares its sources with serde_derive.
#![allow(dead_code)] // Each of the two crates uses its own part of this file.

/// The kernel rejects time namespace offsets beyond `KTIME_SEC_MAX / 2` seconds, about 146
/// years (ERANGE from `/proc/self/timens_offsets`, kernel/time/namespace.c).
pub(crate) const MAX_OFFSET_SECS: i64 = (i64::MAX / 1_000_000_000) / 2;

/// What a malformed duration is told, by the macro at the literal.
pub(crate) const ACCEPTED: &str = "an optional sign, then whole seconds (\"3600\") or \
    numbers with units d, h, m, s, largest first, each at most once (\"+1h30m\", \"-90s\", \"2d\")";

/// Parses a signed duration into seconds.
///
/// # Errors
///
/// A sentence saying what is wrong with `text`.
pub(crate) fn parse_seconds(text: &str) -> Result<i64, String> {
    let (sign, body) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => (1, text),
    };
    if body.is_empty() {
        return Err(format!("empty duration; expected {ACCEPTED}"));
    }
    let overflow = || {
        format!(
            "`{text}` is too large; the kernel allows at most ±{MAX_OFFSET_SECS} seconds (about 146 years)"
        )
    };
    if body.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = body.parse().map_err(|_| overflow())?;
        return Ok(sign * secs);
    }
    let units = [('d', 86_400i64), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut total: i64 = 0;
    let mut next_unit = 0;
    let mut digits = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(pos) = units.iter().position(|(u, _)| *u == c) else {
            return Err(format!(
                "unknown unit `{c}` in `{text}`; expected {ACCEPTED}"
            ));
        };
        if digits.is_empty() {
            return Err(format!(
                "unit `{c}` without a number in `{text}`; expected {ACCEPTED}"
            ));
        }
        if pos < next_unit {
            return Err(format!(
                "unit `{c}` out of order or repeated in `{text}`; expected {ACCEPTED}"
            ));
        }
        next_unit = pos + 1;
        let n: i64 = digits.parse().map_err(|_| overflow())?;
        total = n
            .checked_mul(units[pos].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(overflow)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "number `{digits}` without a unit at the end of `{text}`; expected {ACCEPTED}"
        ));
    }
    Ok(sign * total)
}

/// Parses a timeout: a duration greater than zero, in whole seconds.
///
/// # Errors
///
/// A sentence saying what is wrong with `text`.
pub(crate) fn parse_timeout(text: &str) -> Result<u64, String> {
    match parse_seconds(text)? {
        secs if secs > 0 => Ok(secs as u64),
        _ => Err(format!(
            "timeout `{text}` must be longer than zero, like \"10s\" or \"2m\""
        )),
    }
}

/// Formats seconds the way they are written: `90` is `1m30s`, `0` is `0s`.
pub(crate) fn format_seconds(secs: u64) -> String {
    let mut left = secs;
    let mut out = String::new();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// Parses a clock offset and checks it against the kernel's range.
///
/// # Errors
///
/// A sentence saying what is wrong with `text`.
pub(crate) fn parse_offset(text: &str) -> Result<i64, String> {
    let secs = parse_seconds(text)?;
    if secs.abs() > MAX_OFFSET_SECS {
        return Err(format!(
            "offset `{text}` is {secs} seconds; the kernel allows at most ±{MAX_OFFSET_SECS} \
             seconds (about 146 years)"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seconds_and_unit_durations_with_a_sign() {
        for (text, secs) in [
            ("3600", 3600),
            ("+3600", 3600),
            ("-90", -90),
            ("0", 0),
            ("-90s", -90),
            ("+1h30m", 5400),
            ("2d", 172_800),
            ("1d2h3m4s", 93_784),
            ("-1h30m", -5400),
        ] {
            assert_eq!(parse_offset(text), Ok(secs), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_durations_saying_why() {
        for (text, why) in [
            ("", "empty"),
            ("+", "empty"),
            ("1x", "unknown unit `x`"),
            ("h", "without a number"),
            ("30m1h", "out of order"),
            ("1h1h", "out of order or repeated"),
            ("1h30", "without a unit"),
            ("1.5h", "unknown unit `.`"),
            (" 1h", "unknown unit ` `"),
            ("99999999999999999999", "too large"),
            ("999999999999999999d", "too large"),
        ] {
            let err = parse_offset(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn timeouts_are_positive_and_format_back() {
        assert_eq!(parse_timeout("10s"), Ok(10));
        assert_eq!(parse_timeout("+1m30s"), Ok(90));
        assert!(parse_timeout("0").unwrap_err().contains("longer than zero"));
        assert!(
            parse_timeout("-5s")
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(parse_timeout("5x").unwrap_err().contains("unknown unit"));
        for (secs, text) in [(0, "0s"), (10, "10s"), (90, "1m30s"), (86_461, "1d1m1s")] {
            assert_eq!(format_seconds(secs), text);
            if secs > 0 {
                assert_eq!(parse_timeout(text), Ok(secs));
            }
        }
    }

    #[test]
    fn enforces_the_kernel_range_at_the_boundary() {
        assert_eq!(
            parse_offset(&MAX_OFFSET_SECS.to_string()),
            Ok(MAX_OFFSET_SECS)
        );
        assert_eq!(
            parse_offset(&format!("-{MAX_OFFSET_SECS}")),
            Ok(-MAX_OFFSET_SECS)
        );
        let err = parse_offset(&(MAX_OFFSET_SECS + 1).to_string()).unwrap_err();
        assert!(err.contains("146 years"), "{err}");
        assert!(parse_offset("54000d").unwrap_err().contains("146 years"));
    }
}
