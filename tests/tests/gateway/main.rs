//! The gateway end to end: the mock database and the gateway on random ports with real mutual
//! TLS, driven by a client written against the proto alone.
#![allow(clippy::unwrap_used)]

mod audit;
mod bundles;
mod consent;
mod disk;
mod fairness;
mod helpers;
mod hostile;
mod http_api;
mod jwks;
mod matrix;
mod metrics;
mod procedures;
mod realism;
mod refusals;
mod reload;
mod service;
mod transport;
mod verification;
mod writeback;
