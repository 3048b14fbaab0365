//! Calls to the gateway as a one-stop system makes them: the unit's certificate, an officer's
//! token, a request context; refusals printed with everything the gateway said.

use crate::client::mtls_channel_as;
use crate::env::DevPki;
use crate::sample;
use crate::tokens::{TokenSpec, mint};
use crate::units::Acting;
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

/// Connects as a sample officer: their unit's certificate and a fresh token bound to it (the
/// PKI alone is needed, not the environment's gateway configuration).
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
    let channel = mtls_channel_as(endpoint, None, &pki.ca, Some(&cert))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Caller {
        client: CitizenGatewayClient::new(channel),
        token,
    })
}

/// Connects as any officer of this environment (see [`crate::units::acting`]): their unit's
/// certificate and a fresh token (an hour) bound to it.
pub async fn connect_as(
    dir: &Path,
    endpoint: &str,
    server_name: Option<&str>,
    acting: &Acting,
) -> Result<Caller, String> {
    let pki = DevPki::layout(dir);
    let token = crate::units::token(dir, acting, None, 60).map_err(|e| e.to_string())?;
    let channel = mtls_channel_as(endpoint, server_name, &pki.ca, Some(&acting.certificate))
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
        ..Default::default()
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

/// Splits one CSV line: commas, fields optionally in double quotes (`""` inside is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// A batch for VerifyBatch from CSV: a header `item_id,personal_id,<field>,…` naming citizen
/// fields, then one row per declaration. An empty cell is sent as an empty value (NOT_PROVIDED);
/// a 9-digit number in the personal_id column names the citizen by their old number.
pub fn batch_from_csv(
    text: &str,
    procedure: &str,
    dossier: &str,
) -> Result<Vec<pb::VerifyBatchRequest>, String> {
    // A spreadsheet's "CSV UTF-8" starts with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().ok_or("the file is empty")?);
    if header.len() < 3 || header[0] != "item_id" || header[1] != "personal_id" {
        return Err(
            "the header must be item_id,personal_id, then the fields declared (e.g. full_name,date_of_birth)".into(),
        );
    }
    let mut items = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells = csv_fields(line);
        if cells.len() != header.len() {
            return Err(format!(
                "row {} has {} cells, the header has {}",
                n + 2,
                cells.len(),
                header.len()
            ));
        }
        // A 9-digit number names the citizen by their old number (a system holding only that).
        let number = cells[1].trim();
        let old = number.len() == 9 && number.bytes().all(|b| b.is_ascii_digit());
        items.push(pb::VerifyBatchRequest {
            context: if items.is_empty() {
                context(procedure, dossier)
            } else {
                None
            },
            item_id: cells[0].clone(),
            personal_id: if old { String::new() } else { cells[1].clone() },
            old_id_number: if old {
                number.to_owned()
            } else {
                String::new()
            },
            claims: header[2..]
                .iter()
                .zip(&cells[2..])
                .map(|(field, value)| pb::Claim {
                    field: field.clone(),
                    value: value.clone(),
                })
                .collect(),
        });
    }
    if items.is_empty() {
        return Err("the file has a header but no rows".into());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_sample_declarations_are_a_valid_batch() {
        let items = batch_from_csv(
            include_str!("../../examples/declarations.csv"),
            "1.004227",
            "D",
        )
        .unwrap();
        assert_eq!(items.len(), 6);
        assert!(items.iter().all(|i| i.claims.len() == 2));
    }

    #[test]
    fn a_csv_saved_by_a_spreadsheet_is_read() {
        let items = batch_from_csv(
            "\u{feff}item_id,personal_id,full_name\r\n1,042188999005,Trần Thị Minh Thư\r\n",
            "1.004227",
            "D",
        )
        .unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].claims[0].field, "full_name");
    }

    #[test]
    fn a_batch_file_becomes_requests() {
        let text = "item_id,personal_id,full_name,date_of_birth\r\n\
                    r1,042188999005,Trần Thị Minh Thư,\n\
                    r2,042092999014,\"Nguyễn Văn \"\"Hà\"\"\",08/08/1992\n";
        let items = batch_from_csv(text, "1.004227", "D-1").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].context.as_ref().unwrap().procedure_code,
            "1.004227"
        );
        assert!(items[1].context.is_none());
        assert_eq!(items[0].claims[1].field, "date_of_birth");
        assert_eq!(items[0].claims[1].value, "");
        assert_eq!(items[1].claims[0].value, "Nguyễn Văn \"Hà\"");
    }

    #[test]
    fn bad_batch_files_say_what_is_wrong() {
        assert!(batch_from_csv("", "p", "d").unwrap_err().contains("empty"));
        assert!(
            batch_from_csv("id,pid,full_name\n", "p", "d")
                .unwrap_err()
                .contains("header")
        );
        let e = batch_from_csv("item_id,personal_id,full_name\nr1,042188999005\n", "p", "d")
            .unwrap_err();
        assert!(e.contains("row 2 has 2 cells"), "{e}");
    }
}
