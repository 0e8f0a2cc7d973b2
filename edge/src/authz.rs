//! Authorization of an authenticated identity: scopes, roles at a claim path, claim values.

use crate::settings::AuthorizeSettings;
use serde_json::Value;

use crate::identity::Identity;

/// Whether `value` (or, for an array, one of its items) equals `want`.
fn holds(value: &Value, want: &Value) -> bool {
    match value {
        Value::Array(items) if !want.is_array() => items.contains(want),
        v => v == want,
    }
}

/// Checks every rule; the error says which failed (for `error_description`).
pub fn authorize(rules: &AuthorizeSettings, id: &Identity) -> Result<(), String> {
    if let Some(missing) = rules.scopes.all_of.iter().find(|s| !id.has_scope(s)) {
        return Err(format!("missing scope {missing}"));
    }
    if !rules.scopes.any_of.is_empty() && !rules.scopes.any_of.iter().any(|s| id.has_scope(s)) {
        return Err(format!(
            "requires one of the scopes {}",
            rules.scopes.any_of.join(" ")
        ));
    }
    if let Some(roles) = &rules.roles {
        let ok = id.claim(&roles.claim).is_some_and(|held| {
            roles
                .any_of
                .iter()
                .any(|r| holds(held, &Value::String(r.clone())))
        });
        if !ok {
            return Err(format!(
                "requires one of the roles {}",
                roles.any_of.join(" ")
            ));
        }
    }
    for (path, want) in &rules.claims {
        if !id.claim(path).is_some_and(|v| holds(v, want)) {
            return Err(format!("claim {path} does not have the required value"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{RoleRule, ScopeRule};
    use serde_json::json;

    fn id() -> Identity {
        Identity::from_claims(json!({
            "sub": "alice", "iss": "idp", "scope": "orders:read orders:write",
            "realm_access": {"roles": ["user", "auditor"]}, "tenant": "acme", "azp": "web"
        }))
    }

    #[test]
    fn scopes_roles_claims() {
        let id = id();
        assert_eq!(id.client_id.as_deref(), Some("web"));
        let mut rules = AuthorizeSettings {
            scopes: ScopeRule {
                all_of: vec!["orders:read".into()],
                any_of: vec!["x".into(), "orders:write".into()],
            },
            roles: Some(RoleRule {
                claim: "realm_access.roles".into(),
                any_of: vec!["admin".into(), "auditor".into()],
            }),
            ..Default::default()
        };
        rules.claims.insert("tenant".into(), json!("acme"));
        assert_eq!(authorize(&rules, &id), Ok(()));
        rules.scopes.all_of.push("admin".into());
        assert!(authorize(&rules, &id).is_err());
        rules.scopes.all_of.pop();
        rules.claims.insert("tenant".into(), json!("other"));
        assert!(authorize(&rules, &id).is_err());
        rules.claims.clear();
        if let Some(r) = rules.roles.as_mut() {
            r.any_of = vec!["admin".into()];
        }
        assert!(authorize(&rules, &id).is_err());
    }
}
