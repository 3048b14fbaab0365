//! Transcoding between the HTTP/JSON API and the gateway's gRPC calls: JSON bodies (the protobuf
//! JSON mapping) into gRPC frames, replies back into JSON, and refusals into RFC 9457 problem
//! documents that carry the same reason, details and Vietnamese message.

use bytes::{BufMut, Bytes, BytesMut};
use lienthong_proto::gateway::v1 as pb;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Code;
use tonic_types::StatusExt;

/// The gRPC service the operations belong to.
pub const SERVICE: &str = "lienthong.gateway.v1.CitizenGateway";

/// The operations served at `POST /v1/<name>`, in the order of the contract.
pub const OPERATIONS: &[&str] = &[
    "LookupCitizen",
    "VerifyCitizen",
    "AutofillForm",
    "GetHousehold",
    "VerifyBatch",
    "ListProcedures",
    "SubmitUpdate",
    "GetUpdate",
    "OpenBundle",
    "CompleteBundleStep",
    "GetBundleCase",
];

/// The streaming operation: a JSON array of requests in, an array of results out.
pub const BATCH: &str = "VerifyBatch";

/// The longest error text of a JSON parser quoted back, in characters.
const JSON_ERROR_CHARS: usize = 300;

/// A JSON body as the gRPC request body of `operation` (length-prefixed frames).
pub fn request_body(operation: &str, json: &[u8]) -> Result<Bytes, String> {
    let mut out = BytesMut::new();
    match operation {
        "LookupCitizen" => frame(&mut out, &parse::<pb::LookupCitizenRequest>(json)?),
        "VerifyCitizen" => frame(&mut out, &parse::<pb::VerifyCitizenRequest>(json)?),
        "AutofillForm" => frame(&mut out, &parse::<pb::AutofillFormRequest>(json)?),
        "GetHousehold" => frame(&mut out, &parse::<pb::GetHouseholdRequest>(json)?),
        "ListProcedures" => frame(&mut out, &parse::<pb::ListProceduresRequest>(json)?),
        "SubmitUpdate" => frame(&mut out, &parse::<pb::SubmitUpdateRequest>(json)?),
        "GetUpdate" => frame(&mut out, &parse::<pb::GetUpdateRequest>(json)?),
        "OpenBundle" => frame(&mut out, &parse::<pb::OpenBundleRequest>(json)?),
        "CompleteBundleStep" => frame(&mut out, &parse::<pb::CompleteBundleStepRequest>(json)?),
        "GetBundleCase" => frame(&mut out, &parse::<pb::GetBundleCaseRequest>(json)?),
        BATCH => {
            let items = parse::<Vec<pb::VerifyBatchRequest>>(json)?;
            if items.is_empty() {
                return Err("the body is an empty array: send at least one item".into());
            }
            for item in &items {
                frame(&mut out, item);
            }
        }
        _ => return Err(format!("no operation {operation}")),
    }
    Ok(out.freeze())
}

fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T, String> {
    serde_json::from_slice(json).map_err(|e| {
        let text = e.to_string();
        let cut: String = text.chars().take(JSON_ERROR_CHARS).collect();
        let cut = if cut.len() < text.len() {
            cut + "…"
        } else {
            cut
        };
        format!("the body is not a valid request: {cut}")
    })
}

fn frame(out: &mut BytesMut, message: &impl Message) {
    let len = message.encoded_len();
    out.reserve(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with the room reserved cannot fail.
    let _ = message.encode(out);
}

/// The messages of a gRPC reply body.
fn frames(body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut rest = body;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err("a truncated gRPC frame".into());
        }
        if rest[0] != 0 {
            return Err("a compressed gRPC frame".into());
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = 5usize
            .checked_add(len)
            .filter(|end| *end <= rest.len())
            .ok_or("a truncated gRPC frame")?;
        out.push(&rest[5..end]);
        rest = &rest[end..];
    }
    Ok(out)
}

/// The JSON of a successful reply of `operation`.
pub fn reply_json(operation: &str, body: &[u8]) -> Result<serde_json::Value, String> {
    let messages = frames(body)?;
    match operation {
        "LookupCitizen" => one::<pb::LookupCitizenResponse>(&messages),
        "VerifyCitizen" => one::<pb::VerifyCitizenResponse>(&messages),
        "AutofillForm" => one::<pb::AutofillFormResponse>(&messages),
        "GetHousehold" => one::<pb::GetHouseholdResponse>(&messages),
        "ListProcedures" => one::<pb::ListProceduresResponse>(&messages),
        "SubmitUpdate" => one::<pb::SubmitUpdateResponse>(&messages),
        "GetUpdate" => one::<pb::GetUpdateResponse>(&messages),
        "OpenBundle" | "CompleteBundleStep" | "GetBundleCase" => {
            one::<pb::BundleResponse>(&messages)
        }
        BATCH => all::<pb::VerifyBatchResponse>(&messages),
        _ => Err(format!("no operation {operation}")),
    }
}

