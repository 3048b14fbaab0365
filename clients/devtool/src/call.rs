//! Calls to the gateway as a one-stop system makes them: the unit's certificate, an officer's
//! token, a request context; refusals printed with everything the gateway said.

use crate::client::mtls_channel;
use crate::env::DevPki;
use crate::sample;
use crate::tokens::{TokenSpec, mint};
use lienthong_proto::gateway::v1 as pb;
use pb::citizen_gateway_client::CitizenGatewayClient;
use std::fmt::Write;
use std::path::Path;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Who calls.
pub struct Caller {
    pub client: CitizenGatewayClient<Channel>,
    pub token: String,
}

/// Connects as a sample officer: their unit's certificate and a fresh token bound to it.
pub async fn connect(dir: &Path, endpoint: &str, officer: &str) -> Result<Caller, String> {
    let pki = DevPki::layout(dir);
    let o = sample::officer(officer).ok_or_else(|| {
        let known: Vec<&str> = sample::OFFICERS.iter().map(|o| o.code).collect();
        format!(
            "{officer} is not a sample officer; use one of {}",
            known.join(", ")
        )
    })?;
    let unit = sample::unit(o.unit).ok_or("sample table inconsistent")?;
    let cert = pki.unit(unit);
    let token = mint(
        &pki.issuer.key,
        &TokenSpec::new(o.code, unit.code, o.roles)
            .bound_to_file(&cert.cert)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let channel = mtls_channel(endpoint, &pki.ca, Some(&cert))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Caller {
        client: CitizenGatewayClient::new(channel),
        token,
    })
}

impl Caller {
    /// A request with the officer's token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Ok(v) = format!("Bearer {}", self.token).parse() {
            r.metadata_mut().insert("authorization", v);
        }
        r
    }
}

/// A request context with a fresh request id.
pub fn context(procedure: &str, dossier: &str) -> Option<pb::RequestContext> {
    Some(pb::RequestContext {
        request_id: format!("dev-{:016x}", rand::random::<u64>()),
        procedure_code: procedure.to_owned(),
        dossier_id: dossier.to_owned(),
    })
}

/// Everything a refusal says: code, message, reason, Vietnamese message, field violations,
/// quota and retry advice.
pub fn describe(status: &tonic::Status) -> String {
    let d = status.get_error_details();
    let mut out = format!("refused: {:?}\n  {}", status.code(), status.message());
    if let Some(info) = d.error_info() {
        let _ = write!(out, "\n  reason: {} ({})", info.reason, info.domain);
    }
    if let Some(vi) = d.localized_message() {
        let _ = write!(out, "\n  {}: {}", vi.locale, vi.message);
    }
    if let Some(bad) = d.bad_request() {
        for v in &bad.field_violations {
            let _ = write!(out, "\n  field {}: {}", v.field, v.description);
        }
    }
    if let Some(q) = d.quota_failure() {
        for v in &q.violations {
            let _ = write!(out, "\n  limit {}: {}", v.subject, v.description);
        }
    }
    if let Some(delay) = d.retry_info().and_then(|r| r.retry_delay) {
        let _ = write!(out, "\n  retry after {} ms", delay.as_millis());
    }
    out
}
