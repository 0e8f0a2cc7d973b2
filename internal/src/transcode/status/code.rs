//! gRPC status codes: their names, and the tables between them and HTTP statuses (both ways).

use http::StatusCode;

/// The canonical gRPC codes (`google.rpc.Code`), as the `i32` they travel as.
pub const OK: i32 = 0;
pub const CANCELLED: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const INVALID_ARGUMENT: i32 = 3;
pub const DEADLINE_EXCEEDED: i32 = 4;
pub const NOT_FOUND: i32 = 5;
pub const ALREADY_EXISTS: i32 = 6;
pub const PERMISSION_DENIED: i32 = 7;
pub const RESOURCE_EXHAUSTED: i32 = 8;
pub const FAILED_PRECONDITION: i32 = 9;
pub const ABORTED: i32 = 10;
pub const OUT_OF_RANGE: i32 = 11;
pub const UNIMPLEMENTED: i32 = 12;
pub const INTERNAL: i32 = 13;
pub const UNAVAILABLE: i32 = 14;
pub const DATA_LOSS: i32 = 15;
pub const UNAUTHENTICATED: i32 = 16;

/// The name of a code as `google.rpc.Code` spells it (`NOT_FOUND`), for logs and docs.
///
/// A number outside the table is named `UNKNOWN`: that is how gRPC libraries treat a code they do
/// not know, and [`http_status`] answers it the same way (500).
pub fn code_name(code: i32) -> &'static str {
    match code {
        OK => "OK",
        CANCELLED => "CANCELLED",
        INVALID_ARGUMENT => "INVALID_ARGUMENT",
        DEADLINE_EXCEEDED => "DEADLINE_EXCEEDED",
        NOT_FOUND => "NOT_FOUND",
        ALREADY_EXISTS => "ALREADY_EXISTS",
        PERMISSION_DENIED => "PERMISSION_DENIED",
        RESOURCE_EXHAUSTED => "RESOURCE_EXHAUSTED",
        FAILED_PRECONDITION => "FAILED_PRECONDITION",
        ABORTED => "ABORTED",
        OUT_OF_RANGE => "OUT_OF_RANGE",
        UNIMPLEMENTED => "UNIMPLEMENTED",
        INTERNAL => "INTERNAL",
        UNAVAILABLE => "UNAVAILABLE",
        DATA_LOSS => "DATA_LOSS",
        UNAUTHENTICATED => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// The HTTP status a REST client gets for a gRPC code: the table Envoy and grpc-gateway use
/// (issue 15). A code outside the table is a 500, as `UNKNOWN` is.
///
/// A response without any `grpc-status` is not a code: the caller makes it
/// [`Status::missing`](super::Status::missing) (`UNAVAILABLE`), hence 503.
pub fn http_status(code: i32) -> StatusCode {
    match code {
        OK => StatusCode::OK,
        // 499 "Client Closed Request" (nginx) has no constant; it is a valid status code.
        CANCELLED => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        INVALID_ARGUMENT | FAILED_PRECONDITION | OUT_OF_RANGE => StatusCode::BAD_REQUEST,
        DEADLINE_EXCEEDED => StatusCode::GATEWAY_TIMEOUT,
        NOT_FOUND => StatusCode::NOT_FOUND,
        ALREADY_EXISTS | ABORTED => StatusCode::CONFLICT,
        PERMISSION_DENIED => StatusCode::FORBIDDEN,
        RESOURCE_EXHAUSTED => StatusCode::TOO_MANY_REQUESTS,
        UNIMPLEMENTED => StatusCode::NOT_IMPLEMENTED,
        UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR, // UNKNOWN, INTERNAL, DATA_LOSS, anything else
    }
}

/// The gRPC code a gRPC client gets when the REST service behind a reverse binding answers
/// `status`.
///
/// This is not gRPC's own HTTP→gRPC table (`doc/http-grpc-status-mapping.md`, which Envoy
/// follows): that one is for a gRPC client that reached something which is not a gRPC server, so
/// it reads 404 as "no such method" (`UNIMPLEMENTED`) and 400 as a broken exchange (`INTERNAL`).
/// Here the REST service *is* the application, so its statuses keep their REST meaning and the
/// table is the inverse of [`http_status`], with these choices where that inverse is ambiguous:
///
/// - **409 → `ALREADY_EXISTS`**, not `ABORTED` (Google's own HTTP→RPC table picks `ABORTED`).
///   Both are 409 going the other way. In REST a 409 is mostly "that resource already exists"
///   from a create, and the two codes fail differently when guessed wrong: `ABORTED` tells the
///   client to retry the read-modify-write, so a create that can never succeed would be retried
///   in a loop; `ALREADY_EXISTS` reported for a real concurrency conflict only costs a retry the
///   client does not make. Services that signal optimistic-concurrency failures with 412 get
///   `FAILED_PRECONDITION`, which is what gRPC prescribes for a failed `If-Match`-style check.
/// - **429 → `RESOURCE_EXHAUSTED`**, not `UNAVAILABLE` (gRPC's table). It round-trips with
///   [`http_status`], it is what Google APIs answer for quota and rate limits, and it is not
///   retried automatically by gRPC clients' retry policies the way `UNAVAILABLE` usually is:
///   immediate automatic retries are the wrong answer to "you are sending too much".
/// - 400 and 422 → `INVALID_ARGUMENT` (the general 400 of the forward table; 422 is the REST
///   validation failure), 405 → `UNIMPLEMENTED` (the service does not do that operation),
///   408 → `DEADLINE_EXCEEDED`, 410 → `NOT_FOUND`, 413 → `RESOURCE_EXHAUSTED` (gRPC's own code
///   for a message over a size limit), 416 → `OUT_OF_RANGE`, 499 → `CANCELLED`.
/// - **Other 4xx → `FAILED_PRECONDITION`**: the service refused the request as it stands and a
///   retry will not help, without saying the arguments were wrong (Google's table does the same).
/// - 500 → `INTERNAL`, 501 → `UNIMPLEMENTED`, 502 and 503 → `UNAVAILABLE` (retryable, as
///   gRPC's table says), 504 → `DEADLINE_EXCEEDED`, **other 5xx → `INTERNAL`**.
/// - 2xx → `OK`; 1xx, 3xx (the gateway follows no redirects) and anything else → `UNKNOWN`.
pub fn grpc_code_for_http(status: StatusCode) -> i32 {
    match status.as_u16() {
        200..=299 => OK,
        400 | 422 => INVALID_ARGUMENT,
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        404 | 410 => NOT_FOUND,
        405 => UNIMPLEMENTED,
        408 => DEADLINE_EXCEEDED,
        409 => ALREADY_EXISTS,
        412 => FAILED_PRECONDITION,
        413 | 429 => RESOURCE_EXHAUSTED,
        416 => OUT_OF_RANGE,
        499 => CANCELLED,
        400..=499 => FAILED_PRECONDITION,
        501 => UNIMPLEMENTED,
        502 | 503 => UNAVAILABLE,
        504 => DEADLINE_EXCEEDED,
        500..=599 => INTERNAL, // 500 itself and every other 5xx
        _ => UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_to_http_every_code() {
        let cases = [
            (OK, "OK", 200),
            (CANCELLED, "CANCELLED", 499),
            (UNKNOWN, "UNKNOWN", 500),
            (INVALID_ARGUMENT, "INVALID_ARGUMENT", 400),
            (DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", 504),
            (NOT_FOUND, "NOT_FOUND", 404),
            (ALREADY_EXISTS, "ALREADY_EXISTS", 409),
            (PERMISSION_DENIED, "PERMISSION_DENIED", 403),
            (RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", 429),
            (FAILED_PRECONDITION, "FAILED_PRECONDITION", 400),
            (ABORTED, "ABORTED", 409),
            (OUT_OF_RANGE, "OUT_OF_RANGE", 400),
            (UNIMPLEMENTED, "UNIMPLEMENTED", 501),
            (INTERNAL, "INTERNAL", 500),
            (UNAVAILABLE, "UNAVAILABLE", 503),
            (DATA_LOSS, "DATA_LOSS", 500),
            (UNAUTHENTICATED, "UNAUTHENTICATED", 401),
            // Outside the table: treated as UNKNOWN.
            (17, "UNKNOWN", 500),
            (-1, "UNKNOWN", 500),
            (i32::MAX, "UNKNOWN", 500),
        ];
        for (code, name, http) in cases {
            assert_eq!(code_name(code), name, "name of {code}");
            assert_eq!(http_status(code).as_u16(), http, "{name} ({code})");
        }
    }

    #[test]
    fn http_to_grpc_every_row() {
        let cases = [
            (200, OK),
            (201, OK),
            (204, OK),
            (299, OK),
            (400, INVALID_ARGUMENT),
            (401, UNAUTHENTICATED),
            (403, PERMISSION_DENIED),
            (404, NOT_FOUND),
            (405, UNIMPLEMENTED),
            (408, DEADLINE_EXCEEDED),
            (409, ALREADY_EXISTS),
            (410, NOT_FOUND),
            (412, FAILED_PRECONDITION),
            (413, RESOURCE_EXHAUSTED),
            (416, OUT_OF_RANGE),
            (422, INVALID_ARGUMENT),
            (429, RESOURCE_EXHAUSTED),
            (499, CANCELLED),
            // other 4xx
            (402, FAILED_PRECONDITION),
            (406, FAILED_PRECONDITION),
            (415, FAILED_PRECONDITION),
            (451, FAILED_PRECONDITION),
            (500, INTERNAL),
            (501, UNIMPLEMENTED),
            (502, UNAVAILABLE),
            (503, UNAVAILABLE),
            (504, DEADLINE_EXCEEDED),
            // other 5xx
            (505, INTERNAL),
            (507, INTERNAL),
            (599, INTERNAL),
            // neither success nor error
            (100, UNKNOWN),
            (101, UNKNOWN),
            (301, UNKNOWN),
            (304, UNKNOWN),
            (600, UNKNOWN),
            (999, UNKNOWN),
        ];
        for (http, code) in cases {
            let status = StatusCode::from_u16(http).expect("valid status in the table");
            assert_eq!(
                grpc_code_for_http(status),
                code,
                "{http} → {} expected, got {}",
                code_name(code),
                code_name(grpc_code_for_http(status))
            );
        }
    }

    /// The codes with an HTTP status of their own come back as themselves; the codes that
    /// share a status come back as the one the reverse table picked for it.
    #[test]
    fn round_trip_through_http() {
        for code in OK..=UNAUTHENTICATED {
            let back = grpc_code_for_http(http_status(code));
            let want = match code {
                FAILED_PRECONDITION | OUT_OF_RANGE => INVALID_ARGUMENT,
                ABORTED => ALREADY_EXISTS,
                UNKNOWN | DATA_LOSS => INTERNAL,
                other => other,
            };
            assert_eq!(back, want, "{}", code_name(code));
        }
    }
}
