//! Step 3, rate limits (governor): each officer's rate, each unit's rate (set per unit: a
//! provincial system and a commune counter differ), and a global rate that protects the
//! population database. Generic over the clock, so tests drive time by hand. A fleet keeps the
//! same limits in Redis instead ([`shared`]), with this process's limiter as its fallback.

pub mod shared;

use shared::{Cell, Decision, SharedLimiter};

use super::rescue::{LimitKind, Refusal};
use super::{Caller, Gate, Officer, Verdict};
use crate::config::{OnFailure, Rate, Unit};
use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use lienthong_domain::{OfficerCode, UnitCode};
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Keyed<K, C> = RateLimiter<K, HashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

struct UnitLimits<C: Clock> {
    unit: Direct<C>,
    rate: Rate,
    officer_rate: Rate,
    /// Whether the unit's limiter refused its last call (logged once when it starts and once
    /// when it ends, not at every refusal).
    refusing: AtomicBool,
    officers: Keyed<OfficerCode, C>,
}

struct Inner<C: Clock> {
    clock: C,
    global: Arc<GlobalLimit<C>>,
    /// VerifyBatch items' share of the global rate.
    batch: Arc<GlobalLimit<C>>,
    batch_share_percent: u32,
    units: HashMap<UnitCode, Arc<UnitLimits<C>>>,
}

struct GlobalLimit<C: Clock> {
    limiter: Direct<C>,
    rate: Rate,
    refusing: AtomicBool,
}

/// Notes whether a limiter refused, and logs when that changes.
fn refusing(flag: &AtomicBool, now: bool, what: &str, rate: Rate) {
    if flag.load(Ordering::Relaxed) == now || flag.swap(now, Ordering::Relaxed) == now {
        return;
    }
    if now {
        tracing::warn!(
            limit = what,
            per_second = rate.per_second.get(),
            burst = rate.burst.get(),
            "rate limit reached: refusing calls (RATE_LIMITED) until the budget refills"
        );
    } else {
        tracing::info!(limit = what, "rate limit: admitting calls again");
    }
}

/// The limits step. A reload swaps in new limits; a unit (or the global limit) whose rates are
/// unchanged keeps its state, so a reload neither refills nor empties anyone's budget.
pub struct Limits<C: Clock = DefaultClock> {
    /// The configured rates, with this process's limiters for them.
    inner: Arc<ArcSwap<Inner<C>>>,
    shared: Option<Arc<Shared<C>>>,
}

/// The fleet's shared limiter, and the limiters at this replica's share of each rate that
/// stand in for it under `fail_open`.
struct Shared<C: Clock> {
    limiter: SharedLimiter,
    fallback: ArcSwap<Inner<C>>,
}

impl<C: Clock> Clone for Limits<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The units with each rate divided among the replicas.
fn shares(units: &BTreeMap<UnitCode, Unit>, replicas: NonZeroU32) -> BTreeMap<UnitCode, Unit> {
    units
        .iter()
        .map(|(code, u)| {
            let mut u = u.clone();
            u.rate = shared::share(u.rate, replicas);
            u.officer_rate = shared::share(u.officer_rate, replicas);
            (code.clone(), u)
        })
        .collect()
}

fn quota(rate: Rate) -> Quota {
    Quota::per_second(rate.per_second).allow_burst(rate.burst)
}

impl<C: Clock + Clone> Limits<C> {
    pub fn new(global: Rate, units: &BTreeMap<UnitCode, Unit>, clock: C) -> Self {
        Self {
            inner: Arc::new(ArcSwap::from_pointee(Self::build(
                (global, 100),
                units,
                clock,
                None,
            ))),
            shared: None,
        }
    }

