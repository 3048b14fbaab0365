//! Step 0b, the door: what an unauthenticated caller can cost. Calls without a client
//! certificate are limited per peer address before identity ([`DoorGate`]), and every refusal
//! made before an officer is established (no or bad certificate, unknown unit, missing or bad
//! token, a peer over its limit) is recorded in full only for the first few of each peer,
//! reason and window; the rest are counted, and one summary record per window says how many
//! there were ([`Door::summaries`]). The trail still shows who hammered the door and how often,
//! but a flood cannot fill its disk.

use super::Gate;
use super::rescue::{LimitKind, Refusal};
use crate::audit::record::Entry;
use crate::config::Rate;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The method recorded on a summary record.
pub const SUMMARY_METHOD: &str = "(door summary)";

/// At most this many (peer, reason, unit) windows are kept; beyond it, new peers share one
/// window under the address 0.0.0.0.
const MAX_WINDOWS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    ip: IpAddr,
    reason: &'static str,
    code: i32,
    unit: String,
}

#[derive(Debug, Clone)]
struct Window {
    start_us: i64,
    last_us: i64,
    recorded: u32,
    suppressed: u64,
}

#[derive(Default)]
struct State {
    windows: HashMap<Key, Window>,
    /// Summaries of windows that ended while a new one began.
    ready: Vec<(Key, Window)>,
}

/// The door's accounting, shared by every connection.
#[derive(Clone)]
pub struct Door {
    state: Arc<Mutex<State>>,
    window_us: i64,
    per_window: u32,
}

impl Door {
    pub fn new(window: Duration, per_window: u32) -> Self {
        Self {
            state: Arc::default(),
            window_us: window.as_micros().min(i64::MAX as u128) as i64,
            per_window,
        }
    }

    /// Whether this refusal gets a record of its own (true), or is only counted (false).
    pub fn admit(&self, ip: IpAddr, refusal: &Refusal, unit: &str, now_us: i64) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        let mut key = Key {
            ip,
            reason: refusal.reason(),
            code: refusal.code() as i32,
            unit: crate::audit::record::bound_str(unit, 64),
        };
        if !state.windows.contains_key(&key) && state.windows.len() >= MAX_WINDOWS {
            key.ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        }
        let window_us = self.window_us;
        let fresh = || Window {
            start_us: now_us,
            last_us: now_us,
            recorded: 0,
            suppressed: 0,
        };
        let w = state.windows.entry(key.clone()).or_insert_with(fresh);
        if now_us - w.start_us >= window_us {
            let ended = std::mem::replace(w, fresh());
            if ended.suppressed > 0 {
                state.ready.push((key.clone(), ended));
            }
        }
        let Some(w) = state.windows.get_mut(&key) else {
            return true;
        };
        w.last_us = now_us;
        if w.recorded < self.per_window {
            w.recorded += 1;
            true
        } else {
            w.suppressed += 1;
            false
        }
    }

    /// The summary records of every window that has ended by `now_us` (of every window, when
    /// `all`), each saying how many refusals were counted but not recorded one by one.
    pub fn summaries(&self, now_us: i64, all: bool) -> Vec<Entry> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let window_us = self.window_us;
        let mut out: Vec<(Key, Window)> = std::mem::take(&mut state.ready);
        state.windows.retain(|k, w| {
            let ended = all || now_us - w.start_us >= window_us;
            if ended && w.suppressed > 0 {
                out.push((k.clone(), w.clone()));
            }
            !ended
        });
        out.into_iter().map(|(k, w)| summary(&k, &w)).collect()
    }
}

fn summary(k: &Key, w: &Window) -> Entry {
    Entry {
        time_us: w.start_us,
        request_id: "door-summary".into(),
        unit_code: k.unit.clone(),
        peer_address: k.ip.to_string(),
        method: SUMMARY_METHOD.into(),
        outcome_code: k.code,
        outcome_reason: k.reason.into(),
        outcome_message: format!(
            "{} more calls from {} were refused for {} between {} and {} (µs since the epoch, UTC) and are counted here instead of recorded one by one",
            w.suppressed, k.ip, k.reason, w.start_us, w.last_us
        ),
        ..Entry::default()
    }
}

type Keyed<C> =
    RateLimiter<IpAddr, HashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The per-peer limit on calls that present no client certificate.
#[derive(Clone)]
pub struct DoorGate {
    limiter: Arc<Keyed<DefaultClock>>,
    clock: DefaultClock,
}

impl DoorGate {
    pub fn new(rate: Rate) -> Self {
        let clock = DefaultClock::default();
        Self {
            limiter: Arc::new(RateLimiter::hashmap_with_clock(
                Quota::per_second(rate.per_second).allow_burst(rate.burst),
                clock.clone(),
            )),
            clock,
        }
    }

    /// Forgets peers whose budget is full again.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

impl Gate for DoorGate {
    const STAGE: &'static str = "door";

    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal> {
        let Some(info) = request.extensions.get::<crate::tls::PeerInfo>() else {
            return Ok(());
        };
        if info.certificates.as_ref().is_some_and(|c| !c.is_empty()) {
            return Ok(());
        }
        let Some(ip) = info.remote.map(|a| a.ip()) else {
            return Ok(());
        };
        self.limiter
            .check_key(&ip)
            .map_err(|n| Refusal::RateLimited {
                kind: LimitKind::Peer,
                subject: ip.to_string(),
                retry_after: n
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_millis(1)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_leaves_a_few_records_and_one_summary_per_window() {
        let door = Door::new(Duration::from_secs(60), 3);
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        let r = Refusal::NoClientCertificate;
        let s = 1_000_000_000i64;
        let admitted = (0..200).filter(|i| door.admit(ip, &r, "", s + i)).count();
        assert_eq!(admitted, 3);
        assert!(
            door.admit(other, &r, "", s),
            "another peer has its own window"
        );
        assert!(
            door.summaries(s + 1_000, false).is_empty(),
            "window still open"
        );
        // The next window begins: the last one's count is ready.
        assert!(door.admit(ip, &r, "", s + 60_000_001));
        let sums = door.summaries(s + 60_000_002, false);
        assert_eq!(sums.len(), 1);
        assert_eq!(sums[0].peer_address, "10.0.0.9");
        assert_eq!(sums[0].outcome_reason, "NO_CLIENT_CERTIFICATE");
        assert!(sums[0].outcome_message.starts_with("197 more calls"));
        // At shutdown every open window with a count is summarised.
        for i in 0..5 {
            door.admit(ip, &r, "", s + 60_000_010 + i);
        }
        let sums = door.summaries(s + 60_000_100, true);
        assert_eq!(sums.len(), 1);
        assert!(sums[0].outcome_message.starts_with("3 more calls"));
    }
}
