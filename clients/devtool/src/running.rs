//! `<dir>/up.running`: which process serves the environment and where, while it runs, so that a
//! second `up` on the same directory says so instead of failing on the store's lock, and so that
//! `unit add` and `unit revoke` can tell the running gateway to reload.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The environment's running `up`.
#[derive(Debug)]
pub struct Running {
    path: PathBuf,
    pub pid: u32,
    /// The gateway's endpoint, `https://…`.
    pub endpoint: String,
    /// The gateway's admin listener (metrics, `POST /reload`), when it has one.
    pub admin: Option<SocketAddr>,
}

impl Running {
    const FILE: &'static str = "up.running";

    /// The environment's running `up`, if its process is alive (a file left by a process that
    /// was killed is ignored).
    pub fn find(dir: &Path) -> Option<Running> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).ok()?;
        let mut words = text.split_whitespace();
        let pid: u32 = words.next()?.parse().ok()?;
        let endpoint = words.next()?.to_owned();
        let admin = words.next().and_then(|a| a.parse().ok());
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        (alive && pid != std::process::id()).then_some(Running {
            path,
            pid,
            endpoint,
            admin,
        })
    }

    /// Marks the environment as served by this process; the mark goes when the value drops.
    pub fn mark(dir: &Path, endpoint: &str, admin: SocketAddr) -> std::io::Result<Running> {
        let path = dir.join(Self::FILE);
        let pid = std::process::id();
        std::fs::write(&path, format!("{pid} {endpoint} {admin}\n"))?;
        Ok(Running {
            path,
            pid,
            endpoint: endpoint.to_owned(),
            admin: Some(admin),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