    /// Keeps the limits in the fleet's shared limiter; this process's limiters, at each rate
    /// divided among the replicas, stand in for it when it is down and the policy is
    /// `fail_open`.
    pub fn with_shared(mut self, limiter: SharedLimiter, units: &BTreeMap<UnitCode, Unit>) -> Self {
        let inner = self.inner.load_full();
        let replicas = limiter.replicas();
        let fallback = Self::build(
            (
                shared::share(inner.global.rate, replicas),
                inner.batch_share_percent,
            ),
            &shares(units, replicas),
            inner.clock.clone(),
            None,
        );
        self.shared = Some(Arc::new(Shared {
            limiter,
            fallback: ArcSwap::from_pointee(fallback),
        }));
        self
    }

    /// VerifyBatch items may take at most `percent` of the global rate; the rest stays for
    /// single calls.
    pub fn with_batch_share(self, percent: u32) -> Self {
        let old = self.inner.load_full();
        let mut inner = Self::build(
            (old.global.rate, percent),
            &BTreeMap::new(),
            old.clock.clone(),
            Some(&old),
        );
        inner.units = old.units.clone();
        self.inner.store(Arc::new(inner));
        self
    }

    /// Puts new rates in force, keeping the state of every limit whose rates are unchanged.
    pub fn replace(&self, global: (Rate, u32), units: &BTreeMap<UnitCode, Unit>) {
        let old = self.inner.load_full();
        let clock = old.clock.clone();
        self.inner.store(Arc::new(Self::build(
            global,
            units,
            clock.clone(),
            Some(&old),
        )));
        if let Some(shared) = &self.shared {
            let replicas = shared.limiter.replicas();
            let old = shared.fallback.load_full();
            shared.fallback.store(Arc::new(Self::build(
                (shared::share(global.0, replicas), global.1),
                &shares(units, replicas),
                clock,
                Some(&old),
            )));
        }
    }

    fn build(
        (global, batch_share_percent): (Rate, u32),
        units: &BTreeMap<UnitCode, Unit>,
        clock: C,
        old: Option<&Inner<C>>,
    ) -> Inner<C> {
        let units = units
            .values()
            .map(|u| {
                let kept = old
                    .and_then(|o| o.units.get(&u.code))
                    .filter(|l| l.rate == u.rate && l.officer_rate == u.officer_rate);
                let limits = kept.cloned().unwrap_or_else(|| {
                    Arc::new(UnitLimits {
                        unit: RateLimiter::direct_with_clock(quota(u.rate), clock.clone()),
                        rate: u.rate,
                        officer_rate: u.officer_rate,
                        refusing: AtomicBool::new(false),
                        officers: RateLimiter::hashmap_with_clock(
                            quota(u.officer_rate),
                            clock.clone(),
                        ),
                    })
                });
                (u.code.clone(), limits)
            })
            .collect();
        let limit = |rate: Rate, kept: Option<Arc<GlobalLimit<C>>>| {
            kept.filter(|g| g.rate == rate).unwrap_or_else(|| {
                Arc::new(GlobalLimit {
                    limiter: RateLimiter::direct_with_clock(quota(rate), clock.clone()),
                    rate,
                    refusing: AtomicBool::new(false),
                })
            })
        };
        let share = |v: std::num::NonZeroU32| {
            std::num::NonZeroU32::new(v.get().saturating_mul(batch_share_percent).div_ceil(100))
                .unwrap_or(std::num::NonZeroU32::MIN)
        };
        let batch_rate = Rate {
            per_second: share(global.per_second),
            burst: share(global.burst),
        };
        Inner {
            global: limit(global, old.map(|o| o.global.clone())),
            batch: limit(batch_rate, old.map(|o| o.batch.clone())),
            batch_share_percent,
            units,
            clock: clock.clone(),
        }
    }

    fn refused(
        inner: &Inner<C>,
        kind: LimitKind,
        subject: &str,
        n: NotUntil<C::Instant>,
    ) -> Refusal {
        Refusal::RateLimited {
            kind,
            subject: subject.to_owned(),
            retry_after: n
                .wait_time_from(inner.clock.now())
                .max(Duration::from_millis(1)),
        }
    }

