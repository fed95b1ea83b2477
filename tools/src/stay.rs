//! A stay: the nights from check-in (inclusive) to check-out (exclusive). It can only be built
//! valid — check-out after check-in, at most [`MAX_NIGHTS`] nights — so every caller that holds a
//! `StayRange` may rely on that.

use chrono::{Days, NaiveDate};

use crate::error::ToolError;

/// The longest stay one reservation may cover.
pub const MAX_NIGHTS: i64 = 365;

/// A valid stay: `check_in < check_out`, at most [`MAX_NIGHTS`] nights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StayRange {
    check_in: NaiveDate,
    check_out: NaiveDate,
}

impl StayRange {
    /// Builds a stay; errors name `checkOut` (the field a caller gets wrong).
    pub fn new(check_in: NaiveDate, check_out: NaiveDate) -> Result<StayRange, ToolError> {
        if check_out <= check_in {
            return Err(ToolError::field(
                "checkOut",
                format!("must be after checkIn ({check_in}); a stay is at least one night"),
            ));
        }
        let nights = (check_out - check_in).num_days();
        if nights > MAX_NIGHTS {
            return Err(ToolError::field(
                "checkOut",
                format!("a stay may cover at most {MAX_NIGHTS} nights, this one covers {nights}"),
            ));
        }
        Ok(StayRange {
            check_in,
            check_out,
        })
    }
    /// The same, but also refusing a check-in before `today`.
    pub fn upcoming(
        check_in: NaiveDate,
        check_out: NaiveDate,
        today: NaiveDate,
    ) -> Result<StayRange, ToolError> {
        if check_in < today {
            return Err(ToolError::field(
                "checkIn",
                format!("{check_in} is in the past (today is {today})"),
            ));
        }
        Self::new(check_in, check_out)
    }
    /// First night.
    pub fn check_in(&self) -> NaiveDate {
        self.check_in
    }
    /// The morning of departure (not a night of the stay).
    pub fn check_out(&self) -> NaiveDate {
        self.check_out
    }
    /// Number of nights (≥ 1).
    pub fn nights(&self) -> i64 {
        (self.check_out - self.check_in).num_days()
    }
    /// Each night of the stay, in order.
    pub fn each_night(&self) -> impl Iterator<Item = NaiveDate> {
        let start = self.check_in;
        (0..self.nights()).filter_map(move |i| start.checked_add_days(Days::new(i as u64)))
    }
    /// Whether two stays share a night (back-to-back stays do not).
    pub fn overlaps(&self, other: &StayRange) -> bool {
        self.check_in < other.check_out && other.check_in < self.check_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn rejects_empty_backwards_and_huge_stays() {
        assert!(StayRange::new(d("2030-01-05"), d("2030-01-05")).is_err());
        assert!(StayRange::new(d("2030-01-05"), d("2030-01-01")).is_err());
        assert!(StayRange::new(d("2030-01-01"), d("2031-06-01")).is_err());
        let err =
            StayRange::upcoming(d("2020-01-01"), d("2020-01-03"), d("2026-01-01")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("checkIn"));
    }

    #[test]
    fn back_to_back_stays_do_not_overlap() {
        let a = StayRange::new(d("2030-01-01"), d("2030-01-05")).unwrap();
        let b = StayRange::new(d("2030-01-05"), d("2030-01-08")).unwrap();
        assert!(!a.overlaps(&b));
        assert_eq!(a.each_night().count(), 4);
    }

    proptest! {
        #[test]
        fn nights_match_the_iterator(start in 0u32..20_000, len in 1i64..=MAX_NIGHTS) {
            let ci = d("2000-01-01") + chrono::Duration::days(start as i64);
            let stay = StayRange::new(ci, ci + chrono::Duration::days(len)).unwrap();
            prop_assert_eq!(stay.nights(), len);
            prop_assert_eq!(stay.each_night().count() as i64, len);
            prop_assert!(stay.overlaps(&stay));
        }
    }
}
