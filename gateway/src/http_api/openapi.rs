//! The OpenAPI 3.1 document of the HTTP/JSON API, generated from the contract's descriptors
//! (the same `FileDescriptorSet` gRPC reflection serves): one path per operation of
//! `CitizenGateway`, one schema per message in the protobuf JSON mapping, the comments of the
//! `.proto` files as descriptions. Nothing in it is written by hand but the refusal schema.

use super::transcode::{BATCH, OPERATIONS, SERVICE};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The document.
pub fn document() -> Value {
    let Ok(set) = FileDescriptorSet::decode(lienthong_proto::FILE_DESCRIPTOR_SET) else {
        return json!({"openapi": "3.1.0", "info": {"title": "unavailable", "version": "0"}});
    };
    Contract::new(&set).document()
}

/// The contract's messages and enums by full name (`.package.Name`), with their comments.
struct Contract<'a> {
    messages: BTreeMap<String, (&'a DescriptorProto, Comments)>,
    enums: BTreeMap<String, (&'a EnumDescriptorProto, String)>,
    methods: BTreeMap<String, (String, String, String)>,
}

/// A message's comment and its fields' comments.
#[derive(Default, Clone)]
struct Comments {
    message: String,
    fields: BTreeMap<usize, String>,
}

impl<'a> Contract<'a> {
    fn new(set: &'a FileDescriptorSet) -> Self {
        let mut me = Self {
            messages: BTreeMap::new(),
            enums: BTreeMap::new(),
            methods: BTreeMap::new(),
        };
        for file in &set.file {
            let comments = comments_of(file);
            let package = format!(".{}", file.package());
            for (i, m) in file.message_type.iter().enumerate() {
                me.add_message(&package, m, &[4, i as i32], &comments);
            }
            for (i, e) in file.enum_type.iter().enumerate() {
                let name = format!("{package}.{}", e.name());
                let text = comments
                    .get(&vec![5, i as i32])
                    .cloned()
                    .unwrap_or_default();
                me.enums.insert(name, (e, text));
            }
            for (s, service) in file.service.iter().enumerate() {
                for (m, method) in service.method.iter().enumerate() {
                    let text = comments
                        .get(&vec![6, s as i32, 2, m as i32])
                        .cloned()
                        .unwrap_or_default();
                    me.methods.insert(
                        format!("{package}.{}/{}", service.name(), method.name()),
                        (
                            method.input_type().to_owned(),
                            method.output_type().to_owned(),
                            text,
                        ),
                    );
                }
            }
        }
        me
    }

    fn add_message(
        &mut self,
        scope: &str,
        m: &'a DescriptorProto,
        path: &[i32],
        comments: &BTreeMap<Vec<i32>, String>,
    ) {
        let name = format!("{scope}.{}", m.name());
        let mut c = Comments {
            message: comments.get(path).cloned().unwrap_or_default(),
            ..Default::default()
        };
        for i in 0..m.field.len() {
            let mut p = path.to_vec();
            p.extend([2, i as i32]);
            if let Some(text) = comments.get(&p) {
                c.fields.insert(i, text.clone());
            }
        }
        for (i, nested) in m.nested_type.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([3, i as i32]);
            self.add_message(&name, nested, &p, comments);
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([4, i as i32]);
            let text = comments.get(&p).cloned().unwrap_or_default();
            self.enums.insert(format!("{name}.{}", e.name()), (e, text));
        }
        self.messages.insert(name, (m, c));
    }

    fn document(&self) -> Value {
        let mut paths = Map::new();
        let mut wanted = BTreeSet::new();
        for op in OPERATIONS {
            let Some((input, output, text)) = self.methods.get(&format!(".{SERVICE}/{op}")) else {
                continue;
            };
            let (request, reply) = if *op == BATCH {
                (
                    json!({"type": "array", "minItems": 1, "items": schema_ref(input)}),
                    json!({"type": "array", "items": schema_ref(output)}),
                )
            } else {
                (schema_ref(input), schema_ref(output))
            };
            wanted.insert(input.clone());
            wanted.insert(output.clone());
            let batch_note = if *op == BATCH {
                " The body is a JSON array of requests, at most the unit's batch_max_items; the reply is the array of results in the same order."
            } else {
                ""
            };
            paths.insert(
                format!("/v1/{op}"),
                json!({"post": {
                    "operationId": op,
                    "summary": text.lines().next().unwrap_or(op),
                    "description": format!("{text}{batch_note}\n\nThe gRPC method {SERVICE}/{op}, through the same checks and audit."),
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": request}},
                    },
                    "responses": {
                        "200": {
                            "description": "Served. The headers carry the call's audit receipt.",
                            "headers": receipt_headers(),
                            "content": {"application/json": {"schema": reply}},
                        },
                        "default": {
                            "description": "Refused: an RFC 9457 problem with the gateway's reason, details and Vietnamese message; the status follows the gRPC code (400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 413 and 429 RESOURCE_EXHAUSTED, 415 not JSON, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED).",
                            "headers": receipt_headers(),
                            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                        },
                    },
                }}),
            );
        }
        let mut schemas = Map::new();
        let mut enums = BTreeSet::new();
        let mut todo: Vec<String> = wanted.into_iter().collect();
        while let Some(name) = todo.pop() {
            if schemas.contains_key(&schema_name(&name)) {
                continue;
            }
            let Some((m, comments)) = self.messages.get(&name) else {
                continue;
            };
            let (schema, refs, enum_refs) = self.message_schema(m, comments);
            schemas.insert(schema_name(&name), schema);
            todo.extend(refs);
            enums.extend(enum_refs);
        }
        for name in enums {
            if let Some((e, text)) = self.enums.get(&name) {
                schemas.insert(schema_name(&name), enum_schema(e, text));
            }
        }
        schemas.insert("Problem".into(), problem_schema());
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Liên Thông gateway — HTTP/JSON API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "The operations of lienthong.gateway.v1.CitizenGateway over HTTP/JSON, generated from the contract (proto/). Bodies use the protobuf JSON mapping: lowerCamelCase names, enums as their names, 64-bit integers as strings. Every call needs the unit's client certificate (mutual TLS) and the officer's token, and leaves an audit record whose receipt is in the response headers.",
                "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            },
            "servers": [{"url": "/"}],
            "security": [{"mutualTLS": [], "officerToken": []}],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "mutualTLS": {"type": "mutualTLS", "description": "The unit's client certificate, naming the unit in the URI SAN urn:lienthong:unit:<code>."},
                    "officerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "The officer's token, bound to the unit's certificate (cnf.x5t#S256)."},
                },
            },
        })
    }

    /// A message's schema, the messages and the enums it refers to.
    fn message_schema(
        &self,
        m: &DescriptorProto,
        comments: &Comments,
    ) -> (Value, Vec<String>, Vec<String>) {
        let mut properties = Map::new();
        let mut refs = Vec::new();
        let mut enum_refs = Vec::new();
        let mut oneofs: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for (i, f) in m.field.iter().enumerate() {
            let name = f.json_name().to_owned();
            let mut schema = match f.r#type() {
                Type::Message if f.type_name() == ".google.protobuf.Timestamp" => {
                    json!({"type": "string", "format": "date-time"})
                }
                Type::Message => {
                    refs.push(f.type_name().to_owned());
                    schema_ref(f.type_name())
                }
                Type::Enum => {
                    enum_refs.push(f.type_name().to_owned());
                    schema_ref(f.type_name())
                }
                Type::String => json!({"type": "string"}),
                Type::Bool => json!({"type": "boolean"}),
                Type::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
                Type::Double | Type::Float => json!({"type": "number"}),
                Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
                    json!({"type": "integer", "format": "int32", "minimum": i32::MIN, "maximum": i32::MAX})
                }
                Type::Uint32 | Type::Fixed32 => {
                    json!({"type": "integer", "format": "int32", "minimum": 0, "maximum": u32::MAX})
                }
                Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
                    json!({"type": ["string", "integer"], "pattern": "^-?[0-9]+$", "format": "int64"})
                }
                Type::Group => json!({}),
            };
            if f.label() == Label::Repeated {
                schema = json!({"type": "array", "items": schema});
            }
            if let Some(text) = comments.fields.get(&i)
                && let Value::Object(o) = &mut schema
            {
                // Beside a $ref too: in OpenAPI 3.1 keywords next to it apply.
                o.insert("description".into(), Value::String(text.clone()));
            }
            if let Some(index) = f.oneof_index
                && !f.proto3_optional()
            {
                oneofs.entry(index).or_default().push(name.clone());
            }
            properties.insert(name, schema);
        }
        let mut schema = json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
        });
        let mut description = comments.message.clone();
        for members in oneofs.values() {
            if members.len() > 1 {
                description.push_str(&format!(
                    "\n\nAt most one of {} may be set.",
                    members.join(", ")
                ));
            }
        }
        if !description.is_empty()
            && let Value::Object(o) = &mut schema
        {
            o.insert(
                "description".into(),
                Value::String(description.trim().into()),
            );
        }
        (schema, refs, enum_refs)
    }
}

