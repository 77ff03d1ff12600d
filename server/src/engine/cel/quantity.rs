//! Kubernetes resource quantities (`quantity('1.5Gi')`) for the CEL quantity library: parsed as
//! the apimachinery `resource.Quantity` grammar and kept exactly, as a decimal mantissa and
//! exponent.

use std::cmp::Ordering;

/// A quantity's value: `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    mantissa: i128,
    exponent: i32,
}

const PARSE_ERROR: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl Quantity {
    /// Parses `1`, `-1.5`, `100m`, `2Gi`, `1e3`, `.5E-2`, …
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (number, suffix) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(PARSE_ERROR.into());
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err("quantity is too large".into());
        }
        let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| PARSE_ERROR.to_string())? };
        let mut exponent = -(fraction.len() as i32);
        match suffix {
            "" => {}
            "n" => exponent -= 9,
            "u" => exponent -= 6,
            "m" => exponent -= 3,
            "k" => exponent += 3,
            "M" => exponent += 6,
            "G" => exponent += 9,
            "T" => exponent += 12,
            "P" => exponent += 15,
            "E" => exponent += 18,
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                let power = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"].iter().position(|p| *p == suffix).expect("listed") as u32 + 1;
                mantissa = mantissa.checked_mul(1024_i128.pow(power)).ok_or("quantity is too large")?;
            }
            _ => {
                let exp = suffix.strip_prefix(['e', 'E']).ok_or_else(|| PARSE_ERROR.to_string())?;
                let value: i32 = exp.parse().map_err(|_| PARSE_ERROR.to_string())?;
                if exp.is_empty() || value.abs() > 1000 {
                    return Err(PARSE_ERROR.into());
                }
                exponent += value;
            }
        }
        if negative {
            mantissa = -mantissa;
        }
        Ok(Quantity { mantissa, exponent }.normalized())
    }

    /// The quantity `value`.
    pub fn from_int(value: i64) -> Quantity {
        Quantity { mantissa: i128::from(value), exponent: 0 }.normalized()
    }

    fn normalized(mut self) -> Quantity {
        if self.mantissa == 0 {
            self.exponent = 0;
        }
        while self.mantissa != 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.exponent += 1;
        }
        self
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i64 {
        self.mantissa.signum() as i64
    }

    /// `-self`.
    pub fn negated(&self) -> Quantity {
        Quantity { mantissa: -self.mantissa, exponent: self.exponent }
    }

    /// The value as an int64, if it is a whole number that fits.
    pub fn as_integer(&self) -> Option<i64> {
        if self.exponent < 0 {
            return None; // normalized: a negative exponent means a fraction
        }
        let scale = 10_i128.checked_pow(self.exponent as u32)?;
        i64::try_from(self.mantissa.checked_mul(scale)?).ok()
    }

    /// The value as a float (approximate).
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exponent)
    }

    /// Both mantissas scaled to the smaller exponent, if that fits.
    fn aligned(&self, other: &Quantity) -> Option<(i128, i128, i32)> {
        let exponent = self.exponent.min(other.exponent);
        let scale = |q: &Quantity| 10_i128.checked_pow((q.exponent - exponent) as u32).and_then(|s| q.mantissa.checked_mul(s));
        Some((scale(self)?, scale(other)?, exponent))
    }

    /// `self + other`, or `None` on overflow.
    pub fn add(&self, other: &Quantity) -> Option<Quantity> {
        let (a, b, exponent) = self.aligned(other)?;
        Some(Quantity { mantissa: a.checked_add(b)?, exponent }.normalized())
    }

    /// Orders two quantities by value.
    pub fn cmp(&self, other: &Quantity) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.as_f64().partial_cmp(&other.as_f64()).unwrap_or(Ordering::Equal),
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Quantity) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_quantity_grammar() {
        let q = |s: &str| Quantity::parse(s).unwrap();
        assert_eq!(q("1Gi").as_integer(), Some(1 << 30));
        assert_eq!(q("1.5Gi").as_integer(), Some(3 << 29));
        assert_eq!(q("100m").as_integer(), None);
        assert_eq!(q("100m").as_f64(), 0.1);
        assert_eq!(q("1k"), q("1000"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("-.5"), q("-500m"));
        assert_eq!(q("0.5").cmp(&q("1")), Ordering::Less);
        assert_eq!(q("1E"), q("1000P"));
        for bad in ["", "abc", "1.2.3", "1Qi", "--1", "1e", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(q("1").add(&q("500m")).unwrap(), q("1.5"));
        assert_eq!(q("2").sign(), 1);
    }
}
