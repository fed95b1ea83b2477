//! The structured parts of a listing the spec leaves as free "Object"s: location, seasonal
//! pricing, booking policies and cancellation policy, plus percentages. Each parses only valid
//! values, so pricing and booking code can trust what it reads back from the database.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::Money;
use crate::types::Name;

/// Where a listing is. `city` drives search; coordinates are optional.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    /// City, e.g. `Lisbon` (searchable with `listListings?city=`).
    pub city: Name,
    /// Country name or ISO code.
    pub country: Option<Name>,
    /// Latitude in degrees (−90…90).
    #[schemars(range(min = -90.0, max = 90.0))]
    pub latitude: Option<f64>,
    /// Longitude in degrees (−180…180).
    #[schemars(range(min = -180.0, max = 180.0))]
    pub longitude: Option<f64>,
}

impl Location {
    /// Checks the coordinate ranges (serde cannot), naming the field at fault.
    pub fn check(&self) -> Result<(), crate::error::ToolError> {
        if self.latitude.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
            return Err(crate::error::ToolError::field(
                "location.latitude",
                "must be between -90 and 90",
            ));
        }
        if self
            .longitude
            .is_some_and(|v| !(-180.0..=180.0).contains(&v))
        {
            return Err(crate::error::ToolError::field(
                "location.longitude",
                "must be between -180 and 180",
            ));
        }
        Ok(())
    }
}

/// A day of the year, `MM-DD`, for seasons that recur every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthDay {
    month: u32,
    day: u32,
}

impl MonthDay {
    /// The month-day of a date.
    pub fn of(date: NaiveDate) -> MonthDay {
        MonthDay {
            month: date.month(),
            day: date.day(),
        }
    }
}

impl TryFrom<&str> for MonthDay {
    type Error = String;
    fn try_from(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a MM-DD day such as 06-01");
        let (m, d) = s.split_once('-').ok_or_else(bad)?;
        let (month, day): (u32, u32) =
            (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // 2000 is a leap year, so 02-29 is accepted.
        NaiveDate::from_ymd_opt(2000, month, day).ok_or_else(bad)?;
        Ok(MonthDay { month, day })
    }
}

impl Serialize for MonthDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}-{:02}", self.month, self.day))
    }
}

impl<'de> Deserialize<'de> for MonthDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        MonthDay::try_from(s.as_str()).map_err(D::Error::custom)
    }
}

impl JsonSchema for MonthDay {
    fn schema_name() -> Cow<'static, str> {
        "MonthDay".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-9])|(?:0[13-9]|1[0-2])-30|(?:0[13578]|1[02])-31)$", "description": "MM-DD, recurring every year" })
    }
}

/// One season: from `from` to `to` inclusive (may wrap the new year, e.g. 12-20 → 01-05).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Season {
    /// A label such as `summer`.
    pub name: Option<Name>,
    /// First day of the season (MM-DD).
    pub from: MonthDay,
    /// Last day of the season (MM-DD), inclusive.
    pub to: MonthDay,
    /// The nightly price during the season.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub price_per_night: Money,
}

impl Season {
    /// Whether the night of `date` falls in this season.
    pub fn covers(&self, date: NaiveDate) -> bool {
        let day = MonthDay::of(date);
        if self.from <= self.to {
            self.from <= day && day <= self.to
        } else {
            day >= self.from || day <= self.to
        }
    }
}

/// Seasonal nightly prices; the first matching season wins, else the base price applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeasonalPricing {
    /// The seasons, checked in order (at most 24).
    #[schemars(length(max = 24))]
    pub seasons: Vec<Season>,
}

impl SeasonalPricing {
    /// The seasonal price of the night of `date`, if a season covers it.
    pub fn price_on(&self, date: NaiveDate) -> Option<Money> {
        self.seasons
            .iter()
            .find(|s| s.covers(date))
            .map(|s| s.price_per_night)
    }
    /// Checks limits serde cannot express.
    pub fn check(&self) -> Result<(), crate::error::ToolError> {
        if self.seasons.len() > 24 {
            return Err(crate::error::ToolError::field(
                "seasonalPricing.seasons",
                "at most 24 seasons",
            ));
        }
        if let Some(i) = self
            .seasons
            .iter()
            .position(|s| s.price_per_night == Money::ZERO)
        {
            return Err(crate::error::ToolError::field(
                format!("seasonalPricing.seasons[{i}].pricePerNight"),
                "must be more than 0",
            ));
        }
        Ok(())
    }
}

/// House booking rules, copied onto each reservation when it is made.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BookingPolicies {
    /// Earliest check-in time, `HH:MM` (default 15:00).
    pub check_in_time: Option<Name>,
    /// Latest check-out time, `HH:MM` (default 11:00).
    pub check_out_time: Option<Name>,
    /// Bookings must start at least this many days ahead (0 = same day allowed).
    #[serde(default)]
    #[schemars(range(max = 365))]
    pub min_advance_days: u16,
    /// Bookings may start at most this many days ahead (default 365).
    #[schemars(range(min = 1, max = 730))]
    pub max_advance_days: Option<u16>,
}

