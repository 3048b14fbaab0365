//! The fleet's shared rate limits: the same GCRA as the local limiter (governor's), kept in
//! Redis and decided for all of a call's limits by one Lua script in one round trip, so that
//! any number of replicas together admit exactly the configured rates. When Redis does not
//! answer within the timeout, the failure policy decides: `fail_open` falls back to this
//! replica's local limiter at each rate divided by the number of replicas, `fail_closed`
//! refuses. After a failure, calls skip Redis for the probe interval (one call then tries it),
//! so a Redis that hangs costs one timeout per interval, not one per call.

use crate::config::{OnFailure, Rate, SharedLimits};
use crate::metrics::{PolicyLabel, SharedLimitMetrics};
use redis::aio::ConnectionManager;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The GCRA for a list of limits, narrowest first. For each key: the emission interval `T`
/// and the tolerance `tau = T × burst`, in microseconds; the stored value is the theoretical
/// arrival time (TAT). A call is admitted by a limit when `max(TAT, now) + T - now <= tau`, and
/// then that limit's TAT becomes `max(TAT, now) + T`. The limits are taken in order and the
/// first that refuses ends the call (the ones before it keep their cell, as the local limiter
/// does). The clock is Redis's own (`TIME`), so the replicas' clocks do not matter. Returns
/// `{0, 0}` when admitted, or `{i, wait_us}`: refused by the i-th limit (from 1), which admits
/// again in `wait_us` microseconds.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tau = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  if next_tat - now > tau then
    return {i, next_tat - tau - now}
  end
  redis.call('SET', key, string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
end
return {0, 0}
";

/// One limit of a call: its key and its rate.
pub struct Cell {
    pub key: String,
    pub rate: Rate,
}

/// What the shared limiter decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Admitted,
    /// The `index`-th cell (from 0) refused; it admits again after `retry_after`.
    Refused {
        index: usize,
        retry_after: Duration,
    },
    /// Redis did not answer in time (or failed): the failure policy decides.
    Unavailable,
}

/// The connection to Redis and the state of its failure policy.
pub struct SharedLimiter {
    conn: ConnectionManager,
    script: redis::Script,
    settings: SharedLimits,
    /// Set while Redis is considered down: until then, calls do not try it.
    down_until: Mutex<Option<Instant>>,
    metrics: SharedLimitMetrics,
}

/// The emission interval and tolerance of a rate, in microseconds.
fn gcra_args(rate: Rate) -> (u64, u64) {
    let interval = 1_000_000u64.div_ceil(u64::from(rate.per_second.get()));
    (interval, interval * u64::from(rate.burst.get()))
}

impl SharedLimiter {
    /// Prepares the connection (made on first use, so the gateway starts whether or not Redis
    /// is up).
    pub fn new(settings: SharedLimits, metrics: SharedLimitMetrics) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|_| "limits.redis.url: not a valid Redis URL".to_owned())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("limits.redis: {e}"))?;
        metrics.up.set(1);
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA),
            settings,
            down_until: Mutex::new(None),
            metrics,
        })
    }

    /// The key of a limit: `<prefix>:<kind>[:<subject>…]`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.settings.key_prefix.clone();
        for p in parts {
            key.push(':');
            key.push_str(p);
        }
        key
    }

    pub fn on_failure(&self) -> OnFailure {
        self.settings.on_failure
    }

    pub fn replicas(&self) -> std::num::NonZeroU32 {
        self.settings.replicas
    }

    pub fn probe_interval(&self) -> Duration {
        self.settings.probe_interval
    }

    /// Counts a call the failure policy decided.
    pub fn bypassed(&self) {
        let policy = match self.settings.on_failure {
            OnFailure::FailOpen => "fail_open",
            OnFailure::FailClosed => "fail_closed",
        };
        self.metrics
            .without_backend
            .get_or_create(&PolicyLabel { policy })
            .inc();
    }

    /// Takes one call from each cell, narrowest first, in one round trip.
    pub async fn admit(&self, cells: &[Cell]) -> Decision {
        let now = Instant::now();
        {
            let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
            match *down {
                // This call is the one that tries Redis again; the others keep skipping it.
                Some(until) if now >= until => *down = Some(now + self.settings.probe_interval),
                Some(_) => return Decision::Unavailable,
                None => {}
            }
        }
        let mut invocation = self.script.prepare_invoke();
        for cell in cells {
            let (interval, tau) = gcra_args(cell.rate);
            invocation.key(&cell.key).arg(interval).arg(tau);
        }
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(
            self.settings.timeout,
            invocation.invoke_async::<(i64, i64)>(&mut conn),
        )
        .await;
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return self.failed(&e.to_string()),
            Err(_) => {
                return self.failed(&format!(
                    "no answer within {} ms",
                    self.settings.timeout.as_millis()
                ));
            }
        };
        self.recovered();
        match answer {
            (0, _) => Decision::Admitted,
            (i, wait_us) => Decision::Refused {
                index: usize::try_from(i - 1).unwrap_or(0).min(cells.len() - 1),
                retry_after: Duration::from_micros(wait_us.max(1000) as u64),
            },
        }
    }

    fn failed(&self, problem: &str) -> Decision {
        self.metrics.failures.inc();
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            self.metrics.up.set(0);
            let policy = match self.settings.on_failure {
                OnFailure::FailOpen => format!(
                    "fail_open: each limit falls back to this replica's share (rate / {})",
                    self.settings.replicas
                ),
                OnFailure::FailClosed => {
                    "fail_closed: calls are refused (RATE_LIMITER_UNAVAILABLE)".to_owned()
                }
            };
            tracing::error!(
                problem,
                policy,
                retry_every_ms = self.settings.probe_interval.as_millis() as u64,
                "shared rate limiter (Redis) unreachable"
            );
        }
        *down = Some(Instant::now() + self.settings.probe_interval);
        Decision::Unavailable
    }

    fn recovered(&self) {
        let mut down = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        if down.take().is_some() {
            self.metrics.up.set(1);
            tracing::info!("shared rate limiter (Redis) answers again: limits are shared again");
        }
    }
}

/// A rate divided among `replicas` (rounded up, at least 1 per second and 1 of burst): each
/// replica's share when Redis is down and the policy is `fail_open`.
pub fn share(rate: Rate, replicas: std::num::NonZeroU32) -> Rate {
    let part = |v: std::num::NonZeroU32| {
        std::num::NonZeroU32::new(v.get().div_ceil(replicas.get()))
            .unwrap_or(std::num::NonZeroU32::MIN)
    };
    Rate {
        per_second: part(rate.per_second),
        burst: part(rate.burst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn the_gcra_arguments_match_governor_quotas() {
        assert_eq!(gcra_args(rate(10, 4)), (100_000, 400_000));
        assert_eq!(gcra_args(rate(3, 1)), (333_334, 333_334));
    }

    #[test]
    fn a_share_is_rounded_up_and_never_zero() {
        let three = NonZeroU32::new(3).unwrap();
        assert_eq!(share(rate(10, 4), three), rate(4, 2));
        assert_eq!(share(rate(1, 1), three), rate(1, 1));
    }
}
