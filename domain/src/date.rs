//! Calendar dates that may be partial (year only, or month and year), as population records keep
//! them, with the formats Vietnamese forms use.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a date is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("year {0} is out of range (1800 to 2299)")]
    Year(i32),
    #[error("month {0} is out of range (1 to 12)")]
    Month(u32),
    #[error("day {day} is out of range for {month:02}/{year} (1 to {max})")]
    Day {
        day: u32,
        month: u32,
        year: i32,
        max: u32,
    },
    #[error("a day was given without a month")]
    DayWithoutMonth,
    #[error(
        "{0:?} is not a date: use dd/mm/yyyy, mm/yyyy, yyyy, yyyy-mm-dd, dd-mm-yyyy, dd.mm.yyyy or ddmmyyyy (e.g. 17/05/1990)"
    )]
    Format(String),
}

/// A date of which the month and day may be unknown.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PartialDate {
    /// Only the year is known.
    Year(i32),
    /// The month and year are known.
    YearMonth(i32, u32),
    /// The full date.
    Full(i32, u32, u32),
}

impl PartialDate {
    /// A full date, checked.
    pub fn ymd(year: i32, month: u32, day: u32) -> Result<Self, DateError> {
        Self::from_parts(year, month, day)
    }

    /// Builds a date from parts where 0 means unknown (as on the wire).
    pub fn from_parts(year: i32, month: u32, day: u32) -> Result<Self, DateError> {
        if !(1800..=2299).contains(&year) {
            return Err(DateError::Year(year));
        }
        match (month, day) {
            (0, 0) => Ok(Self::Year(year)),
            (0, _) => Err(DateError::DayWithoutMonth),
            (m, _) if m > 12 => Err(DateError::Month(m)),
            (m, 0) => Ok(Self::YearMonth(year, m)),
            (m, d) => {
                let max = days_in_month(year, m);
                if d > max {
                    Err(DateError::Day {
                        day: d,
                        month: m,
                        year,
                        max,
                    })
                } else {
                    Ok(Self::Full(year, m, d))
                }
            }
        }
    }

    /// Parses "dd/mm/yyyy", "mm/yyyy", "yyyy" or "yyyy-mm-dd", and as provincial systems also
    /// write them "dd-mm-yyyy", "dd.mm.yyyy", "mm.yyyy" and the card QR's "ddmmyyyy"
    /// (surrounding spaces ignored).
    pub fn parse(s: &str) -> Result<Self, DateError> {
        let t = s.trim();
        let bad = || DateError::Format(s.to_owned());
        let num = |p: &str| -> Result<u32, DateError> {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                Err(bad())
            } else {
                p.parse().map_err(|_| bad())
            }
        };
        let parts: Vec<&str> = if t.contains('-') {
            let p: Vec<&str> = t.split('-').collect();
            match p.as_slice() {
                [y, m, d] if y.len() == 4 => vec![d, m, y],
                [d, m, y] if y.len() == 4 && d.len() <= 2 => vec![d, m, y],
                _ => return Err(bad()),
            }
        } else if t.contains('.') {
            t.split('.').collect()
        } else if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
            vec![&t[0..2], &t[2..4], &t[4..8]]
        } else {
            t.split('/').collect()
        };
        match parts.as_slice() {
            [y] if y.len() == 4 => Self::from_parts(num(y)? as i32, 0, 0),
            [m, y] if y.len() == 4 => Self::from_parts(num(y)? as i32, num(m)?, 0),
            [d, m, y] if y.len() == 4 => Self::from_parts(num(y)? as i32, num(m)?, num(d)?),
            _ => Err(bad()),
        }
    }

    /// The year.
    pub fn year(&self) -> i32 {
        match *self {
            Self::Year(y) | Self::YearMonth(y, _) | Self::Full(y, _, _) => y,
        }
    }

    /// The month, when known.
    pub fn month(&self) -> Option<u32> {
        match *self {
            Self::Year(_) => None,
            Self::YearMonth(_, m) | Self::Full(_, m, _) => Some(m),
        }
    }

    /// The day, when known.
    pub fn day(&self) -> Option<u32> {
        match *self {
            Self::Full(_, _, d) => Some(d),
            _ => None,
        }
    }

    /// Whether the full date is known.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(..))
    }

    /// The parts as on the wire: (year, month or 0, day or 0).
    pub fn to_parts(&self) -> (i32, u32, u32) {
        (
            self.year(),
            self.month().unwrap_or(0),
            self.day().unwrap_or(0),
        )
    }

    /// Days since 1970-01-01 of the date (unknown parts taken as the first).
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(
            self.year(),
            self.month().unwrap_or(1),
            self.day().unwrap_or(1),
        )
    }

    /// The full date of a day count since 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Self {
        let (y, m, d) = civil_from_days(days);
        Self::Full(y, m, d)
    }

    /// Age in whole years on `on`, counting unknown parts as the first of the period.
    pub fn age_on(&self, on: PartialDate) -> i32 {
        let (by, bm, bd) = self.to_parts();
        let (oy, om, od) = on.to_parts();
        let before_birthday = (om.max(1), od.max(1)) < (bm.max(1), bd.max(1));
        oy - by - i32::from(before_birthday)
    }
}

