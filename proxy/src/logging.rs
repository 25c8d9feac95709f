//! Logging: `tracing` for everything (pingora's `log` records included),
//! written to stderr in batches by a background thread ([`batch`]) so no
//! request waits on a write.
//!
//! Access-log events (target [`ACCESS_TARGET`]) bypass the general
//! formatter: a dedicated layer writes each as one line into a reused
//! per-thread buffer, which costs a fraction of tracing-subscriber's
//! generic field formatting on a path taken once per request.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogConfig;
use crate::fastfmt;

pub mod batch;

use self::batch::{BatchGuard, BatchWriter};

/// The target of access-log events.
pub const ACCESS_TARGET: &str = "sandgate_proxy::access";

/// Output format of every log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable, one line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; keep the guard until exit so queued
/// lines are flushed. `RUST_LOG` overrides `log.level` (not the access log,
/// which `log.access_log` controls). Lines reach stderr within
/// [`batch::FLUSH_INTERVAL`]; under sustained overload they are dropped
/// rather than stalling the proxy.
///
/// # Panics
/// When the writer thread cannot be started (the process is out of threads).
#[allow(clippy::expect_used)]
pub fn init(config: &LogConfig, format: Format) -> BatchGuard {
    use std::io::IsTerminal;
    let (writer, guard) =
        batch::spawn(std::io::stderr()).expect("cannot start the log writer thread");
    let general =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    // Access events have their own layer; keep them out of the general one.
    let general = match format!("{ACCESS_TARGET}=off").parse() {
        Ok(directive) => general.add_directive(directive),
        Err(_) => general,
    };
    let access = config.access_log.then(|| {
        AccessLayer {
            writer: writer.clone(),
            json: format == Format::Json,
        }
        .with_filter(Targets::new().with_target(ACCESS_TARGET, Level::INFO))
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(access);
    match format {
        Format::Json => registry
            .with(fmt.json().flatten_event(true).with_filter(general))
            .init(),
        Format::Text => registry.with(fmt.compact().with_filter(general)).init(),
    }
    guard
}

/// Writes access-log events as single lines.
pub struct AccessLayer<W = BatchWriter> {
    writer: W,
    json: bool,
}

thread_local! {
    /// The line being built (reused, so formatting does not allocate).
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
    /// `(unix second, "YYYY-MM-DDTHH:MM:SS")` of the last timestamp.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl<S, W> Layer<S> for AccessLayer<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.format(event, line);
            // A full queue drops the line (lossy writer); never block here.
            let _ = self.writer.make_writer().write_all(line.as_bytes());
        });
    }
}

impl<W> AccessLayer<W> {
    fn format(&self, event: &Event<'_>, line: &mut String) {
        if self.json {
            line.push_str("{\"timestamp\":\"");
            timestamp(line);
            line.push_str("\",\"level\":\"INFO\",\"target\":\"");
            line.push_str(ACCESS_TARGET);
            line.push_str("\",\"message\":\"request\"");
            event.record(&mut JsonFields(line));
            line.push_str("}\n");
        } else {
            timestamp(line);
            line.push_str("  INFO access:");
            event.record(&mut TextFields(line));
            line.push('\n');
        }
    }
}

/// `key=value` pairs; values with spaces, quotes or controls are quoted.
///
/// Performance: names, plain strings and integers are appended directly
/// rather than through `write!` (`core::fmt` was most of the line's cost).
struct TextFields<'a>(&'a mut String);

impl TextFields<'_> {
    /// Appends ` name=`.
    fn key(&mut self, field: &Field) {
        self.0.push(' ');
        self.0.push_str(field.name());
        self.0.push('=');
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return;
        }
        let plain =
            !value.is_empty() && !value.bytes().any(|b| b <= b' ' || b == b'"' || b == 0x7f);
        self.key(field);
        if plain {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() != "message" {
            self.key(field);
            let _ = write!(self.0, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        fastfmt::push_u64(self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        fastfmt::push_i64(self.0, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }
}

/// `,"key":value` members.
struct JsonFields<'a>(&'a mut String);

impl JsonFields<'_> {
    /// Appends `,"name":` (field names are plain identifiers).
    fn key(&mut self, field: &Field) {
        self.0.push_str(",\"");
        self.0.push_str(field.name());
        self.0.push_str("\":");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return;
        }
        self.key(field);
        json_string(self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() != "message" {
            let text = format!("{value:?}");
            self.record_str(field, &text);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        fastfmt::push_u64(self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        fastfmt::push_i64(self.0, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            self.0.push_str("null");
        }
    }
}

fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`; the part up
/// to the second is computed once per second per thread.
fn timestamp(out: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            text.clear();
            format_second(secs, text);
        }
        out.push_str(text);
    });
    let millis = now.subsec_millis();
    out.push('.');
    for digit in [millis / 100 % 10, millis / 10 % 10, millis % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
    out.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second (proleptic Gregorian calendar).
fn format_second(secs: u64, out: &mut String) {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (y, m, d).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn formats_seconds_as_utc_dates() {
        let text = |secs| {
            let mut out = String::new();
            format_second(secs, &mut out);
            out
        };
        assert_eq!(text(0), "1970-01-01T00:00:00");
        assert_eq!(text(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(text(1_795_367_243), "2026-11-22T17:07:23");
        assert_eq!(text(4_102_444_799), "2099-12-31T23:59:59");
    }

    /// Collects written bytes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    fn capture(json: bool) -> String {
        let sink = Sink::default();
        let layer = AccessLayer {
            writer: sink.clone(),
            json,
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        let method = http::Method::from_bytes(b"GET a").unwrap_or(http::Method::GET);
        let line = crate::access::Line {
            sandbox_id: "sb-1",
            sandbox_port: 8080,
            upstream: None,
            method: &method,
            status: 200,
            duration: std::time::Duration::from_micros(1500),
            bytes_sent: 6,
            bytes_received: 0,
            mode: None,
            code: Some("PROXY::X \"y\""),
            error: None,
        };
        tracing::subscriber::with_default(subscriber, || crate::access::log(&line));
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn writes_text_lines() {
        let line = capture(false);
        let expected = " INFO access: sandbox.id=sb-1 sandbox.port=8080 upstream.addr=- \
            http.method=GET http.status=200 duration_ms=1.5 bytes.sent=6 bytes.received=0 \
            route.mode=- error.code=\"PROXY::X \\\"y\\\"\" error.kind=-\n";
        assert!(line.ends_with(expected), "{line}");
        assert_eq!(line.as_bytes()[10], b'T');
    }

    #[test]
    fn writes_json_lines() {
        let line = capture(true);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["sandbox.id"], "sb-1");
        assert_eq!(value["http.status"], 200);
        assert_eq!(value["duration_ms"], 1.5);
        assert_eq!(value["upstream.addr"], "-");
        assert_eq!(value["error.code"], "PROXY::X \"y\"");
        assert_eq!(value["target"], ACCESS_TARGET);
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
