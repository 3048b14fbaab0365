//! For unit tests: the log lines a piece of code writes, captured on this thread.

use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber that keeps every line (info and above, no colour); returns what
/// `f` returned and the lines.
///
/// tracing caches each callsite's interest for the whole process, computed against the
/// subscriber of whichever thread reaches it first: a test running without a subscriber would
/// cache "never" and hide the lines from every capture. A global subscriber that discards
/// everything (so no thread is without one) and a rebuild of the cache inside the capture keep
/// the lines visible.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect();
    (out, lines)
}