fn one<T: Message + Default + Serialize>(messages: &[&[u8]]) -> Result<serde_json::Value, String> {
    match messages {
        [one] => to_json(&T::decode(*one).map_err(|e| e.to_string())?),
        _ => Err(format!(
            "{} reply messages where one was expected",
            messages.len()
        )),
    }
}

fn all<T: Message + Default + Serialize>(messages: &[&[u8]]) -> Result<serde_json::Value, String> {
    let items = messages
        .iter()
        .map(|m| T::decode(*m).map_err(|e| e.to_string()))
        .collect::<Result<Vec<T>, _>>()?;
    to_json(&items)
}

fn to_json(value: &impl Serialize) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

/// The HTTP status of a gRPC code (the mapping of `google.rpc.Code`).
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

/// The audit receipt of a call, from its trailers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Receipt {
    pub chain: String,
    pub sequence: String,
    pub hash: String,
}

impl Receipt {
    /// The receipt in `trailers`, if there is one.
    pub fn from_trailers(trailers: &http::HeaderMap) -> Option<Self> {
        let get = |k: &str| {
            trailers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Some(Self {
            chain: get("x-audit-chain")?,
            sequence: get("x-audit-sequence")?,
            hash: get("x-audit-hash")?,
        })
    }
}

/// An RFC 9457 problem document: the refusal as the gRPC status said it, every detail kept.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `urn:lienthong:problem:<REASON>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The reason (ErrorInfo), or the gRPC code's name when the refusal has none.
    pub title: String,
    pub status: u16,
    /// The refusal's English message: what was wrong and what to do.
    pub detail: String,
    /// The gRPC status code's name, e.g. `PERMISSION_DENIED`.
    pub code: String,
    /// The ErrorInfo reason, e.g. `ROLE_NOT_ALLOWED`; empty when the refusal has none.
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The LocalizedMessage (vi-VN).
    pub message_vi: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quota_violations: Vec<QuotaViolation>,
    /// RetryInfo, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The call's audit record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Receipt>,
    /// VerifyBatch: the items answered before the stream was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<serde_json::Value>,
}

/// A BadRequest field violation.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// A QuotaFailure violation.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaViolation {
    pub subject: String,
    pub description: String,
}

impl Problem {
    /// The problem a gRPC status describes.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .map(|i| i.reason.clone())
            .unwrap_or_default();
        let domain = details
            .error_info()
            .map(|i| i.domain.clone())
            .unwrap_or_default();
        let code = code_name(status.code()).to_owned();
        let title = if reason.is_empty() {
            code.clone()
        } else {
            reason.clone()
        };
        Self {
            kind: format!("urn:lienthong:problem:{title}"),
            title,
            status: http_status(status.code()),
            detail: status.message().to_owned(),
            code,
            reason,
            domain,
            message_vi: details
                .localized_message()
                .map(|m| m.message.clone())
                .unwrap_or_default(),
            field_violations: details
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| Violation {
                            field: v.field.clone(),
                            description: v.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            quota_violations: details
                .quota_failure()
                .map(|q| {
                    q.violations
                        .iter()
                        .map(|v| QuotaViolation {
                            subject: v.subject.clone(),
                            description: v.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            retry_after_ms: details
                .retry_info()
                .and_then(|r| r.retry_delay)
                .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
            audit: None,
            results: None,
        }
    }
}

/// The canonical name of a gRPC code, as the contract writes it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_the_protobuf_mapping_becomes_frames_and_back() {
        let body = br#"{"context":{"requestId":"r-1","procedure_code":"1.004222","dossierId":"D-1"},"personalId":"042188999005","fields":["full_name"]}"#;
        let frames_body = request_body("LookupCitizen", body).unwrap();
        let messages = frames(&frames_body).unwrap();
        let req = pb::LookupCitizenRequest::decode(messages[0]).unwrap();
        assert_eq!(req.context.unwrap().procedure_code, "1.004222");
        assert_eq!(
            req.subject,
            Some(pb::lookup_citizen_request::Subject::PersonalId(
                "042188999005".into()
            ))
        );
        let reply = pb::VerifyCitizenResponse {
            result: pb::OverallResult::NeedsReview as i32,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        frame(&mut out, &reply);
        let json = reply_json("VerifyCitizen", &out).unwrap();
        assert_eq!(json["result"], "OVERALL_RESULT_NEEDS_REVIEW");
    }

    #[test]
    fn bodies_that_are_not_the_message_are_refused_with_the_parsers_words() {
        let e = request_body("LookupCitizen", br#"{"personalId": 42}"#).unwrap_err();
        assert!(e.starts_with("the body is not a valid request"), "{e}");
        let e = request_body("LookupCitizen", br#"{"nonsense": 1}"#).unwrap_err();
        assert!(e.contains("nonsense"), "{e}");
        let e = request_body("VerifyBatch", b"[]").unwrap_err();
        assert!(e.contains("empty array"), "{e}");
        let long = format!("{{\"{}\": 1}}", "x".repeat(5000));
        let e = request_body("LookupCitizen", long.as_bytes()).unwrap_err();
        assert!(e.chars().count() < JSON_ERROR_CHARS + 60, "{e}");
        assert!(frames(&[0, 0, 0, 0, 9, 1]).is_err());
    }
}
