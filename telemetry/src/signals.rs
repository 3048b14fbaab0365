//! The stop signals every server honours the same way: Ctrl-C (SIGINT) from a terminal and
//! SIGTERM from a service manager (systemd, Docker, Kubernetes) both mean "drain and exit".

use std::future::Future;

/// Listens for SIGINT or SIGTERM from the moment it is called (so a signal that arrives before
/// the returned future is awaited is not lost to the default action); the future completes on
/// the first of them.
pub fn stop_requested() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
