//! The JSON log format, with access-log lines and span fields written by hand.
//!
//! Why: `tracing-subscriber`'s JSON formatter serializes each field through `serde_json` into
//! an adaptor that checks every small chunk for UTF-8 before appending it. For the access log
//! (one line of 20 fields per request, the only per-request log line at the default level) and
//! the request span's fields, that was about 45% of the instructions of a proxied request. The
//! JSON written here is the same, key for key and byte for byte (checked by the tests below);
//! every other event, and an access-log event inside a span, still goes to tracing-subscriber's
//! formatter.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the events formatted here.
pub const ACCESS_LOG_TARGET: &str = "access_log";

/// The JSON event format: tracing-subscriber's (`flatten_event`, current span, no span list),
/// with the span-less access-log events written directly. Its settings are the ones in
/// [`JsonLines::new`]: options set on the subscriber builder (timer, target, file, thread) do
/// not reach it.
#[derive(Debug)]
pub struct JsonLines {
    inner: Format<Json, SystemTime>,
}

impl JsonLines {
    pub fn new() -> Self {
        JsonLines {
            inner: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
        }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() == ACCESS_LOG_TARGET
            && event.parent().is_none()
            && ctx.lookup_current().is_none()
        {
            write_line(writer, event)
        } else {
            self.inner.format_event(ctx, writer, event)
        }
    }
}

/// `{"timestamp":…,"level":…,<fields in order>,"target":…}` and a newline, as
/// tracing-subscriber's JSON format writes a span-less event. The line is put together in a
/// `String` of its own and handed over in one write.
fn write_line(mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    let mut line = String::with_capacity(LINE_CAPACITY);
    line.push_str("{\"timestamp\":\"");
    // RFC 3339 with microseconds: only digits and separators, nothing to escape.
    SystemTime.format_time(&mut Writer::new(&mut line))?;
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    event.record(&mut Fields(&mut line));
    line.push_str(",\"target\":");
    push_str_value(&mut line, meta.target());
    line.push_str("}\n");
    w.write_str(&line)
}

/// The span fields of the JSON format: the JSON object tracing-subscriber's `JsonFields` makes,
/// written directly. Why: every request opens a span, and `JsonFields` builds a map of
/// `serde_json::Value`s and serializes it through the slow adaptor, about 10% of a request's
/// instructions with the default logging. The text is only read back by the JSON event format
/// when an event inside the span is logged, which parses it into a sorted map: so the keys are
/// left in the order written, and a field recorded twice appears twice (the last value wins
/// there, as in `JsonFields`).
#[derive(Debug, Default)]
pub struct JsonSpanFields;

impl<'w> FormatFields<'w> for JsonSpanFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut body = String::with_capacity(SPAN_CAPACITY);
        fields.record(&mut SpanFields(Fields(&mut body)));
        writer.write_char('{')?;
        writer.write_str(without_first_comma(&body))?;
        writer.write_char('}')
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        // `current` is `{}` or `{…}`, as written by `format_fields`.
        let mut body = match current
            .fields
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
        {
            Some("") | None => String::new(),
            Some(inner) => format!(",{inner}"),
        };
        fields.record(&mut SpanFields(Fields(&mut body)));
        current.fields = format!("{{{}}}", without_first_comma(&body));
        Ok(())
    }
}

/// Room for the request span's fields (about 150 bytes).
const SPAN_CAPACITY: usize = 256;

/// Entries are written as `,"k":v…`: the first needs no comma.
fn without_first_comma(entries: &str) -> &str {
    entries.strip_prefix(',').unwrap_or(entries)
}

/// `JsonFields`'s choices where they differ from the events': `r#` prefixes dropped, `log.`
/// fields skipped (already in the metadata), bytes as an array of numbers.
struct SpanFields<'a>(Fields<'a>);

impl Visit for SpanFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record_u64(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record_i64(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record_bool(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record_f64(field, value);
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.0.key(field.name());
        self.0.0.push('[');
        for (i, b) in value.iter().enumerate() {
            if i > 0 {
                self.0.0.push(',');
            }
            self.0.0.push_str(itoa::Buffer::new().format(*b));
        }
        self.0.0.push(']');
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.0.text(name, format_args!("{value:?}"));
    }
}

/// Room for a typical access-log line (about 500 bytes), so it is not grown on the way.
const LINE_CAPACITY: usize = 768;

/// Appends each field as `,"name":value`.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn key(&mut self, name: &str) {
        self.0.push(',');
        push_str_value(self.0, name);
        self.0.push(':');
    }

    fn int(&mut self, field: &Field, value: impl itoa::Integer) {
        self.key(field.name());
        self.0.push_str(itoa::Buffer::new().format(value));
    }

    /// A value's `Display`/`Debug` text as a JSON string (a `String`'s `fmt::Write` cannot fail).
    fn text(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.key(name);
        self.0.push('"');
        let _ = Escaped(self.0).write_fmt(value);
        self.0.push('"');
    }
}

/// 128-bit integers are left to `record_debug` (a string), as tracing-serde leaves them.
impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field.name());
        push_str_value(self.0, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.int(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.int(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field.name());
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field.name());
        // serde_json's own float text; it writes NaN and the infinities as null.
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(self.0, "{n}");
            }
            None => self.0.push_str("null"),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field.name(), format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field.name(), format_args!("{value:?}"));
    }
}

/// A JSON string: quoted and escaped.
fn push_str_value(out: &mut String, s: &str) {
    out.push('"');
    escape_into(out, s);
    out.push('"');
}

