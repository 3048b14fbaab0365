//! The shared services the fleet tests use for real: Redis and PostgreSQL on this machine
//! (`LIENTHONG_TEST_REDIS`, `LIENTHONG_TEST_POSTGRES` as host:port; by default the standard
//! ports on 127.0.0.1). Unreachable, a test fails when `LIENTHONG_REQUIRE_SERVICES=1` (CI sets
//! it) and otherwise says how to start the service and skips.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

fn service(var: &str, default: &str, name: &str, how: &str) -> Option<SocketAddr> {
    let at = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    let addr = at.to_socket_addrs().ok().and_then(|mut a| a.next());
    if let Some(addr) = addr
        && TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    {
        return Some(addr);
    }
    let message =
        format!("{name} is not reachable at {at}: {how}, or point {var} at one (host:port)");
    if std::env::var("LIENTHONG_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message} (LIENTHONG_REQUIRE_SERVICES=1: this test needs it)");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Redis, or None (said on standard error) outside CI.
pub fn redis() -> Option<SocketAddr> {
    service(
        "LIENTHONG_TEST_REDIS",
        "127.0.0.1:6379",
        "Redis",
        "start one with `docker run -d -p 6379:6379 redis:7` or `apt-get install redis-server`",
    )
}

/// PostgreSQL (trust authentication, database `test`), or None outside CI.
pub fn postgres() -> Option<SocketAddr> {
    service(
        "LIENTHONG_TEST_POSTGRES",
        "127.0.0.1:5432",
        "PostgreSQL",
        "start one with `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`",
    )
}

/// A name no other test (or run) uses, for a key prefix or a schema.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A free port on 127.0.0.1 (for a listener the binary is told to use).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` from an admin listener: the body.
pub async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    raw.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample whose line starts with `series` (name and labels, exactly).
pub fn metric(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// A schema of its own on the machine's PostgreSQL (database `test`), dropped when it goes out
/// of scope, whatever ends the test (from a thread of its own: the test's runtime may be gone).
pub struct PgSchema {
    /// The database's URL.
    pub url: String,
    pub name: String,
}

impl PgSchema {
    /// None (said on standard error) when PostgreSQL is not there outside CI.
    pub fn new() -> Option<PgSchema> {
        let pg = postgres()?;
        Some(PgSchema {
            url: format!("postgres://postgres@{pg}/test"),
            name: unique("lt_test"),
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&pool)
                    .await
                    .unwrap();
            });
        })
        .join();
    }
}
