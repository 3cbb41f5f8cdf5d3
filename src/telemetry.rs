//! Logging through `tracing`, readable on a terminal, in journald and by
//! log shippers.
//!
//! Under systemd (`JOURNAL_STREAM` is set) lines carry no colours and no
//! timestamps (journald adds its own) and start with the syslog priority
//! (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace), which
//! journald strips and stores, so that `journalctl -p warning` finds the
//! warnings. `--log-format json` writes one JSON object per line instead
//! (with the same prefix under journald). The level comes from `RUST_LOG`
//! (default `info`).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, fields, spans).
    Json,
}

/// The syslog priority of a level, as journald reads it from a line's
/// `<N>` prefix.
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Writes `<N>` before what the inner format writes.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The subscriber [`init`] installs, writing to `writer`: `journald`
/// adds the priority prefixes, `ansi` colours text.
pub fn subscriber<W>(
    format: LogFormat,
    journald: bool,
    ansi: bool,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    match (format, journald) {
        (LogFormat::Text, false) => Box::new(builder.with_ansi(ansi).finish()),
        (LogFormat::Text, true) => Box::new(
            builder
                .with_ansi(false)
                .event_format(Priority(
                    tracing_subscriber::fmt::format()
                        .without_time()
                        .with_target(false)
                        .with_ansi(false),
                ))
                .finish(),
        ),
        (LogFormat::Json, false) => Box::new(builder.json().with_ansi(false).finish()),
        (LogFormat::Json, true) => Box::new(
            builder
                .json()
                .with_ansi(false)
                .event_format(Priority(
                    tracing_subscriber::fmt::format()
                        .json()
                        .with_target(false)
                        .with_ansi(false),
                ))
                .finish(),
        ),
    }
}

/// Installs the global subscriber once; later calls do nothing.
pub fn init(format: LogFormat) {
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = !journald && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing::subscriber::set_global_default(subscriber(
        format,
        journald,
        ansi,
        filter,
        std::io::stderr,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, journald: bool) -> Vec<String> {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = subscriber(
            format,
            journald,
            false,
            EnvFilter::new("debug"),
            move || out.clone(),
        );
        tracing::subscriber::with_default(sub, || {
            tracing::error!(sink = "dingtalk", "delivery failed");
            tracing::warn!("terminal gate-1 silent");
            tracing::info!("listening");
            tracing::debug!("tick");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    /// Issue 17: under journald every line was stored at one priority;
    /// each now starts with its level's syslog priority.
    #[test]
    fn journald_lines_start_with_syslog_priority() {
        let lines = logged(LogFormat::Text, true);
        assert_eq!(lines.len(), 4, "{lines:?}");
        for (line, (prio, level)) in lines.iter().zip([
            ("<3>", "ERROR"),
            ("<4>", "WARN"),
            ("<6>", "INFO"),
            ("<7>", "DEBUG"),
        ]) {
            assert!(line.starts_with(prio), "{line}");
            assert!(line.contains(level), "{line}");
            // No timestamp: journald stamps the line itself.
            assert!(!line.contains("Z "), "{line}");
        }
        assert!(
            lines[0].contains("delivery failed sink=\"dingtalk\""),
            "{lines:?}"
        );
    }

    #[test]
    fn terminal_lines_have_no_priority_prefix() {
        for line in logged(LogFormat::Text, false) {
            assert!(!line.starts_with('<'), "{line}");
        }
    }

    /// `--log-format json`: one object per line with level, message and
    /// fields; under journald the prefix comes first and the rest is JSON.
    #[test]
    fn json_lines_parse() {
        for journald in [false, true] {
            let lines = logged(LogFormat::Json, journald);
            assert_eq!(lines.len(), 4, "{lines:?}");
            for (line, (prio, level)) in lines.iter().zip([
                ("<3>", "ERROR"),
                ("<4>", "WARN"),
                ("<6>", "INFO"),
                ("<7>", "DEBUG"),
            ]) {
                let json = if journald {
                    line.strip_prefix(prio).unwrap_or_else(|| panic!("{line}"))
                } else {
                    line.as_str()
                };
                let v: serde_json::Value =
                    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(v["level"], level, "{line}");
                assert!(v["timestamp"].is_string(), "{line}");
            }
            let first: serde_json::Value =
                serde_json::from_str(lines[0].trim_start_matches("<3>")).unwrap();
            assert_eq!(first["fields"]["message"], "delivery failed");
            assert_eq!(first["fields"]["sink"], "dingtalk");
        }
    }
}
