//! The client to the population database: mutual TLS as a connected unit of its own, a deadline
//! on every attempt, one retry of an idempotent read that met UNAVAILABLE, and a circuit
//! breaker that stops calling a database that keeps failing. Replies are parsed into domain
//! records here, so a malformed reply never reaches the handlers.

use crate::config;
use crate::metrics::UpstreamMetrics;
use crate::pipeline::rescue::{BusyScope, Refusal};
use crate::tls;
use lienthong_domain::{CitizenRecord, OldIdNumber, PersonalId, RequestId, UnitCode};
use lienthong_proto::convert::{citizen_from_pb, household_check};
use lienthong_proto::csdl::v1 as pb;
use pb::population_registry_client::PopulationRegistryClient;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

/// How a citizen is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CitizenKey {
    PersonalId(PersonalId),
    OldId(OldIdNumber),
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe call is in flight since then.
    HalfOpen {
        since: Instant,
    },
}

/// A circuit breaker: after `threshold` consecutive failures, calls fail fast for `open_for`;
/// then one probe decides whether to close again.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// May a call go out? If not, how long until one may.
    pub fn admit(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
            State::Open { until } => Err(until - now),
            State::HalfOpen { since } if now >= since + self.open_for => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
            State::HalfOpen { since } => Err(since + self.open_for - now),
        }
    }

    /// A call succeeded; returns the state entered, if it changed.
    pub fn success(&self) -> Option<&'static str> {
        let mut s = self.state.lock().ok()?;
        let changed = !matches!(*s, State::Closed { .. });
        if changed {
            tracing::info!(
                "population database breaker closed: a call succeeded, calls go out again"
            );
        }
        *s = State::Closed { failures: 0 };
        changed.then_some("closed")
    }

    /// A call failed; returns the state entered, if the breaker (re)opened.
    pub fn failure(&self) -> Option<&'static str> {
        let now = Instant::now();
        let mut s = self.state.lock().ok()?;
        let next = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: now + self.open_for,
            },
        };
        let opened = match (*s, next) {
            (State::Closed { .. }, State::Open { .. }) => {
                tracing::warn!(
                    consecutive_failures = self.threshold,
                    open_for_ms = self.open_for.as_millis() as u64,
                    "population database breaker opened: calls are refused (UPSTREAM_UNAVAILABLE) until a trial call succeeds"
                );
                Some("open")
            }
            (State::HalfOpen { .. }, State::Open { .. }) => {
                tracing::warn!(
                    open_for_ms = self.open_for.as_millis() as u64,
                    "population database breaker reopened: the trial call failed"
                );
                Some("open")
            }
            _ => None,
        };
        *s = next;
        opened
    }

    pub fn is_open(&self) -> bool {
        self.state
            .lock()
            .map(|s| !matches!(*s, State::Closed { .. }))
            .unwrap_or(false)
    }
}

/// The population database client.
#[derive(Clone)]
pub struct Upstream {
    client: PopulationRegistryClient<Channel>,
    timeout: Duration,
    retry: bool,
    breaker: Arc<Breaker>,
    metrics: UpstreamMetrics,
    bulkhead: Arc<Bulkhead>,
}

/// The calls in flight to the database: at most so many in all and so many per unit, so one
/// unit's flood (or a slow database) cannot take every slot. Full means refused at once
/// (`UPSTREAM_BUSY`), never queued.
struct Bulkhead {
    total: Arc<Semaphore>,
    total_cap: u32,
    per_unit: Mutex<HashMap<UnitCode, Arc<Semaphore>>>,
    unit_cap: u32,
}

/// A call's place in the bulkhead, given back when dropped.
pub struct Slot {
    _unit: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl Upstream {
    /// A lazily connecting client: the gateway starts even when the database is down, and
    /// reports UNAVAILABLE until it is back.
    pub fn new(cfg: &config::Upstream) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(|e| format!("upstream.endpoint: {e}"))?
            .tls_config(tls::upstream_config(cfg))
            .map_err(|e| format!("upstream TLS: {e}"))?
            .connect_timeout(cfg.timeout)
            .tcp_nodelay(true);
        Ok(Self {
            client: PopulationRegistryClient::new(endpoint.connect_lazy()),
            timeout: cfg.timeout,
            retry: cfg.retry,
            breaker: Arc::new(Breaker::new(cfg.breaker_failures, cfg.breaker_open)),
            metrics: UpstreamMetrics::default(),
            bulkhead: Arc::new(Bulkhead {
                total: Arc::new(Semaphore::new(cfg.max_in_flight as usize)),
                total_cap: cfg.max_in_flight,
                per_unit: Mutex::default(),
                unit_cap: cfg.max_in_flight_per_unit,
            }),
        })
    }

