//! Liên Thông gateway: the one door through which provincial one-stop systems read population
//! data, for one administrative procedure at a time.
//!
//! - [`config`]: the TOML file and environment overrides, validated into a typed `Config`.
//! - [`catalog`]: the procedure catalog: fields, roles, e-form templates.
//! - [`tls`]: rustls server configuration; the calling unit from its client certificate.
//! - [`pipeline`]: the request flow: audit → door → identity → authn → limits as tower layers,
//!   then policy, and
//!   `rescue`, the one place refusals become gRPC statuses.
//! - [`upstream`]: the client to the population database: deadline, one retry, breaker.
//! - [`verify`]: declared values against the record, with the normalisations explained.
//! - [`autofill`]: e-forms filled from the record, with provenance and reasons.
//! - [`service`]: the CitizenGateway handlers, where wire and domain meet.
//! - [`audit`]: the hash-chained, signed, durable audit trail and its indexes.
//! - [`audit_service`]: `AuditService`, the reviewers' handlers.
//! - [`app`]: `App::build` and `run_until_stopped`.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod audit_service;
pub mod autofill;
pub mod catalog;
pub mod config;
pub mod http_api;
pub mod jwks;
pub mod metrics;
pub mod pipeline;
pub mod reload;
pub mod service;
pub mod tls;
pub mod upstream;
pub mod verify;

#[cfg(test)]
mod test_log;

pub use app::{App, AppError};
pub use config::{Config, ConfigError};