    /// Takes one call from the officer's, the unit's and the global budget, narrowest first, so
    /// one busy officer does not spend the unit's budget on refused calls.
    pub fn admit(&self, unit: &UnitCode, officer: &OfficerCode) -> Result<(), Refusal> {
        Self::admit_local(&self.inner.load(), unit, officer, false)
    }

    /// The officer's, the unit's, (for a batch item) the batches' share and the global budget
    /// of one set of local limiters.
    fn admit_local(
        inner: &Inner<C>,
        unit: &UnitCode,
        officer: &OfficerCode,
        batch_item: bool,
    ) -> Result<(), Refusal> {
        Self::admit_officer_and_unit(inner, unit, officer)?;
        if batch_item {
            let checked = inner.batch.limiter.check();
            refusing(
                &inner.batch.refusing,
                checked.is_err(),
                "batch share",
                inner.batch.rate,
            );
            checked.map_err(|n| {
                Self::refused(
                    inner,
                    LimitKind::Batch,
                    &format!("batches' {}% of the global rate", inner.batch_share_percent),
                    n,
                )
            })?;
        }
        Self::admit_global(inner)
    }

    /// Takes one call (or one batch item) from the officer's, the unit's and the global
    /// budget: from the fleet's shared limiter when there is one, else from this process's.
    pub async fn admit_any(
        &self,
        unit: &UnitCode,
        officer: &OfficerCode,
        batch_item: bool,
    ) -> Result<(), Refusal> {
        match &self.shared {
            None => Self::admit_local(&self.inner.load(), unit, officer, batch_item),
            Some(shared) => self.admit_shared(shared, unit, officer, batch_item).await,
        }
    }

    async fn admit_shared(
        &self,
        shared: &Shared<C>,
        unit: &UnitCode,
        officer: &OfficerCode,
        batch_item: bool,
    ) -> Result<(), Refusal> {
        let inner = self.inner.load_full();
        let limits = inner
            .units
            .get(unit)
            .ok_or_else(|| Refusal::UnknownUnit(unit.to_string()))?;
        let key = |parts: &[&str]| shared.limiter.key(parts);
        let mut cells = vec![
            (
                LimitKind::Officer,
                Cell {
                    key: key(&["o", unit.as_str(), officer.as_str()]),
                    rate: limits.officer_rate,
                },
            ),
            (
                LimitKind::Unit,
                Cell {
                    key: key(&["u", unit.as_str()]),
                    rate: limits.rate,
                },
            ),
        ];
        if batch_item {
            cells.push((
                LimitKind::Batch,
                Cell {
                    key: key(&["b"]),
                    rate: inner.batch.rate,
                },
            ));
        }
        cells.push((
            LimitKind::Global,
            Cell {
                key: key(&["g"]),
                rate: inner.global.rate,
            },
        ));
        let (kinds, cells): (Vec<_>, Vec<_>) = cells.into_iter().unzip();
        let decision = shared.limiter.admit(&cells).await;
        let refused_by = match &decision {
            Decision::Refused { index, .. } => Some(kinds[*index]),
            _ => None,
        };
        refusing(
            &limits.refusing,
            refused_by == Some(LimitKind::Unit),
            unit.as_str(),
            limits.rate,
        );
        if refused_by != Some(LimitKind::Officer) && refused_by != Some(LimitKind::Unit) {
            refusing(
                &inner.global.refusing,
                refused_by == Some(LimitKind::Global),
                "global",
                inner.global.rate,
            );
        }
        match decision {
            Decision::Admitted => Ok(()),
            Decision::Refused { index, retry_after } => Err(Refusal::RateLimited {
                kind: kinds[index],
                subject: match kinds[index] {
                    LimitKind::Officer => officer.to_string(),
                    LimitKind::Unit => unit.to_string(),
                    LimitKind::Batch => {
                        format!("batches' {}% of the global rate", inner.batch_share_percent)
                    }
                    _ => "population database".to_owned(),
                },
                retry_after,
            }),
            Decision::Unavailable => {
                shared.limiter.bypassed();
                match shared.limiter.on_failure() {
                    OnFailure::FailOpen => {
                        Self::admit_local(&shared.fallback.load(), unit, officer, batch_item)
                    }
                    OnFailure::FailClosed => Err(Refusal::LimiterUnavailable {
                        retry_after: shared.limiter.probe_interval(),
                    }),
                }
            }
        }
    }