    /// A place for one of `unit`'s calls among those in flight, held until dropped; refused
    /// at once when the unit's share or the whole is taken.
    pub fn enter(&self, unit: &UnitCode) -> Result<Slot, Refusal> {
        let b = &self.bulkhead;
        let unit_sem = {
            let mut map = b.per_unit.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(unit.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(b.unit_cap as usize)))
                .clone()
        };
        let unit_permit = unit_sem
            .try_acquire_owned()
            .map_err(|_| Refusal::UpstreamBusy {
                scope: BusyScope::Unit,
                limit: b.unit_cap,
            })?;
        let total_permit =
            b.total
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refusal::UpstreamBusy {
                    scope: BusyScope::Total,
                    limit: b.total_cap,
                })?;
        Ok(Slot {
            _unit: unit_permit,
            _total: total_permit,
        })
    }

    /// Reports calls, errors and the breaker's changes on `metrics`.
    pub fn with_metrics(mut self, metrics: UpstreamMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// One record.
    pub async fn citizen(
        &self,
        key: &CitizenKey,
        request_id: &RequestId,
    ) -> Result<CitizenRecord, Refusal> {
        let request = pb::GetCitizenRequest {
            key: Some(match key {
                CitizenKey::PersonalId(p) => {
                    pb::get_citizen_request::Key::PersonalId(p.as_str().to_owned())
                }
                CitizenKey::OldId(o) => {
                    pb::get_citizen_request::Key::OldIdNumber(o.as_str().to_owned())
                }
            }),
            request_id: request_id.to_string(),
            // The record keeps the household link only; members come from GetHousehold.
            household_link_only: true,
        };
        let reply = self
            .call(
                |mut client, req| async move { client.get_citizen(req).await },
                request,
            )
            .await?;
        let citizen = reply.citizen.ok_or_else(|| {
            Refusal::UpstreamUnavailable("the database replied without a record".into())
        })?;
        citizen_from_pb(&citizen).map_err(|e| {
            tracing::error!(field = %e.field, problem = %e.problem, "malformed record from the population database");
            Refusal::UpstreamUnavailable("the database replied with a malformed record".into())
        })
    }

    /// A citizen's household, checked.
    pub async fn household(
        &self,
        member: &PersonalId,
        request_id: &RequestId,
    ) -> Result<pb::Household, Refusal> {
        let request = pb::GetHouseholdRequest {
            key: Some(pb::get_household_request::Key::PersonalId(
                member.as_str().to_owned(),
            )),
            request_id: request_id.to_string(),
        };
        let reply = self
            .call(
                |mut client, req| async move { client.get_household(req).await },
                request,
            )
            .await?;
        let household = reply.household.ok_or_else(|| {
            Refusal::UpstreamUnavailable("the database replied without a household".into())
        })?;
        household_check(&household).map_err(|e| {
            tracing::error!(field = %e.field, problem = %e.problem, "malformed household from the population database");
            Refusal::UpstreamUnavailable("the database replied with a malformed household".into())
        })?;
        Ok(household)
    }

    /// Sends an update back to the database. A retry is safe: the database gives back the
    /// update it already has for the same source system and request id.
    pub async fn submit_update(
        &self,
        request: pb::SubmitUpdateRequest,
    ) -> Result<pb::DataUpdate, Refusal> {
        self.call(
            |mut client, req| async move { client.submit_update(req).await },
            request,
        )
        .await
    }

    /// One update the source system sent.
    pub async fn update(&self, id: &str, source_system: &str) -> Result<pb::DataUpdate, Refusal> {
        let request = pb::GetUpdateRequest {
            update_id: id.to_owned(),
            source_system: source_system.to_owned(),
        };
        self.call(
            |mut client, req| async move { client.get_update(req).await },
            request,
        )
        .await
        .map_err(|r| match r {
            Refusal::CitizenNotFound => Refusal::UpdateNotFound,
            other => other,
        })
    }

    /// Opens a bundle case. A retry is safe: the database gives back the case it already has
    /// for the same source system and request id.
    pub async fn open_case(&self, request: pb::OpenCaseRequest) -> Result<pb::BundleCase, Refusal> {
        self.call(
            |mut client, req| async move { client.open_case(req).await },
            request,
        )
        .await
    }

    /// One agency's action on a case's step; safe to retry like `open_case`.
    pub async fn complete_case_step(
        &self,
        request: pb::CompleteCaseStepRequest,
    ) -> Result<pb::BundleCase, Refusal> {
        self.call(
            |mut client, req| async move { client.complete_case_step(req).await },
            request,
        )
        .await
        .map_err(|r| match r {
            Refusal::CitizenNotFound => Refusal::CaseNotFound,
            other => other,
        })
    }

    /// One case the source system opened.
    pub async fn case(&self, id: &str, source_system: &str) -> Result<pb::BundleCase, Refusal> {
        let request = pb::GetCaseRequest {
            case_id: id.to_owned(),
            source_system: source_system.to_owned(),
        };
        self.call(
            |mut client, req| async move { client.get_case(req).await },
            request,
        )
        .await
        .map_err(|r| match r {
            Refusal::CitizenNotFound => Refusal::CaseNotFound,
            other => other,
        })
    }

    /// Breaker, deadline, one retry on UNAVAILABLE.
    async fn call<Req, Resp, F, Fut>(&self, f: F, request: Req) -> Result<Resp, Refusal>
    where
        Req: Clone,
        F: Fn(PopulationRegistryClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.breaker
            .admit()
            .map_err(|retry_after| Refusal::CircuitOpen { retry_after })?;
        let attempts = if self.retry { 2 } else { 1 };
        let mut outcome = Err(Refusal::UpstreamTimeout);
        for attempt in 1..=attempts {
            let mut req = tonic::Request::new(request.clone());
            req.set_timeout(self.timeout);
            let started = std::time::Instant::now();
            let answer = tracing::Instrument::instrument(
                tokio::time::timeout(self.timeout, f(self.client.clone(), req)),
                tracing::debug_span!(target: lienthong_telemetry::TRACE_TARGET, "upstream", attempt),
            )
            .await;
            self.metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            match &answer {
                Err(_) => self.metrics.error(Code::DeadlineExceeded),
                Ok(Err(status))
                    if !matches!(status.code(), Code::NotFound | Code::FailedPrecondition) =>
                {
                    self.metrics.error(status.code())
                }
                _ => {}
            }
            outcome = match answer {
                Err(_) => Err(Refusal::UpstreamTimeout),
                Ok(Ok(r)) => Ok(r.into_inner()),
                Ok(Err(status)) => Err(match status.code() {
                    Code::NotFound => Refusal::CitizenNotFound,
                    // Only a case's step acted on out of order.
                    Code::FailedPrecondition => Refusal::StepNotReady {
                        detail: "the database refused the action: the step is not ready".into(),
                        detail_vi: "CSDL từ chối: bước này chưa sẵn sàng để xử lý".into(),
                    },
                    // A server honouring grpc-timeout answers CANCELLED when it runs out.
                    Code::DeadlineExceeded | Code::Cancelled => Refusal::UpstreamTimeout,
                    // The database's own text is never relayed (to the caller, the trail or
                    // the log): only its status code, mapped.
                    other => {
                        if other != Code::Unavailable {
                            tracing::warn!(code = ?other, "population database error");
                        }
                        Refusal::UpstreamUnavailable(format!("it answered {other:?}"))
                    }
                }),
            };
            match &outcome {
                Err(Refusal::UpstreamUnavailable(why)) if attempt < attempts => {
                    tracing::debug!(%why, "retrying the population database once");
                }
                _ => break,
            }
        }
        let changed = match &outcome {
            Ok(_) | Err(Refusal::CitizenNotFound | Refusal::StepNotReady { .. }) => {
                self.breaker.success()
            }
            Err(_) => self.breaker.failure(),
        };
        if let Some(state) = changed {
            self.metrics.breaker(state);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_after_consecutive_failures_and_probes_after_the_pause() {
        let b = Breaker::new(3, Duration::from_secs(5));
        for _ in 0..2 {
            assert!(b.admit().is_ok());
            b.failure();
        }
        assert!(b.admit().is_ok(), "two failures are not enough");
        b.failure();
        let wait = b.admit().unwrap_err();
        assert_eq!(wait, Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.admit().is_ok(), "one probe after the pause");
        assert!(b.admit().is_err(), "only one probe at a time");
        b.success();
        assert!(b.admit().is_ok());
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_says_once_when_it_opens_reopens_and_closes() {
        use crate::test_log::capture;
        let b = Breaker::new(2, Duration::from_secs(1));
        let ((), opened) = capture(|| {
            (0..4).for_each(|_| {
                b.failure();
            })
        });
        assert_eq!(opened.len(), 1, "{opened:#?}");
        assert!(opened[0].contains("WARN") && opened[0].contains("breaker opened"));
        assert!(
            opened[0].contains("consecutive_failures=2") && opened[0].contains("open_for_ms=1000")
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let ((), reopened) = capture(|| {
            assert!(b.admit().is_ok());
            b.failure();
        });
        assert_eq!(reopened.len(), 1, "{reopened:#?}");
        assert!(reopened[0].contains("breaker reopened"));
        tokio::time::advance(Duration::from_secs(1)).await;
        let ((), closed) = capture(|| {
            assert!(b.admit().is_ok());
            b.success();
            b.success();
        });
        assert_eq!(closed.len(), 1, "{closed:#?}");
        assert!(closed[0].contains("INFO") && closed[0].contains("breaker closed"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_the_breaker_again() {
        let b = Breaker::new(1, Duration::from_secs(2));
        b.failure();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(b.admit().is_ok());
        b.failure();
        assert_eq!(b.admit().unwrap_err(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(2));
        b.failure();
        b.success();
        b.failure();
        assert!(b.admit().is_ok());
    }
}
