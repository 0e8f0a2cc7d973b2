//! Logging set-up (`tracing`, JSON or pretty) and the per-request access-log event.

pub mod json_line;
pub mod writer;

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::ctx::RequestCtx;

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// Installs the global subscriber. `RUST_LOG` wins over `level` when set. Calling it twice is
/// harmless (tests start several binaries in one process).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Lines are written by a thread of their own (see `writer`); stderr straight from the
    // worker only if that thread cannot start.
    let writer = match writer::QueueWriter::start() {
        Ok(q) => BoxMakeWriter::new(q),
        Err(_) => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .fmt_fields(json_line::JsonSpanFields)
            .event_format(json_line::JsonLines::new())
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// One request's access-log fields.
#[derive(Debug)]
pub struct AccessLog<'a> {
    pub ctx: &'a RequestCtx,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    /// False when the response body did not reach its end (client gone, upstream reset).
    pub complete: bool,
    /// For a child request (see [`crate::forward`]): what sent it. Its `request_id` is the
    /// parent's.
    pub child: Option<&'static str>,
}

/// Emits the access-log event (target `access_log`, level INFO): one per request.
pub fn access_log(a: &AccessLog<'_>) {
    match a.child {
        None => access_event!(a, "request"),
        // A child: the same fields plus what sent it; its `request_id` is the parent's.
        Some(child) => access_event!(a, "child request", child),
    }
}

/// A value's `Display`, or `-` when there is none, without formatting into a `String` first.
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// `Version`'s `Debug` text, as a constant.
pub fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// The access-log event: one field list for the client's requests and for child requests,
/// each with a literal message.
macro_rules! access_event {
    ($a:expr, $message:literal $(, $extra:ident)?) => {{
        let a = $a;
        let ctx = a.ctx;
        tracing::info!(
            target: json_line::ACCESS_LOG_TARGET,
            request_id = ctx.request_id.to_str().unwrap_or_default(),
            trace_id = ctx.trace.trace_id_hex().as_str(),
            $($extra,)?
            listener = &*ctx.listener,
            client = %ctx.client_addr,
            peer = ctx.peer_identity.as_deref().unwrap_or("-"),
            // Strings as `&str` rather than `%`/`?`: the JSON is the same, without `fmt`.
            method = ctx.method.as_str(),
            authority = ctx.authority.as_deref().unwrap_or("-"),
            path = ctx.path.as_str(),
            version = version_str(ctx.version),
            status = a.status,
            bytes_in = a.bytes_in,
            bytes_out = a.bytes_out,
            duration_ms = a.duration.as_secs_f64() * 1000.0,
            route = ctx.route.as_deref().unwrap_or("-"),
            service = ctx.service.as_deref().unwrap_or("-"),
            upstream = %OrDash(ctx.upstream),
            failed = ctx.failed.map(|f| f.as_str()).unwrap_or("-"),
            failed_parts = ctx
                .extensions
                .get::<crate::handler::FailedParts>()
                .map_or("-", |p| &*p.0),
            complete = a.complete,
            $message
        )
    }};
}
use access_event;

#[cfg(test)]
mod tests {
    /// The access log's `version` is what `Debug` printed before it was a constant.
    #[test]
    fn version_text_is_debugs() {
        for v in [
            http::Version::HTTP_09,
            http::Version::HTTP_10,
            http::Version::HTTP_11,
            http::Version::HTTP_2,
            http::Version::HTTP_3,
        ] {
            assert_eq!(super::version_str(v), format!("{v:?}"));
        }
    }
}
