//! What `lienthong-dev call` prints for people: records and forms as tables with Vietnamese
//! labels, dates as dd/mm/yyyy, each field's source and date, verification results in words,
//! and the audit receipt of the reply. (`--json` prints the protobuf JSON mapping instead.)

use lienthong_proto::csdl::v1 as csdl;
use lienthong_proto::gateway::v1 as pb;
use serde_json::Value;
use std::fmt::Write;

/// The citizen fields in the contract's order.
const ORDER: &[&str] = &[
    "personal_id",
    "old_id_number",
    "previous_old_id_numbers",
    "full_name",
    "date_of_birth",
    "gender",
    "nationality",
    "ethnicity",
    "religion",
    "place_of_birth",
    "place_of_origin",
    "permanent_address",
    "temporary_address",
    "current_address",
    "household",
    "father",
    "mother",
    "spouse",
    "marital_status",
    "card",
    "phone",
    "eid_level",
    "health_insurance_number",
    "life_status",
];

/// The Vietnamese label of a citizen field, as the forms write it.
pub fn label(field: &str) -> &str {
    match field {
        "personal_id" => "Số định danh cá nhân",
        "old_id_number" => "Số CMND cũ (9 số)",
        "previous_old_id_numbers" => "Số CMND đã được cấp trước đó",
        "full_name" => "Họ, chữ đệm và tên",
        "date_of_birth" => "Ngày, tháng, năm sinh",
        "gender" => "Giới tính",
        "nationality" => "Quốc tịch",
        "ethnicity" => "Dân tộc",
        "religion" => "Tôn giáo",
        "place_of_birth" => "Nơi đăng ký khai sinh",
        "place_of_origin" => "Quê quán",
        "permanent_address" => "Nơi thường trú",
        "temporary_address" => "Nơi tạm trú",
        "current_address" => "Nơi ở hiện tại",
        "household" => "Hộ gia đình",
        "father" => "Cha",
        "mother" => "Mẹ",
        "spouse" => "Vợ/chồng",
        "marital_status" => "Tình trạng hôn nhân",
        "card" => "Thẻ Căn cước / CCCD",
        "phone" => "Số điện thoại",
        "eid_level" => "Tài khoản định danh điện tử",
        "health_insurance_number" => "Mã số BHXH",
        "life_status" => "Tình trạng (còn sống / đã chết)",
        other => other,
    }
}

/// `{"day":14,"month":3,"year":1988}` → `14/03/1988` (or `03/1988`, `1988` when partial).
fn date(v: &Value) -> Option<String> {
    let part = |k: &str| v.get(k).and_then(Value::as_u64).filter(|n| *n > 0);
    let year = part("year")?;
    Some(match (part("month"), part("day")) {
        (Some(m), Some(d)) => format!("{d:02}/{m:02}/{year}"),
        (Some(m), None) => format!("{m:02}/{year}"),
        _ => year.to_string(),
    })
}

/// An RFC 3339 time → `dd/mm/yyyy`.
fn day_of(time: &str) -> String {
    match (time.get(0..4), time.get(5..7), time.get(8..10)) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => time.to_owned(),
    }
}

/// A value in words: dates as dd/mm/yyyy, enums without their prefix, addresses formatted,
/// people by name and ID, nested records as `key: value` pairs.
fn words(v: &Value) -> String {
    match v {
        Value::String(s) => enum_word(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "có" } else { "không" }.to_owned(),
        Value::Array(items) => items.iter().map(words).collect::<Vec<_>>().join("; "),
        Value::Object(o) => {
            if let Some(d) = date(v) {
                return d;
            }
            if let Some(f) = o.get("formatted").and_then(Value::as_str) {
                return f.to_owned();
            }
            if let Some(name) = o.get("fullName").and_then(Value::as_str) {
                let id = o.get("personalId").and_then(Value::as_str).unwrap_or("");
                return if id.is_empty() {
                    name.to_owned()
                } else {
                    format!("{name} ({id})")
                };
            }
            o.iter()
                .map(|(k, v)| format!("{k}: {}", words(v)))
                .collect::<Vec<_>>()
                .join(", ")
        }
        Value::Null => String::new(),
    }
}

