//! Durations in Go's notation (`10s`, `1m30s`, `500ms`, `0`), as kube-apiserver's flags take
//! them.

use std::time::Duration;

/// Parses a Go duration: one or more `<number><unit>` parts (units ns, us/µs, ms, s, m, h), or `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (expected e.g. 5m, 90s, 1h30m, 500ms or 0)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds).map_err(|_| invalid())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (text, seconds) in
            [("10s", 10.0), ("1m30s", 90.0), ("250ms", 0.25), ("1.5h", 5400.0), ("5m0s", 300.0), ("1h30m", 5400.0), ("0", 0.0)]
        {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs_f64(seconds)), "{text}");
        }
        for bad in ["", "10", "s", "10x", "-1s", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