impl Default for BookingPolicies {
    fn default() -> Self {
        BookingPolicies {
            check_in_time: None,
            check_out_time: None,
            min_advance_days: 0,
            max_advance_days: Some(365),
        }
    }
}

impl BookingPolicies {
    /// The booking window in days ahead of today, `(min, max)`.
    pub fn window(&self) -> (i64, i64) {
        (
            self.min_advance_days.into(),
            self.max_advance_days.unwrap_or(365).min(730).into(),
        )
    }
}

/// Refund rules, copied onto each reservation: cancelling at least `freeCancellationDays` before
/// check-in refunds everything; later (but before check-in) refunds `refundPercentAfterDeadline`
/// percent; from check-in on nothing. A host or admin cancellation always refunds in full.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancellationPolicy {
    /// Days before check-in until which a guest cancellation is refunded in full.
    #[schemars(range(max = 365))]
    pub free_cancellation_days: u16,
    /// Percent refunded when the guest cancels after that deadline but before check-in.
    #[schemars(range(max = 100))]
    pub refund_percent_after_deadline: u8,
}

impl Default for CancellationPolicy {
    /// Flexible: free until 1 day before check-in, nothing after.
    fn default() -> Self {
        CancellationPolicy {
            free_cancellation_days: 1,
            refund_percent_after_deadline: 0,
        }
    }
}

impl CancellationPolicy {
    /// Checks the ranges, naming the field.
    pub fn check(&self) -> Result<(), crate::error::ToolError> {
        if self.refund_percent_after_deadline > 100 {
            return Err(crate::error::ToolError::field(
                "cancellationPolicy.refundPercentAfterDeadline",
                "must be between 0 and 100",
            ));
        }
        if self.free_cancellation_days > 365 {
            return Err(crate::error::ToolError::field(
                "cancellationPolicy.freeCancellationDays",
                "must be at most 365",
            ));
        }
        Ok(())
    }
    /// What a guest cancelling on `today` gets back of `paid`, for a stay starting `check_in`.
    pub fn guest_refund(&self, paid: Money, today: NaiveDate, check_in: NaiveDate) -> Money {
        let days_ahead = (check_in - today).num_days();
        if days_ahead >= i64::from(self.free_cancellation_days) && days_ahead > 0 {
            paid
        } else if days_ahead > 0 {
            paid.percent_hundredths(i64::from(self.refund_percent_after_deadline) * 100)
        } else {
            Money::ZERO
        }
    }
    /// The last day a guest may cancel for a full refund.
    pub fn free_until(&self, check_in: NaiveDate) -> NaiveDate {
        check_in - chrono::Duration::days(i64::from(self.free_cancellation_days.max(1)))
    }
}

/// A percentage with at most 2 decimals (e.g. a city tax of 3.5 %), held in hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percent(i64);

impl Percent {
    /// Hundredths of a percent (350 = 3.5 %).
    pub fn hundredths(self) -> i64 {
        self.0
    }
    /// From hundredths.
    pub fn from_hundredths(h: i64) -> Percent {
        Percent(h)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(d)?;
        let cents = Money::parse(&number.to_string()).map_err(D::Error::custom)?;
        if cents.cents() > 10_000 {
            return Err(D::Error::custom("must be between 0 and 100"));
        }
        Ok(Percent(cents.cents()))
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl JsonSchema for Percent {
    fn schema_name() -> Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "number", "minimum": 0, "maximum": 100, "multipleOf": 0.01, "description": "A percentage with at most 2 decimals" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn seasons_cover_their_days_and_wrap_the_year() {
        let winter: Season = serde_json::from_value(serde_json::json!({
            "from": "12-20", "to": "01-05", "pricePerNight": 200
        }))
        .unwrap();
        assert!(winter.covers(d("2030-12-31")));
        assert!(winter.covers(d("2031-01-05")));
        assert!(!winter.covers(d("2031-01-06")));
        assert!(MonthDay::try_from("13-01").is_err());
        assert!(MonthDay::try_from("02-29").is_ok());
    }

    #[test]
    fn refunds_follow_the_deadline() {
        let policy = CancellationPolicy {
            free_cancellation_days: 5,
            refund_percent_after_deadline: 50,
        };
        let paid = Money::from_cents(10_000);
        let check_in = d("2030-06-10");
        assert_eq!(policy.guest_refund(paid, d("2030-06-01"), check_in), paid);
        assert_eq!(
            policy.guest_refund(paid, d("2030-06-08"), check_in).cents(),
            5_000
        );
        assert_eq!(
            policy.guest_refund(paid, d("2030-06-10"), check_in),
            Money::ZERO
        );
    }

    #[test]
    fn percents_parse_two_decimals() {
        let p: Percent = serde_json::from_str("3.5").unwrap();
        assert_eq!(p.hundredths(), 350);
        assert!(serde_json::from_str::<Percent>("100.5").is_err());
        assert!(serde_json::from_str::<Percent>("1.234").is_err());
    }
}