fn enum_schema(e: &EnumDescriptorProto, text: &str) -> Value {
    let names: Vec<&str> = e.value.iter().map(|v| v.name()).collect();
    let numbers: Vec<i32> = e.value.iter().map(|v| v.number()).collect();
    json!({
        "description": format!("{text}\n\nWritten as the name; a number is accepted on input.").trim(),
        "anyOf": [
            {"type": "string", "enum": names},
            {"type": "integer", "enum": numbers},
        ],
    })
}

fn problem_schema() -> Value {
    let text = |d: &str| json!({"type": "string", "description": d});
    json!({
        "type": "object",
        "description": "A refusal (RFC 9457): what the gRPC status and its google.rpc details say.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": text("urn:lienthong:problem:<REASON>"),
            "title": text("The reason, or the gRPC code when there is none."),
            "status": {"type": "integer", "description": "The HTTP status."},
            "detail": text("What was wrong and what to do, in English."),
            "code": text("The gRPC status code's name, e.g. PERMISSION_DENIED."),
            "reason": text("The ErrorInfo reason, e.g. ROLE_NOT_ALLOWED."),
            "domain": text("The ErrorInfo domain, lienthong.gov.vn."),
            "message_vi": text("The LocalizedMessage, in Vietnamese (vi-VN)."),
            "field_violations": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}},
            "quota_violations": {"type": "array", "items": {"type": "object", "properties": {"subject": {"type": "string"}, "description": {"type": "string"}}}},
            "retry_after_ms": {"type": "integer", "minimum": 0, "description": "RetryInfo: wait this long before trying again (also the Retry-After header, in seconds)."},
            "audit": {"type": "object", "description": "The call's audit receipt.", "properties": {"chain": {"type": "string"}, "sequence": {"type": "string"}, "hash": {"type": "string"}}},
            "results": {"type": "array", "description": "VerifyBatch: the items answered before the stream was refused."},
        },
    })
}

