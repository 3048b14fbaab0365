//! The mock national population database (CSDLQG về dân cư) behind the Liên Thông gateway.
//!
//! - [`cli`]: command-line arguments shared by the tools that generate a population.
//! - [`declarations`]: what provincial systems hold about citizens, with the real differences.
//! - [`generator`]: the deterministic population generator (family clusters, numbering).
//! - [`personas`]: the fixed persona table, present in every store.
//! - [`store`]: the sled-backed store.
//! - [`updates`]: write-back: corrections and enrichments from provincial systems, and their rules.
//! - [`bundles`]: interlinked-bundle cases: each step an agency's action on the records.
//! - [`faults`]: run-time fault injection.
//! - [`service`]: the gRPC handlers (`PopulationRegistry`, `RegistryAdmin`).
//! - [`server`]: binding, TLS, health, reflection and graceful shutdown.
#![forbid(unsafe_code)]

pub mod bundles;
pub mod cli;
pub mod declarations;
pub mod faults;
pub mod generator;
pub mod metrics;
pub mod personas;
pub mod server;
pub mod service;
pub mod store;
pub mod updates;

pub use generator::Spec;
pub use server::{MockCsdl, ServeError, Settings, TlsFiles};
pub use store::{Store, StoreError, StoreMeta};
