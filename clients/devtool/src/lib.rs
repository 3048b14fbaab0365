//! Developer tooling: the development PKI, mutual-TLS client connections, and the one-command
//! mock environment.
#![forbid(unsafe_code)]

pub mod client;
pub mod env;
pub mod pki;