    /// The officer's budget, then the unit's.
    fn admit_officer_and_unit(
        inner: &Inner<C>,
        unit: &UnitCode,
        officer: &OfficerCode,
    ) -> Result<(), Refusal> {
        let limits = inner
            .units
            .get(unit)
            .ok_or_else(|| Refusal::UnknownUnit(unit.to_string()))?;
        limits
            .officers
            .check_key(officer)
            .map_err(|n| Self::refused(inner, LimitKind::Officer, officer.as_str(), n))?;
        let checked = limits.unit.check();
        refusing(
            &limits.refusing,
            checked.is_err(),
            unit.as_str(),
            limits.rate,
        );
        checked.map_err(|n| Self::refused(inner, LimitKind::Unit, unit.as_str(), n))
    }

    /// Takes one call from the global budget (each item of a batch does).
    fn admit_global(inner: &Inner<C>) -> Result<(), Refusal> {
        let checked = inner.global.limiter.check();
        refusing(
            &inner.global.refusing,
            checked.is_err(),
            "global",
            inner.global.rate,
        );
        checked.map_err(|n| Self::refused(inner, LimitKind::Global, "population database", n))
    }

    /// Forgets officers whose budget is full again, so the keyed state stays small.
    pub fn forget_idle(&self) {
        for u in self.inner.load().units.values() {
            u.officers.retain_recent();
        }
        if let Some(shared) = &self.shared {
            for u in shared.fallback.load().units.values() {
                u.officers.retain_recent();
            }
        }
    }
}

