//! Log output for every binary of the project: one JSON object per line when standard error
//! is not a terminal (a file, a pipe, a container's log collector), human text otherwise, with
//! colour only on a terminal. `LIENTHONG_LOG_FORMAT` (`json`, `text` or `auto`) chooses the
//! form explicitly; `RUST_LOG` chooses what is logged.

use std::io::IsTerminal;

/// The environment variable that chooses the log format.
pub const FORMAT_VAR: &str = "LIENTHONG_LOG_FORMAT";

/// The target of the one line each request leaves (`RUST_LOG=lienthong::request=info`).
pub const REQUEST_TARGET: &str = "lienthong::request";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, no colour.
    Json,
    /// Human text; `colour` only when writing to a terminal.
    Text { colour: bool },
}

impl Format {
    /// The format for a `LIENTHONG_LOG_FORMAT` value and whether the output is a terminal;
    /// an unknown value is an error that names the accepted ones.
    pub fn choose(setting: Option<&str>, terminal: bool) -> Result<Self, String> {
        match setting.map(str::trim).unwrap_or("auto") {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text { colour: terminal }),
            "auto" | "" if terminal => Ok(Self::Text { colour: true }),
            "auto" | "" => Ok(Self::Json),
            other => Err(format!(
                "{FORMAT_VAR}={other:?} is not a log format: use json, text or auto (JSON \
                 unless standard error is a terminal)"
            )),
        }
    }
}

/// Installs the process's log output on standard error: `RUST_LOG` or `default_filter` for
/// what, [`Format::choose`] for how. A bad `LIENTHONG_LOG_FORMAT` is reported on standard
/// error and the automatic choice is used.
pub fn init(default_filter: &str) {
    let terminal = std::io::stderr().is_terminal();
    let setting = std::env::var(FORMAT_VAR).ok();
    let (format, problem) = match Format::choose(setting.as_deref(), terminal) {
        Ok(f) => (f, None),
        Err(e) => (
            Format::choose(None, terminal).unwrap_or(Format::Json),
            Some(e),
        ),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        Format::Text { colour } => builder.with_ansi(colour).try_init(),
    };
    if installed.is_ok()
        && let Some(problem) = problem
    {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_unless_a_terminal_and_colour_only_on_one() {
        assert_eq!(Format::choose(None, false), Ok(Format::Json));
        assert_eq!(
            Format::choose(None, true),
            Ok(Format::Text { colour: true })
        );
        assert_eq!(
            Format::choose(Some("text"), false),
            Ok(Format::Text { colour: false })
        );
        assert_eq!(Format::choose(Some("json"), true), Ok(Format::Json));
        assert_eq!(Format::choose(Some(" auto "), false), Ok(Format::Json));
        let e = Format::choose(Some("yaml"), false).unwrap_err();
        assert!(e.contains("json, text or auto"), "{e}");
    }
}
