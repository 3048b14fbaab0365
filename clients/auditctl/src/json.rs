//! Records and checkpoints as JSON (hashes and signatures in hex), for `query --format jsonl`
//! and for exports, which `verify --export` reads back.

use lienthong_gateway::audit::frame::Item;
use lienthong_gateway::audit::record::{Checkpoint, Entry, Record, hex, parse_hash};
use serde_json::{Value, json};

pub fn record(r: &Record) -> Value {
    let e = &r.entry;
    json!({
        "chain_id": r.chain_id,
        "sequence": r.sequence,
        "time_us": e.time_us,
        "time": crate::report::local_time(e.time_us),
        "request_id": e.request_id,
        "unit_code": e.unit_code,
        "cert_fingerprint": e.cert_fingerprint,
        "peer_address": e.peer_address,
        "officer_code": e.officer_code,
        "roles": e.roles,
        "method": e.method,
        "procedure_code": e.procedure_code,
        "dossier_id": e.dossier_id,
        "purpose": e.purpose,
        "citizen_pseudonym": e.citizen_pseudonym,
        "citizen_masked_id": e.citizen_masked_id,
        "fields_disclosed": e.fields_disclosed,
        "outcome_code": e.outcome_code,
        "outcome_reason": e.outcome_reason,
        "outcome_message": e.outcome_message,
        "latency_us": e.latency_us,
        "prev_hash": hex(&r.prev_hash),
        "hash": hex(&r.hash),
    })
}

pub fn checkpoint(c: &Checkpoint) -> Value {
    json!({
        "chain_id": c.chain_id,
        "sequence": c.sequence,
        "record_hash": hex(&c.record_hash),
        "time_us": c.time_us,
        "key_id": c.key_id,
        "signature": hex(&c.signature),
    })
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)?.as_str().map(str::to_owned)
}

fn list(v: &Value, k: &str) -> Option<Vec<String>> {
    v.get(k)?
        .as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

fn bytes<const N: usize>(v: &Value, k: &str) -> Option<[u8; N]> {
    let text = s(v, k)?;
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub fn record_from(v: &Value) -> Option<Record> {
    Some(Record {
        chain_id: s(v, "chain_id")?,
        sequence: v.get("sequence")?.as_u64()?,
        entry: Entry {
            time_us: v.get("time_us")?.as_i64()?,
            request_id: s(v, "request_id")?,
            unit_code: s(v, "unit_code")?,
            cert_fingerprint: s(v, "cert_fingerprint")?,
            peer_address: s(v, "peer_address")?,
            officer_code: s(v, "officer_code")?,
            roles: list(v, "roles")?,
            method: s(v, "method")?,
            procedure_code: s(v, "procedure_code")?,
            dossier_id: s(v, "dossier_id")?,
            purpose: s(v, "purpose")?,
            citizen_pseudonym: s(v, "citizen_pseudonym")?,
            citizen_masked_id: s(v, "citizen_masked_id")?,
            fields_disclosed: list(v, "fields_disclosed")?,
            outcome_code: i32::try_from(v.get("outcome_code")?.as_i64()?).ok()?,
            outcome_reason: s(v, "outcome_reason")?,
            outcome_message: s(v, "outcome_message")?,
            latency_us: v.get("latency_us")?.as_u64()?,
        },
        prev_hash: parse_hash(&s(v, "prev_hash")?)?,
        hash: parse_hash(&s(v, "hash")?)?,
    })
}

pub fn checkpoint_from(v: &Value) -> Option<Checkpoint> {
    Some(Checkpoint {
        chain_id: s(v, "chain_id")?,
        sequence: v.get("sequence")?.as_u64()?,
        record_hash: parse_hash(&s(v, "record_hash")?)?,
        time_us: v.get("time_us")?.as_i64()?,
        key_id: s(v, "key_id")?,
        signature: bytes::<64>(v, "signature")?,
    })
}

/// One line of an export: `{"record": …}` or `{"checkpoint": …}`.
pub fn export_line(item: &Item) -> Value {
    match item {
        Item::Record(r) => json!({ "record": record(r) }),
        Item::Checkpoint(c) => json!({ "checkpoint": checkpoint(c) }),
    }
}

pub fn item_from(v: &Value) -> Option<Item> {
    if let Some(r) = v.get("record") {
        record_from(r).map(Item::Record)
    } else {
        v.get("checkpoint")
            .and_then(checkpoint_from)
            .map(Item::Checkpoint)
    }
}
