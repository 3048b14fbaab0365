//! Developer tooling: the development PKI and officer tokens, the sample units and officers,
//! mutual-TLS client connections, the one-command mock environment and the units a team
//! registers in it.
#![forbid(unsafe_code)]

pub mod call;
pub mod check;
pub mod client;
pub mod env;
pub mod pki;
pub mod render;
pub mod running;
pub mod sample;
pub mod tokens;
pub mod units;
