//! The codes that name who asks and why: a connected unit's agency code (mã đơn vị), an
//! administrative procedure's code (mã thủ tục), an officer's code and a dossier id.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: expected {expected}")]
pub struct CodeError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $expected:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses the code, saying what shape was expected when it is wrong.
            pub fn parse(s: &str) -> Result<Self, CodeError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(CodeError { what: $what, value: s.chars().take(64).collect(), expected: $expected })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0
            }
        }
    };
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn token_chars(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
}

code_type!(
    /// A connected unit's agency code (mã định danh đơn vị), four dot-separated groups such as
    /// `000.00.00.H42`: three digits, two digits, two digits, and three upper-case letters or
    /// digits.
    UnitCode,
    "unit code",
    "four dot-separated groups like 000.00.00.H42",
    |s| {
        let parts: Vec<&str> = s.split('.').collect();
        parts.len() == 4
            && digits(parts[0], 3)
            && digits(parts[1], 2)
            && digits(parts[2], 2)
            && parts[3].len() == 3
            && parts[3]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    }
);

code_type!(
    /// An administrative procedure's code (mã thủ tục hành chính) such as `1.001193`, or a
    /// bundle's code such as `LT.KHAISINH`: letters, digits and dots, at most 32 characters.
    ProcedureCode,
    "procedure code",
    "a catalog code such as 1.001193 (letters, digits and dots, at most 32)",
    |s| !s.is_empty()
        && s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && !s.starts_with('.')
);

code_type!(
    /// An officer's account code (mã cán bộ), one per person: letters, digits, '.', '-', '_',
    /// at most 64 characters.
    OfficerCode,
    "officer code",
    "letters, digits, '.', '-', '_' (at most 64), e.g. CB.H42.0001",
    |s| token_chars(s, 64) && !s.contains('/')
);

code_type!(
    /// The dossier (mã hồ sơ) a request serves: letters, digits, '.', '-', '_', '/', at most 64.
    DossierId,
    "dossier id",
    "letters, digits, '.', '-', '_', '/' (at most 64), e.g. H42.01-251123-0001",
    |s| token_chars(s, 64)
);

code_type!(
    /// The caller's id for one request (mã yêu cầu): letters, digits, '.', '-', '_', at most 64;
    /// a UUID is recommended.
    RequestId,
    "request id",
    "letters, digits, '.', '-', '_' (at most 64); a UUID is recommended",
    |s| token_chars(s, 64) && !s.contains('/')
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_codes() {
        for ok in [
            "000.00.00.H42",
            "000.21.42.H42",
            "000.00.00.DEV",
            "123.45.67.G01",
        ] {
            assert!(UnitCode::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "H42",
            "000.00.00.h42",
            "000.00.00.H4",
            "000.00.00.H42.1",
            "0.00.00.H42",
        ] {
            let e = UnitCode::parse(bad).unwrap_err();
            assert_eq!(e.what, "unit code");
        }
    }

    #[test]
    fn procedure_and_dossier_codes() {
        assert!(ProcedureCode::parse("1.001193").is_ok());
        assert!(ProcedureCode::parse("LT.KHAISINH").is_ok());
        assert!(ProcedureCode::parse("").is_err());
        assert!(ProcedureCode::parse("1 001193").is_err());
        assert!(DossierId::parse("H42.01-251123-0001").is_ok());
        assert!(DossierId::parse("a b").is_err());
        assert!(DossierId::parse(&"x".repeat(65)).is_err());
        assert!(OfficerCode::parse("CB.H42.0001").is_ok());
        assert!(OfficerCode::parse("CB/H42").is_err());
        assert!(RequestId::parse("0b7c1f0e-3f0a-4c55-9d1e-5b3c2d1a0f99").is_ok());
    }

    #[test]
    fn errors_say_what_was_expected_and_truncate_long_values() {
        let e = UnitCode::parse(&"9".repeat(500)).unwrap_err();
        assert_eq!(e.value.len(), 64);
        assert!(e.to_string().contains("000.00.00.H42"), "{e}");
    }
}