/// `CARD_STATUS_VALID` → `VALID`; other strings as they are.
fn enum_word(s: &str) -> String {
    let upper = s
        .chars()
        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
    if upper && s.contains('_') {
        for prefix in [
            "CARD_STATUS_",
            "CARD_TYPE_",
            "GENDER_",
            "MARITAL_STATUS_",
            "EID_LEVEL_",
            "RELATION_",
            "LIFE_STATUS_",
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }
    s.to_owned()
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A citizen record: one row per field served, with where it came from and when.
pub fn citizen(c: &csdl::Citizen) -> String {
    let json = serde_json::to_value(c).unwrap_or(Value::Null);
    let mut out = String::new();
    let Value::Object(fields) = &json else {
        return out;
    };
    // In the order of the record (the contract's field order), not of the JSON object.
    let mut rows: Vec<(&String, &Value)> =
        fields.iter().filter(|(k, _)| *k != "provenance").collect();
    rows.sort_by_key(|(k, _)| {
        ORDER
            .iter()
            .position(|f| *f == snake(k))
            .unwrap_or(usize::MAX)
    });
    for (key, value) in rows {
        let field = snake(key);
        let source = c
            .provenance
            .iter()
            .find(|p| p.field == field)
            .map(|p| {
                let when = p
                    .updated_at
                    .as_ref()
                    .and_then(|t| serde_json::to_value(t).ok())
                    .and_then(|t| t.as_str().map(day_of))
                    .unwrap_or_default();
                format!("  [{} {when}]", p.source)
            })
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<32} {}{source}", label(&field), words(value));
    }
    out
}

/// A lookup's reply.
pub fn lookup(r: &pb::LookupCitizenResponse) -> String {
    let mut out = r.citizen.as_ref().map(citizen).unwrap_or_default();
    let _ = writeln!(
        out,
        "  ({} fields disclosed: {})",
        r.disclosed_fields.len(),
        r.disclosed_fields.join(", ")
    );
    out
}

/// A verification's reply: the overall result and each field's, in words.
pub fn verification(r: &pb::VerifyCitizenResponse) -> String {
    let overall = pb::OverallResult::try_from(r.result)
        .map(|o| o.as_str_name().trim_start_matches("OVERALL_RESULT_"))
        .unwrap_or("?");
    let mut out = format!("  overall: {overall}\n");
    for f in &r.fields {
        let result = pb::FieldResult::try_from(f.result)
            .map(|r| r.as_str_name().trim_start_matches("FIELD_RESULT_"))
            .unwrap_or("?");
        let _ = writeln!(
            out,
            "  {:<32} {result:<26} {}",
            label(&f.field),
            f.explanation_vi
        );
    }
    if r.subject_deceased {
        out.push_str("  ! the record shows the citizen as deceased (công dân đã chết)\n");
    }
    out
}

/// A filled form: what was filled, from where, and what the officer still enters (✗).
pub fn form(r: &pb::AutofillFormResponse) -> String {
    let mut out = format!("  form {} for procedure {}\n", r.form_id, r.procedure_code);
    for f in &r.filled {
        let source = f
            .provenance
            .as_ref()
            .map(|p| format!("  [{} ← {}]", f.attribute, p.source))
            .unwrap_or_else(|| format!("  [{}]", f.attribute));
        let _ = writeln!(out, "  ✓ {:<50} {}{source}", f.label, f.value);
    }
    for u in &r.unfilled {
        let _ = writeln!(out, "  ✗ {:<50} {}", u.label, u.explanation_vi);
    }
    out
}

/// A household: its number, head, address and members.
pub fn household(r: &pb::GetHouseholdResponse) -> String {
    let Some(h) = &r.household else {
        return "  (no household)\n".into();
    };
    let json = serde_json::to_value(h).unwrap_or(Value::Null);
    let mut out = format!(
        "  household {}  head {} ({})\n  address {}\n",
        h.household_id,
        h.head_full_name,
        h.head_personal_id,
        json.get("address").map(words).unwrap_or_default()
    );
    for m in json
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "  - {}", words(m));
    }
    out
}

