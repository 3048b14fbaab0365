//! Developer tooling: the development PKI and officer tokens, the sample units and officers,
//! mutual-TLS client connections, and the one-command mock environment.
#![forbid(unsafe_code)]

pub mod call;
pub mod client;
pub mod env;
pub mod pki;
pub mod sample;
pub mod tokens;