fn receipt_headers() -> Value {
    let header = |d: &str| json!({"description": d, "schema": {"type": "string"}});
    json!({
        "x-audit-chain": header("The audit chain of the gateway instance."),
        "x-audit-sequence": header("The record's sequence in that chain."),
        "x-audit-hash": header("The record's hash, lowercase hex."),
    })
}

/// `.lienthong.gateway.v1.Claim` → `lienthong.gateway.v1.Claim`.
fn schema_name(full: &str) -> String {
    full.trim_start_matches('.').to_owned()
}

fn schema_ref(full: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", schema_name(full))})
}

/// The leading comments of a file's elements, by their source path.
fn comments_of(file: &FileDescriptorProto) -> BTreeMap<Vec<i32>, String> {
    let mut out = BTreeMap::new();
    if let Some(info) = &file.source_code_info {
        for l in &info.location {
            if let Some(text) = &l.leading_comments {
                let text: Vec<&str> = text.lines().map(str::trim).collect();
                let text = text.join("\n").trim().to_owned();
                if !text.is_empty() {
                    out.insert(l.path.clone(), text);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_every_message_it_reaches_is_described() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for op in OPERATIONS {
            let post = &doc["paths"][format!("/v1/{op}")]["post"];
            assert_eq!(post["operationId"], *op, "{op}");
            assert!(post["responses"]["default"].is_object());
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let lookup = &schemas["lienthong.gateway.v1.LookupCitizenRequest"];
        assert_eq!(
            lookup["properties"]["personalId"]["type"], "string",
            "{lookup}"
        );
        assert!(
            lookup["description"]
                .as_str()
                .unwrap()
                .contains("At most one of personalId, oldIdNumber")
        );
        // Every reference resolves.
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referred to but absent"
            );
        }
        // Comments of the contract are the descriptions.
        assert!(
            schemas["lienthong.gateway.v1.Claim"]["properties"]["field"]["description"]
                .as_str()
                .unwrap()
                .contains("full_name")
        );
        // The timestamp is a string in JSON.
        assert!(text.contains("\"date-time\""));
    }
}
