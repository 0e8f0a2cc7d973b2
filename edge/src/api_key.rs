//! API keys: looked up by the SHA-256 of the presented key, so the config holds no key.

use std::collections::HashMap;

use http::HeaderName;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::identity::Identity;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    scopes: Vec<String>,
}

/// The known keys and where clients put them.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    pub header: HeaderName,
    pub query_param: Option<String>,
    by_hash: HashMap<[u8; 32], Entry>,
}

/// Parses a 64-digit hex SHA-256.
pub fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex SHA-256 of `key` (what goes into the config).
pub fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiKeys {
    pub fn new(header: HeaderName, query_param: Option<String>) -> Self {
        ApiKeys {
            header,
            query_param,
            by_hash: HashMap::new(),
        }
    }

    pub fn insert(&mut self, hash: [u8; 32], name: String, scopes: Vec<String>) {
        self.by_hash.insert(hash, Entry { name, scopes });
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The identity of `key`, if known: subject `api-key:<name>`, client id `<name>`.
    pub fn identify(&self, key: &str) -> Option<Identity> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let e = self.by_hash.get(&hash)?;
        Some(Identity {
            subject: format!("api-key:{}", e.name),
            issuer: None,
            scopes: e.scopes.clone(),
            client_id: Some(e.name.clone()),
            claims: Value::Object(Default::default()),
        })
    }
}
