//! Liên Thông's domain types, parsed once at the edge and shared by every crate.
//!
//! - [`personal_id`]: `PersonalId` (12 digits, structure checked) and `OldIdNumber` (9 digits).
//! - [`date`]: `PartialDate`, a date of birth that may be known only by year or month.
//! - [`units`]: the embedded 2025 and pre-2025 administrative units, and their code types.
//! - [`address`]: `Address` (2025 units) and `HistoricalPlace` (pre-2025 units).
//! - [`codes`]: `UnitCode`, `ProcedureCode`, `OfficerCode`, `DossierId`, `RequestId`.
//! - [`citizen`]: the citizen record, its enums, and `CitizenField`, the names the catalog grants.
//!
//! Nothing here knows about prost, tonic or storage.
#![forbid(unsafe_code)]

pub mod address;
pub mod citizen;
pub mod codes;
pub mod date;
pub mod former_units;
pub mod personal_id;
pub mod units;

pub use address::{Address, HistoricalPlace};
pub use citizen::{
    CardStatus, CardType, CitizenField, CitizenRecord, EidLevel, Gender, Household, HouseholdId,
    HouseholdLink, IdCard, LifeStatus, MaritalStatus, Provenance, Relation, Relative, Source,
};
pub use codes::{CodeError, DossierId, OfficerCode, ProcedureCode, RequestId, UnitCode};
pub use date::PartialDate;
pub use former_units::{FormerCommune, Share, former_communes};
pub use personal_id::{OldIdNumber, PersonalId};
pub use units::{DistrictCode, ProvinceCode, WardCode};