impl<C: Clock + Clone + Send + Sync + 'static> Gate for Limits<C> {
    const STAGE: &'static str = "limits";

    const DEFERRABLE: bool = true;

    fn check(&self, request: &mut http::request::Parts) -> Result<(), Refusal> {
        let caller = request.extensions.get::<Caller>();
        let officer = request.extensions.get::<Officer>();
        match (caller, officer) {
            (Some(c), Some(o)) => self.admit(&c.unit.code, &o.code),
            _ => Err(Refusal::Internal("limits before authentication".into())),
        }
    }

    fn verdict(&self, request: &mut http::request::Parts) -> Verdict {
        if self.shared.is_none() {
            return Verdict::Now(self.check(request));
        }
        let caller = request.extensions.get::<Caller>();
        let officer = request.extensions.get::<Officer>();
        let (Some(c), Some(o)) = (caller, officer) else {
            return Verdict::Now(Err(Refusal::Internal(
                "limits before authentication".into(),
            )));
        };
        let (unit, officer, limits) = (c.unit.code.clone(), o.code.clone(), self.clone());
        Verdict::Later(Box::pin(async move {
            limits.admit_any(&unit, &officer, false).await
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Approval, Environment};
    use governor::clock::FakeRelativeClock;
    use std::collections::BTreeSet;
    use std::num::NonZeroU32;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    fn unit(code: &str, unit_rate: Rate, officer_rate: Rate) -> Unit {
        Unit {
            code: UnitCode::parse(code).unwrap(),
            name: code.into(),
            environment: Environment::Production,
            approval: Approval::Approved,
            procedures: BTreeSet::new(),
            rate: unit_rate,
            officer_rate,
            batch_max_items: 0,
            audit_scope: crate::config::AuditScope::National,
        }
    }

    fn setup(global: Rate) -> (Limits<FakeRelativeClock>, FakeRelativeClock, UnitCode) {
        let u = unit("000.00.00.H42", rate(10, 4), rate(1, 2));
        let code = u.code.clone();
        let units = BTreeMap::from([(code.clone(), u)]);
        let clock = FakeRelativeClock::default();
        (Limits::new(global, &units, clock.clone()), clock, code)
    }

    fn kind(r: Result<(), Refusal>) -> Option<LimitKind> {
        match r {
            Err(Refusal::RateLimited { kind, .. }) => Some(kind),
            Ok(()) => None,
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_officer_limit_trips_first_and_says_when_to_retry() {
        let (limits, clock, unit) = setup(rate(1000, 1000));
        let a = OfficerCode::parse("CB.A").unwrap();
        assert_eq!(kind(limits.admit(&unit, &a)), None);
        assert_eq!(kind(limits.admit(&unit, &a)), None);
        match limits.admit(&unit, &a) {
            Err(Refusal::RateLimited {
                kind: LimitKind::Officer,
                subject,
                retry_after,
            }) => {
                assert_eq!(subject, "CB.A");
                assert!(retry_after <= Duration::from_secs(1) && retry_after > Duration::ZERO);
            }
            other => panic!("{other:?}"),
        }
        clock.advance(Duration::from_secs(1));
        assert_eq!(kind(limits.admit(&unit, &a)), None);
    }

    #[test]
    fn the_unit_limit_covers_all_its_officers() {
        let (limits, _clock, unit) = setup(rate(1000, 1000));
        let officers: Vec<_> = (0..5)
            .map(|i| OfficerCode::parse(&format!("CB.{i}")).unwrap())
            .collect();
        let results: Vec<_> = officers
            .iter()
            .map(|o| kind(limits.admit(&unit, o)))
            .collect();
        assert_eq!(
            results,
            vec![None, None, None, None, Some(LimitKind::Unit)],
            "unit burst is 4"
        );
    }

    #[test]
    fn a_unit_that_starts_and_stops_being_refused_leaves_one_line_each_time() {
        let (limits, clock, unit) = setup(rate(1000, 1000));
        let officers: Vec<_> = (0..12)
            .map(|i| OfficerCode::parse(&format!("CB.{i}")).unwrap())
            .collect();
        let (refused, lines) = crate::test_log::capture(|| {
            let mut refused = 0;
            for o in &officers {
                refused += usize::from(limits.admit(&unit, o).is_err());
            }
            clock.advance(Duration::from_secs(1));
            for o in &officers[..2] {
                refused += usize::from(limits.admit(&unit, o).is_err());
            }
            refused
        });
        assert_eq!(refused, 8, "burst 4, then refused until the budget refills");
        let reached: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("rate limit reached"))
            .collect();
        assert_eq!(reached.len(), 1, "{lines:#?}");
        assert!(
            reached[0].contains("WARN") && reached[0].contains("000.00.00.H42"),
            "{reached:?}"
        );
        assert!(reached[0].contains("per_second=10") && reached[0].contains("burst=4"));
        let again = lines
            .iter()
            .filter(|l| l.contains("admitting calls again"))
            .count();
        assert_eq!(again, 1, "{lines:#?}");
    }

    #[test]
    fn the_global_limit_protects_the_database() {
        let (limits, clock, unit) = setup(rate(1, 1));
        let a = OfficerCode::parse("CB.A").unwrap();
        let b = OfficerCode::parse("CB.B").unwrap();
        assert_eq!(kind(limits.admit(&unit, &a)), None);
        assert_eq!(kind(limits.admit(&unit, &b)), Some(LimitKind::Global));
        clock.advance(Duration::from_secs(1));
        assert_eq!(kind(limits.admit(&unit, &b)), None);
    }
}