/// Vietnamese form style: "17/05/1990", "05/1990" or "1990".
impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Year(y) => write!(f, "{y}"),
            Self::YearMonth(y, m) => write!(f, "{m:02}/{y}"),
            Self::Full(y, m, d) => write!(f, "{d:02}/{m:02}/{y}"),
        }
    }
}

impl fmt::Debug for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartialDate({self})")
    }
}

/// Number of days in a month of the Gregorian calendar.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expected: Result<PartialDate, DateError>) {
        assert_eq!(PartialDate::parse(input), expected, "input {input:?}");
    }

    #[test]
    fn parse_table() {
        check("17/05/1990", Ok(PartialDate::Full(1990, 5, 17)));
        check("1990-05-17", Ok(PartialDate::Full(1990, 5, 17)));
        check(" 7/5/1990 ", Ok(PartialDate::Full(1990, 5, 7)));
        check("05/1990", Ok(PartialDate::YearMonth(1990, 5)));
        check("1948", Ok(PartialDate::Year(1948)));
        check("29/02/2024", Ok(PartialDate::Full(2024, 2, 29)));
        check(
            "29/02/2023",
            Err(DateError::Day {
                day: 29,
                month: 2,
                year: 2023,
                max: 28,
            }),
        );
        check("17/13/1990", Err(DateError::Month(13)));
        check("1700", Err(DateError::Year(1700)));
        // As provincial systems write them: dd-mm-yyyy, dd.mm.yyyy, mm.yyyy, the card QR's ddmmyyyy.
        check("17-05-1990", Ok(PartialDate::Full(1990, 5, 17)));
        check("17.05.1990", Ok(PartialDate::Full(1990, 5, 17)));
        check("05.1990", Ok(PartialDate::YearMonth(1990, 5)));
        check("17051990", Ok(PartialDate::Full(1990, 5, 17)));
        check("17-05-90", Err(DateError::Format("17-05-90".into())));
        check("1705199", Err(DateError::Format("1705199".into())));
        check("17991990", Err(DateError::Month(99)));
        check("1990-05", Err(DateError::Format("1990-05".into())));
        check("", Err(DateError::Format("".into())));
        check("90", Err(DateError::Format("90".into())));
        check("+1/05/1990", Err(DateError::Format("+1/05/1990".into())));
    }

    #[test]
    fn ages() {
        let born = PartialDate::Full(2020, 6, 1);
        assert_eq!(born.age_on(PartialDate::Full(2026, 5, 31)), 5);
        assert_eq!(born.age_on(PartialDate::Full(2026, 6, 1)), 6);
        assert_eq!(
            PartialDate::Year(1948).age_on(PartialDate::Full(2026, 11, 23)),
            78
        );
    }

    proptest! {
        #[test]
        fn valid_dates_round_trip(y in 1800i32..2300, m in 1u32..=12, d in 1u32..=31) {
            prop_assume!(d <= days_in_month(y, m));
            for date in [PartialDate::Full(y, m, d), PartialDate::YearMonth(y, m), PartialDate::Year(y)] {
                prop_assert_eq!(PartialDate::parse(&date.to_string()), Ok(date));
                let (py, pm, pd) = date.to_parts();
                prop_assert_eq!(PartialDate::from_parts(py, pm, pd), Ok(date));
            }
        }

        #[test]
        fn epoch_days_round_trip(days in -100_000i64..150_000) {
            let date = PartialDate::from_days_since_epoch(days);
            prop_assert_eq!(date.days_since_epoch(), days);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,16}") {
            let _ = PartialDate::parse(&s);
        }

        #[test]
        fn impossible_days_are_rejected(y in 1800i32..2300, m in 1u32..=12, d in 29u32..40) {
            prop_assume!(d > days_in_month(y, m));
            let is_day_error = matches!(PartialDate::from_parts(y, m, d), Err(DateError::Day { .. }));
            prop_assert!(is_day_error);
        }
    }
}
