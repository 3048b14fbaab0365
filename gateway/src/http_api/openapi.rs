//! The OpenAPI 3.1 document of the HTTP/JSON API, generated from the contract's descriptors.
pub fn document() -> serde_json::Value {
    serde_json::json!({})
}
