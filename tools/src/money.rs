//! Money: integer minor units end to end. Prices arrive as JSON numbers in the currency's major
//! unit (`120.5` = 12050 cents), are parsed from their decimal text (never via floating point
//! arithmetic), stored as `bigint`, and computed with integer arithmetic.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount accepted: 1 billion major units.
pub const MAX_CENTS: i64 = 100_000_000_000;

/// An amount in minor units (cents). Serialises as a JSON number in major units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, sqlx::Type)]
#[sqlx(transparent)]
pub struct Money(i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From minor units.
    pub fn from_cents(cents: i64) -> Money {
        Money(cents)
    }
    /// The amount in minor units.
    pub fn cents(self) -> i64 {
        self.0
    }
    /// `self × percent / 100`, rounded half up to the cent; `percent` in hundredths (basis points
    /// ÷ 100, e.g. 1250 = 12.5 %) so no float is involved.
    pub fn percent_hundredths(self, hundredths: i64) -> Money {
        let num = self.0 as i128 * hundredths as i128;
        Money(((num + 5_000) / 10_000) as i64)
    }
    /// Parses a decimal text such as `"120.5"` (at most 2 decimals, not negative).
    pub fn parse(text: &str) -> Result<Money, String> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err("must not be negative".into());
        }
        if text.contains(['e', 'E']) {
            return Err("write the amount as a plain decimal number".into());
        }
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
            return Err("must be a decimal amount such as 120.50".into());
        }
        // serde renders 120.5 as "120.5" and 100.0 as "100.0"; trailing zeros are harmless.
        let frac = frac.trim_end_matches('0');
        if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err("at most 2 decimal places".into());
        }
        let whole: i64 = whole.parse().map_err(|_| "is too large".to_string())?;
        let frac_cents: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        let cents = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac_cents))
            .filter(|c| *c <= MAX_CENTS)
            .ok_or_else(|| "is too large".to_string())?;
        Ok(Money(cents))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl std::ops::Mul<i64> for Money {
    type Output = Money;
    fn mul(self, rhs: i64) -> Money {
        Money(self.0 * rhs)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Display only: the shortest decimal rendering of cents/100 is exact to the cent.
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        Money::parse(&number.to_string()).map_err(D::Error::custom)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> Cow<'static, str> {
        "Money".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "number",
            "minimum": 0,
            "maximum": 1_000_000_000,
            "multipleOf": 0.01,
            "description": "An amount in the currency's major unit with at most 2 decimals, e.g. 120.50."
        })
    }
}

/// An ISO 4217 currency code, upper-cased (`eur` → `EUR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(try_from = "String", into = "String")]
#[sqlx(transparent)]
pub struct Currency(String);

impl Currency {
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let code = value.trim().to_ascii_uppercase();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Currency(code))
        } else {
            Err(format!(
                "`{value}` is not a 3-letter ISO 4217 currency code such as EUR"
            ))
        }
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO 4217 code, e.g. EUR" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(Money::parse("120.5").unwrap().cents(), 12050);
        assert_eq!(Money::parse("100.0").unwrap().cents(), 10000);
        assert_eq!(Money::parse("0.07").unwrap().cents(), 7);
        for bad in ["-1", "1.234", "1e3", "", "abc", ".5", "99999999999"] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_numbers_round_trip() {
        let m: Money = serde_json::from_str("19.99").unwrap();
        assert_eq!(m.cents(), 1999);
        assert_eq!(serde_json::to_string(&m).unwrap(), "19.99");
        assert!(serde_json::from_str::<Money>("\"19.99\"").is_err());
    }

    #[test]
    fn percentages_round_half_up() {
        assert_eq!(Money(1000).percent_hundredths(1250).cents(), 125);
        assert_eq!(Money(5).percent_hundredths(1000).cents(), 1);
        assert_eq!(Money(4).percent_hundredths(1000).cents(), 0);
    }

    #[test]
    fn currencies_are_normalised() {
        assert_eq!(
            Currency::try_from("eur".to_string()).unwrap().as_str(),
            "EUR"
        );
        assert!(Currency::try_from("EURO".to_string()).is_err());
    }

    proptest! {
        #[test]
        fn any_cent_amount_survives_json(cents in 0i64..MAX_CENTS) {
            let text = serde_json::to_string(&Money(cents)).unwrap();
            let back: Money = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back.cents(), cents);
        }
    }
}
