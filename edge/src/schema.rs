//! JSON Schema validation of request bodies (the `jsonschema` crate, drafts 4 to 2020-12).
//!
//! Schemas are compiled once per load; `$ref`s to other files or URLs are not fetched (a
//! gateway should not reach out to the network because of a schema), so a schema must be
//! self-contained. Only POST, PUT and PATCH bodies are checked: the methods that carry a
//! document to create or change.

use std::path::Path;

use bytes::Bytes;
use gatehouse_common::body::ProxyBody;
use gatehouse_common::ctx::RequestCtx;
use gatehouse_common::filter::CheckBody;
use http::request::Parts;
use http::{Method, Response, StatusCode, header};

use crate::reply::problem;

/// A compiled schema and the file it came from (for log lines).
pub struct JsonSchema {
    validator: jsonschema::Validator,
    file: String,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl JsonSchema {
    /// Reads and compiles `file`; the error says why in one line.
    pub fn load(file: &Path) -> Result<JsonSchema, String> {
        let text =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let schema: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("{} is not a valid JSON Schema: {e}", file.display()))?;
        Ok(JsonSchema {
            validator,
            file: file.display().to_string(),
        })
    }

    /// Whether this request's body is checked.
    pub fn applies_to(method: &Method) -> bool {
        matches!(*method, Method::POST | Method::PUT | Method::PATCH)
    }

    /// `application/json` or any `+json` type, parameters ignored.
    pub fn is_json(parts: &Parts) -> bool {
        let Some(ct) = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let essence = essence.to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    }
}

impl CheckBody for JsonSchema {
    fn check(
        &self,
        ctx: &RequestCtx,
        _parts: &Parts,
        body: &Bytes,
    ) -> Result<(), Response<ProxyBody>> {
        // The log names where the body failed, never what it held (it may carry secrets).
        let bad = |slug: &str, at: &str, detail: String| {
            tracing::info!(schema = %self.file, at, "request body refused");
            problem(
                ctx,
                StatusCode::BAD_REQUEST,
                slug,
                "Invalid request body",
                detail,
            )
        };
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            bad(
                "invalid-json",
                "",
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        match self.validator.iter_errors(&value).next() {
            None => Ok(()),
            Some(err) => {
                let at = err.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                Err(bad("schema-violation", &at, format!("at {at}: {err}")))
            }
        }
    }
}
