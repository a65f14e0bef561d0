//! The JSON bodies of the node's and the registry's HTTP answers, written by serde_json.

use serde::Serialize;

/// `value` as JSON: records of strings, integers and booleans, which always serialize.
pub(crate) fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("records of strings, integers and booleans always serialize")
}

/// A refusal's body: `{"error": MESSAGE}`.
pub(crate) fn error_json(message: &str) -> String {
    to_json(&serde_json::json!({ "error": message }))
}
