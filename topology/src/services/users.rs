//! `users`: `GET /users/me` (the identity the mesh forwarded) and `GET /users/{id}`.

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use serde_json::json;

use super::{RestApp, only_get, segment};
use crate::respond::{Body, not_found, ok, problem};

/// The verified subject, set by the edge and passed on by the internal gateway and sidecar.
pub(crate) const X_SUBJECT: &str = "x-gatehouse-subject";
/// The subject's scopes, space- (or comma-) separated.
pub(crate) const X_SCOPES: &str = "x-gatehouse-scopes";
/// The token issuer.
pub(crate) const X_ISSUER: &str = "x-gatehouse-issuer";

/// Known users: `(id, name, email)`. The demo clients are users too, so `/users/{sub}` works
/// with the subject of any demo token.
const USERS: [(&str, &str, &str); 5] = [
    ("alice", "Alice Example", "alice@shop.example"),
    ("bob", "Bob Example", "bob@shop.example"),
    ("web-app", "Web shop front end", "web@shop.example"),
    ("mobile-app", "Mobile app", "mobile@shop.example"),
    ("partner", "Partner integration", "partner@shop.example"),
];

pub(crate) struct Users;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `{"subject", "scopes": [..], "issuer"}` from the identity headers, or 401 without a subject.
fn me(headers: &HeaderMap) -> Response<Body> {
    let Some(subject) = header(headers, X_SUBJECT) else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "No identity",
            "no x-gatehouse-subject header: call through the gateways with a token",
        );
    };
    let scopes: Vec<&str> = header(headers, X_SCOPES)
        .map(|s| s.split([' ', ',']).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    ok(&json!({
        "subject": subject,
        "scopes": scopes,
        "issuer": header(headers, X_ISSUER),
    }))
}

impl RestApp for Users {
    fn handle(&self, req: &Request<Bytes>) -> Response<Body> {
        if let Some(resp) = only_get(req) {
            return resp;
        }
        let path = req.uri().path();
        if path == "/users/me" {
            return me(req.headers());
        }
        match segment(path, "/users/") {
            Some(id) => match USERS.iter().find(|(uid, ..)| *uid == id) {
                Some((id, name, email)) => ok(&json!({"id": id, "name": name, "email": email})),
                None => not_found(&format!("no user {id}")),
            },
            None => not_found(&format!("no resource {path}")),
        }
    }
}
