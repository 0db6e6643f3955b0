//! Sizes as `memory` and `disk` take them: `"64M"`, `"512K"`, `"1G"`, or a number of bytes.

/// What a malformed size is told, by the macro at the literal.
pub(crate) const ACCEPTED: &str = "a whole number of bytes, or a whole number with K, M or G \
    (binary units: 1K = 1024 bytes), like \"64M\" or \"1G\"";

/// Parses a size greater than zero into bytes.
///
/// # Errors
///
/// A sentence saying what is wrong with `text`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.char_indices().last() {
        Some((at, unit @ ('K' | 'M' | 'G' | 'k' | 'm' | 'g'))) => {
            let shift = match unit.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                _ => 30,
            };
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a size; expected {ACCEPTED}"));
    }
    let too_large = || format!("`{text}` is too large; sizes go up to 16 EiB");
    let number: u64 = digits.parse().map_err(|_| too_large())?;
    let bytes = number.checked_mul(1u64 << shift).ok_or_else(too_large)?;
    if bytes == 0 {
        return Err(format!(
            "the size must be greater than zero, like \"64M\" (got `{text}`)"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_units_and_plain_bytes() {
        for (text, bytes) in [
            ("1", 1),
            ("4096", 4096),
            ("8K", 8 << 10),
            ("64M", 64 << 20),
            ("64m", 64 << 20),
            ("2G", 2 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_positive_size() {
        for (text, why) in [
            ("", "not a size"),
            ("M", "not a size"),
            ("64MB", "not a size"),
            ("1.5G", "not a size"),
            ("-1M", "not a size"),
            ("64T", "not a size"),
            (" 64M", "not a size"),
            ("0", "greater than zero"),
            ("0M", "greater than zero"),
            ("99999999999999999999", "too large"),
            ("99999999999G", "too large"),
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
