//! Developer tooling: the development PKI and the one-command mock environment.
#![forbid(unsafe_code)]

pub mod pki;
