//! Step 3, rate limits (governor): each officer's rate, each unit's rate (set per unit: a
//! provincial system and a commune counter differ), and a global rate that protects the
//! population database. Generic over the clock, so tests drive time by hand.

use super::rescue::{LimitKind, Refusal};
use super::{Caller, Gate, Officer};
use crate::config::{Rate, Unit};
use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use lienthong_domain::{OfficerCode, UnitCode};
use std::collections::{BTreeMap, HashMap};
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
    inner: Arc<ArcSwap<Inner<C>>>,
}

impl<C: Clock> Clone for Limits<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
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
        }
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
        self.inner
            .store(Arc::new(Self::build(global, units, clock, Some(&old))));
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

    fn refused(&self, kind: LimitKind, subject: &str, n: NotUntil<C::Instant>) -> Refusal {
        Refusal::RateLimited {
            kind,
            subject: subject.to_owned(),
            retry_after: n
                .wait_time_from(self.inner.load().clock.now())
                .max(Duration::from_millis(1)),
        }
    }

    /// Takes one call from the officer's, the unit's and the global budget, narrowest first, so
    /// one busy officer does not spend the unit's budget on refused calls.
    pub fn admit(&self, unit: &UnitCode, officer: &OfficerCode) -> Result<(), Refusal> {
        self.admit_officer_and_unit(&self.inner.load(), unit, officer)?;
        self.admit_global()
    }

    /// The officer's budget, then the unit's.
    fn admit_officer_and_unit(
        &self,
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
            .map_err(|n| self.refused(LimitKind::Officer, officer.as_str(), n))?;
        let checked = limits.unit.check();
        refusing(
            &limits.refusing,
            checked.is_err(),
            unit.as_str(),
            limits.rate,
        );
        checked.map_err(|n| self.refused(LimitKind::Unit, unit.as_str(), n))
    }

    /// Takes one VerifyBatch item from the officer's and the unit's budget, then from the
    /// batches' share of the global budget, then from the global budget.
    pub fn admit_batch_item(&self, unit: &UnitCode, officer: &OfficerCode) -> Result<(), Refusal> {
        let inner = self.inner.load();
        self.admit_officer_and_unit(&inner, unit, officer)?;
        let checked = inner.batch.limiter.check();
        refusing(
            &inner.batch.refusing,
            checked.is_err(),
            "batch share",
            inner.batch.rate,
        );
        checked.map_err(|n| {
            self.refused(
                LimitKind::Batch,
                &format!("batches' {}% of the global rate", inner.batch_share_percent),
                n,
            )
        })?;
        self.admit_global()
    }

    /// Takes one call from the global budget (each item of a batch does).
    pub fn admit_global(&self) -> Result<(), Refusal> {
        let inner = self.inner.load();
        let checked = inner.global.limiter.check();
        refusing(
            &inner.global.refusing,
            checked.is_err(),
            "global",
            inner.global.rate,
        );
        checked.map_err(|n| self.refused(LimitKind::Global, "population database", n))
    }

    /// Forgets officers whose budget is full again, so the keyed state stays small.
    pub fn forget_idle(&self) {
        for u in self.inner.load().units.values() {
            u.officers.retain_recent();
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
