//! Signed durations as the attribute accepts them: `"3600"`, `"+1h30m"`, `"-90s"`, `"2d"`.

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
