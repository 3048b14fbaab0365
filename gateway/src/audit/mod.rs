//! The audit trail: one record for every request, served or refused, in a hash chain with
//! signed checkpoints, durable before the reply, searchable through derived indexes.
//!
//! - [`record`]: `Entry`, `Record`, `Checkpoint`, the canonical encoding and the hashes.
//! - [`frame`]: the trail file's framing and a streaming reader.
//! - [`log`]: `AuditLog`: recovery at start, the group-commit writer, reads and queries.
//! - [`index`]: the indexes (officer, unit, citizen, procedure, time) as sorted runs, derived data.
//! - [`verify`]: checking a trail or an export with the public key only.
//! - [`central`]: the fleet's central store (PostgreSQL): the shipper, the reviewers' reads.
//!
//! The pipeline step that writes each request's record is `pipeline::audit`; the reviewers'
//! service is `audit_service`. This module knows neither.

pub mod central;
pub mod frame;
pub mod index;
pub mod log;
pub mod record;
pub mod verify;

use hmac::{Hmac, Mac};
use lienthong_domain::{OldIdNumber, PersonalId};
use sha2::Sha256;
use std::sync::Arc;

pub use log::{AuditError, AuditLog, Receipt};

/// Turns personal IDs into keyed pseudonyms: HMAC-SHA-256 under the gateway's secret key, hex.
/// A reviewer holding the key (through the gateway) can search by ID; the trail alone reveals
/// nothing but the masked number.
#[derive(Clone)]
pub struct Pseudonyms {
    key: Arc<[u8]>,
}

impl Pseudonyms {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, input: &str) -> String {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(input.as_bytes());
        record::hex(&mac.finalize().into_bytes())
    }

    /// The pseudonym of a personal ID.
    pub fn of(&self, id: &PersonalId) -> String {
        self.mac(id.as_str())
    }

    /// The pseudonym of an old ID number (kept apart from personal IDs).
    pub fn of_old(&self, id: &OldIdNumber) -> String {
        self.mac(&format!("cmnd:{}", id.as_str()))
    }
}