/// Whether serde_json escapes the byte: `"`, `\` and control characters. Everything else,
/// non-ASCII included, is written as it is.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte needs escaping, eight bytes at a time: the classic "has a zero byte" and
/// "has a byte below n" word tricks, exact for whether any byte matches.
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let quote = has_zero(x ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(x ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| needs_escape(b))
}

fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // Nearly every value (ids, methods, addresses, paths) has nothing to escape.
    if !any_needs_escape(bytes) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// A `fmt::Write` that escapes what it is given (for `Display`/`Debug` values).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("capture").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("capture").clone()).expect("utf-8")
        }
    }

    /// One event with awkward values, as the access log and as another target.
    fn emit(text: &str, float: f64) {
        let err = std::io::Error::other(format!("broken {text}"));
        tracing::info!(
            target: "access_log",
            request_id = text,
            trace_id = %text,
            debugged = ?text,
            status = 200u64,
            signed = -7i64,
            big = u128::MAX,
            ok = true,
            duration_ms = float,
            error = &err as &(dyn std::error::Error + 'static),
            "request"
        );
        tracing::info!(target: "elsewhere", request_id = text, duration_ms = float, "other");
    }

    /// Everything before `"target"`'s line is compared; the timestamps differ by microseconds.
    fn without_timestamp(line: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        let start = line.find("\"level\"").expect("level");
        line[start..].to_owned()
    }

    fn lines(
        make: impl FnOnce(Captured) -> tracing::Dispatch,
        text: &str,
        float: f64,
    ) -> Vec<String> {
        let out = Captured::default();
        tracing::dispatcher::with_default(&make(out.clone()), || emit(text, float));
        out.text().lines().map(without_timestamp).collect()
    }

    fn ours(w: Captured) -> tracing::Dispatch {
        tracing_subscriber::fmt()
            .json()
            .fmt_fields(JsonSpanFields)
            .with_writer(w)
            .event_format(JsonLines::new())
            .into()
    }

    /// The JSON format as it was configured before [`JsonLines`].
    fn theirs(w: Captured) -> tracing::Dispatch {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(w)
            .into()
    }

    /// The hand-written line is byte for byte tracing-subscriber's (timestamps aside).
    #[test]
    fn access_lines_match_tracing_subscribers_json() {
        let texts = [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "controls \n \r \t \u{8} \u{c} \u{0} \u{1f} \u{7f}",
            "non-ascii é ☃ 𝄞 and \u{2028}",
            "/path?q=%22a%22&b=c#frag",
        ];
        let floats = [
            0.0,
            1.741236,
            9.897029999999999,
            1e21,
            1e-7,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            123456789.0,
        ];
        for (i, text) in texts.iter().enumerate() {
            let float = floats[i % floats.len()];
            let ours = lines(ours, text, float);
            let theirs = lines(theirs, text, float);
            assert_eq!(ours.len(), 2, "{ours:?}");
            assert_eq!(ours, theirs, "{text:?} {float}");
        }
        for float in floats {
            let ours = lines(ours, "x", float);
            let theirs = lines(theirs, "x", float);
            assert_eq!(ours, theirs, "{float}");
        }
    }

    /// Events inside spans (the request span, a handler's) print the same `span` object as with
    /// `JsonFields`: fields recorded later, twice, `r#` names and awkward values included.
    #[test]
    fn span_fields_match_tracing_subscribers_json() {
        fn emit() {
            let outer = tracing::info_span!(
                "request",
                request_id = "id \"1\"\n",
                trace_id = %"x\\y",
                r#type = ?"debugged",
                count = 3u64,
                ratio = 0.25,
                ok = false,
                later = tracing::field::Empty,
                twice = 1i64,
            );
            let _o = outer.enter();
            tracing::warn!(target: "gatehouse::x", n = 1u64, "inside");
            outer.record("later", "set ☃");
            outer.record("twice", 2i64);
            tracing::warn!(target: "gatehouse::x", "after record");
            let inner = tracing::info_span!("empty");
            let _i = inner.enter();
            tracing::error!(target: "access_log", status = 500u64, "child request");
        }
        let run = |make: fn(Captured) -> tracing::Dispatch| {
            let out = Captured::default();
            tracing::dispatcher::with_default(&make(out.clone()), emit);
            out.text()
                .lines()
                .map(without_timestamp)
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(ours), run(theirs));
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(a, b);
        assert!(
            a[1].contains(r#""later":"set ☃""#) && a[1].contains(r#""twice":2"#),
            "{}",
            a[1]
        );
    }

    /// The word-at-a-time check agrees with the byte-at-a-time one, at every position.
    #[test]
    fn the_word_check_finds_every_byte_to_escape() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0u8..=255 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(
                        any_needs_escape(&bytes),
                        needs_escape(b),
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
        // Bytes of multi-byte characters are never taken for ones to escape.
        assert!(!any_needs_escape("é☃𝄞\u{80}\u{7f}ÿ".as_bytes()));
    }

    /// Inside a span the access-log line carries the span, as before.
    #[test]
    fn an_access_line_inside_a_span_keeps_the_span() {
        let out = Captured::default();
        tracing::dispatcher::with_default(&ours(out.clone()), || {
            let span = tracing::info_span!("request", route = "all");
            let _in = span.enter();
            tracing::info!(target: "access_log", status = 200u64, "child request");
        });
        let v: serde_json::Value = serde_json::from_str(out.text().trim()).expect("JSON");
        assert_eq!(v["span"]["route"], "all");
        assert_eq!(v["span"]["name"], "request");
        assert_eq!(v["status"], 200);
        assert_eq!(v["target"], "access_log");
    }
}