/// The catalog: each procedure, whether this officer may use it (✗ when not), its fields.
pub fn procedures(r: &pb::ListProceduresResponse) -> String {
    let mut out =
        String::from("  (✗: not available to this unit and officer; the call would be refused)\n");
    for p in &r.procedures {
        let _ = writeln!(
            out,
            "  {:<12} {} {}\n               roles {}; fields {}",
            p.code,
            if p.available { " " } else { "✗" },
            p.name,
            p.roles.join(", "),
            p.allowed_fields.join(", ")
        );
    }
    out
}

/// The audit receipt a reply carried, in one line.
pub fn receipt(metadata: &tonic::metadata::MetadataMap) -> String {
    let get = |k: &str| metadata.get(k).and_then(|v| v.to_str().ok()).unwrap_or("?");
    format!(
        "audit receipt: chain {} sequence {} hash {}",
        get("x-audit-chain"),
        get("x-audit-sequence"),
        get("x-audit-hash")
    )
}

/// An update sent back to the database: its id, field, value, status and, when rejected, why.
pub fn update(u: Option<&csdl::DataUpdate>) -> String {
    let Some(u) = u else {
        return "(no update in the reply)".into();
    };
    let status = csdl::UpdateStatus::try_from(u.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("UPDATE_STATUS_")
                .to_owned()
        })
        .unwrap_or_else(|_| u.status.to_string());
    let mut out = format!(
        "{}  {}  {} = {}  (from {}, dossier {})",
        u.update_id, status, u.field, u.value, u.source_system, u.dossier_id
    );
    if !u.reason.is_empty() {
        out.push_str(&format!("\n  {}\n  {}", u.reason, u.reason_vi));
    }
    out
}

/// A bundle case: its steps with their agency, status, what was entered and recorded; then the
/// form of the call, when it has one.
pub fn bundle(r: &pb::BundleResponse) -> String {
    let Some(c) = &r.case else {
        return "(no case in the reply)".into();
    };
    let mut out = format!(
        "{}  subject {}  dossier {}{}",
        c.case_id,
        c.subject_personal_id,
        c.dossier_id,
        if c.completed { "  COMPLETED" } else { "" }
    );
    for s in &c.steps {
        let status = csdl::StepStatus::try_from(s.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("STEP_STATUS_")
                    .to_owned()
            })
            .unwrap_or_else(|_| s.status.to_string());
        out.push_str(&format!(
            "\n  {}  {status:<17} {}",
            s.procedure_code, s.agency_vi
        ));
        if !s.subject_personal_id.is_empty() && s.subject_personal_id != c.subject_personal_id {
            out.push_str(&format!("  (về {})", s.subject_personal_id));
        }
        if !s.acted_by.is_empty() {
            out.push_str(&format!("  by {}", s.acted_by));
        }
        for e in &s.entered {
            out.push_str(&format!("\n      entered  {} = {}", e.key, e.value));
        }
        for o in &s.outcome {
            out.push_str(&format!("\n      recorded {} = {}", o.key, o.value));
        }
        if !s.reason.is_empty() {
            out.push_str(&format!(
                "\n      rejected: {}\n      {}",
                s.reason, s.reason_vi
            ));
        }
    }
    if let Some(filled) = &r.form {
        out.push('\n');
        out.push_str(&form(filled));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_enums_and_people_read_as_people_write_them() {
        assert_eq!(
            date(&serde_json::json!({"day": 5, "month": 1, "year": 2000})).unwrap(),
            "05/01/2000"
        );
        assert_eq!(
            date(&serde_json::json!({"month": 5, "year": 1952})).unwrap(),
            "05/1952"
        );
        assert_eq!(date(&serde_json::json!({"year": 1948})).unwrap(), "1948");
        assert_eq!(enum_word("CARD_STATUS_VALID"), "VALID");
        assert_eq!(enum_word("Kinh"), "Kinh");
        assert_eq!(day_of("2021-10-13T10:50:09+00:00"), "13/10/2021");
        assert_eq!(
            words(&serde_json::json!({"fullName": "Lê Văn Hùng", "personalId": "042085999001"})),
            "Lê Văn Hùng (042085999001)"
        );
        assert_eq!(snake("dateOfBirth"), "date_of_birth");
        assert_eq!(label("date_of_birth"), "Ngày, tháng, năm sinh");
    }
}
