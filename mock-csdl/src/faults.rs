//! Fault injection: latency, error rates, every-n-th failures and outage windows, per method or
//! persona, set and cleared at run time, deterministic under each rule's seed.

use crate::metrics::RuleLabel;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Which calls a rule applies to; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Method name, e.g. "GetCitizen".
    pub method: Option<String>,
    /// The personal ID the call is about.
    pub personal_id: Option<String>,
}

impl Scope {
    fn matches(&self, method: &str, personal_id: Option<&str>) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .personal_id
                .as_deref()
                .is_none_or(|p| Some(p) == personal_id)
    }
}

/// What a rule does to the calls it matches.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Delay by `fixed_ms` plus a uniform draw in `0..=jitter_ms`.
    Latency { fixed_ms: u32, jitter_ms: u32 },
    /// Fail with probability `rate`.
    Error {
        rate: f64,
        code: tonic::Code,
        message: String,
    },
    /// Fail every n-th matching call (the n-th, 2n-th, ...).
    EveryNth { n: u32, code: tonic::Code },
    /// Fail every matching call between two instants.
    Outage { start: Instant, end: Instant },
}

/// One fault rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub id: String,
    pub scope: Scope,
    pub effect: Effect,
    pub seed: u64,
    /// Installed with the persona table rather than at run time.
    pub builtin: bool,
}

/// Why a rule is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("fault.error.rate must be between 0.0 and 1.0, got {0}")]
    Rate(String),
    #[error("fault.every_nth.n must be at least 1")]
    ZeroPeriod,
    #[error("fault.{0}.code must be a gRPC error code from 1 to 16 (e.g. 14 UNAVAILABLE), got {1}")]
    Code(&'static str, i32),
    #[error("fault.latency must be at most 600000 ms in total, got {0} ms")]
    Latency(u64),
    #[error("a fault needs an effect: latency, error, every_nth or outage")]
    NoEffect,
    #[error("fault.scope.method {0:?} is not a method of the registry (GetCitizen, GetHousehold)")]
    Method(String),
}

impl FaultRule {
    /// Checks the rule's numbers.
    pub fn validate(&self) -> Result<(), FaultError> {
        if let Some(m) = &self.scope.method
            && !["GetCitizen", "GetHousehold"].contains(&m.as_str())
        {
            return Err(FaultError::Method(m.clone()));
        }
        match &self.effect {
            Effect::Latency {
                fixed_ms,
                jitter_ms,
            } => {
                let total = u64::from(*fixed_ms) + u64::from(*jitter_ms);
                if total > 600_000 {
                    return Err(FaultError::Latency(total));
                }
            }
            Effect::Error { rate, code, .. } => {
                if !(0.0..=1.0).contains(rate) {
                    return Err(FaultError::Rate(rate.to_string()));
                }
                if *code == tonic::Code::Ok {
                    return Err(FaultError::Code("error", 0));
                }
            }
            Effect::EveryNth { n, code } => {
                if *n == 0 {
                    return Err(FaultError::ZeroPeriod);
                }
                if *code == tonic::Code::Ok {
                    return Err(FaultError::Code("every_nth", 0));
                }
            }
            Effect::Outage { .. } => {}
        }
        Ok(())
    }
}

/// What the rules decided for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// How long to wait before answering (or failing).
    pub delay: Duration,
    /// The failure, if any rule failed the call.
    pub failure: Option<(tonic::Code, String)>,
}

struct Active {
    rule: FaultRule,
    rng: ChaCha8Rng,
    matched: u64,
}

#[derive(Default)]
struct State {
    rules: Vec<Active>,
    next_id: u64,
    triggered: u64,
}

/// The rules in force.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
    /// Calls each rule delayed or failed (unregistered unless the server registers it).
    activations: Family<RuleLabel, Counter>,
}

impl Faults {
    /// Starts with the given rules (the chaos personas' built-in faults).
    pub fn with_rules(rules: Vec<FaultRule>) -> Self {
        let faults = Self::default();
        for r in rules {
            faults.insert(r);
        }
        faults
    }

    /// Counts each rule's activations on `family` (the server's metrics).
    pub fn counting_on(mut self, family: Family<RuleLabel, Counter>) -> Self {
        self.activations = family;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the rules half-written: every update is a
        // single push or retain. Recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, rule: FaultRule) {
        self.lock().rules.push(Active {
            rng: ChaCha8Rng::seed_from_u64(rule.seed),
            rule,
            matched: 0,
        });
    }

    /// Adds a run-time rule and returns it with its assigned id.
    pub fn add(&self, mut rule: FaultRule) -> Result<FaultRule, FaultError> {
        rule.validate()?;
        let mut state = self.lock();
        state.next_id += 1;
        rule.id = format!("fault-{}", state.next_id);
        rule.builtin = false;
        state.rules.push(Active {
            rng: ChaCha8Rng::seed_from_u64(rule.seed),
            rule: rule.clone(),
            matched: 0,
        });
        Ok(rule)
    }

    /// Removes one rule by id, or every run-time rule (and the built-in ones if asked).
    pub fn clear(&self, id: Option<&str>, include_builtin: bool) -> usize {
        let mut state = self.lock();
        let before = state.rules.len();
        state.rules.retain(|a| match id {
            Some(id) => a.rule.id != id,
            None => a.rule.builtin && !include_builtin,
        });
        before - state.rules.len()
    }

    /// The rules in force.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().rules.iter().map(|a| a.rule.clone()).collect()
    }

    /// Calls failed by a rule so far.
    pub fn triggered(&self) -> u64 {
        self.lock().triggered
    }

    /// Decides what happens to one call. Every matching rule sees the call, so counters and
    /// random draws advance the same way whatever the other rules do.
    pub fn evaluate(&self, method: &str, personal_id: Option<&str>, now: Instant) -> Verdict {
        let mut state = self.lock();
        let mut delay = Duration::ZERO;
        let mut failure = None;
        for active in state
            .rules
            .iter_mut()
            .filter(|a| a.rule.scope.matches(method, personal_id))
        {
            active.matched += 1;
            let mut delayed = false;
            let failed = match &active.rule.effect {
                Effect::Latency {
                    fixed_ms,
                    jitter_ms,
                } => {
                    let jitter = if *jitter_ms > 0 {
                        active.rng.random_range(0..=*jitter_ms)
                    } else {
                        0
                    };
                    let ms = u64::from(*fixed_ms) + u64::from(jitter);
                    delayed = ms > 0;
                    delay += Duration::from_millis(ms);
                    None
                }
                Effect::Error {
                    rate,
                    code,
                    message,
                } => active.rng.random_bool(*rate).then(|| {
                    let msg = if message.is_empty() {
                        format!("injected fault {}: error rate {rate}", active.rule.id)
                    } else {
                        message.clone()
                    };
                    (*code, msg)
                }),
                Effect::EveryNth { n, code } => (active.matched % u64::from(*n) == 0).then(|| {
                    (
                        *code,
                        format!(
                            "injected fault {}: call {} fails (every {n})",
                            active.rule.id, active.matched
                        ),
                    )
                }),
                Effect::Outage { start, end } => (now >= *start && now < *end).then(|| {
                    (
                        tonic::Code::Unavailable,
                        format!(
                            "injected fault {}: the population database is in an outage window",
                            active.rule.id
                        ),
                    )
                }),
            };
            if delayed || failed.is_some() {
                self.activations
                    .get_or_create(&RuleLabel {
                        rule: active.rule.id.clone(),
                    })
                    .inc();
            }
            if failure.is_none() {
                failure = failed;
            }
        }
        if failure.is_some() {
            state.triggered += 1;
        }
        Verdict { delay, failure }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scope: Scope, effect: Effect, seed: u64) -> FaultRule {
        FaultRule {
            id: String::new(),
            scope,
            effect,
            seed,
            builtin: false,
        }
    }

    fn all() -> Scope {
        Scope::default()
    }

    #[test]
    fn latency_is_fixed_plus_seeded_jitter() {
        let now = Instant::now();
        let draws = |seed| {
            let f = Faults::default();
            f.add(rule(
                all(),
                Effect::Latency {
                    fixed_ms: 100,
                    jitter_ms: 50,
                },
                seed,
            ))
            .unwrap();
            (0..20)
                .map(|_| f.evaluate("GetCitizen", None, now).delay)
                .collect::<Vec<_>>()
        };
        let a = draws(7);
        assert_eq!(a, draws(7), "same seed, same delays");
        assert_ne!(a, draws(8), "another seed, other delays");
        assert!(
            a.iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_millis(150))
        );
    }

    #[test]
    fn error_rate_is_deterministic_and_close_to_the_rate() {
        let now = Instant::now();
        let f = Faults::default();
        f.add(rule(
            all(),
            Effect::Error {
                rate: 0.3,
                code: tonic::Code::Internal,
                message: String::new(),
            },
            42,
        ))
        .unwrap();
        let failures: Vec<bool> = (0..1000)
            .map(|_| f.evaluate("GetCitizen", None, now).failure.is_some())
            .collect();
        let count = failures.iter().filter(|x| **x).count();
        assert!((230..370).contains(&count), "{count} failures of 1000");
        assert_eq!(f.triggered(), count as u64);
    }

    #[test]
    fn every_nth_fails_exactly_every_nth() {
        let now = Instant::now();
        let f = Faults::default();
        f.add(rule(
            all(),
            Effect::EveryNth {
                n: 2,
                code: tonic::Code::Unavailable,
            },
            0,
        ))
        .unwrap();
        let pattern: Vec<bool> = (0..6)
            .map(|_| f.evaluate("GetCitizen", None, now).failure.is_some())
            .collect();
        assert_eq!(pattern, [false, true, false, true, false, true]);
    }

    #[test]
    fn outage_fails_only_inside_its_window() {
        let t0 = Instant::now();
        let f = Faults::default();
        f.add(rule(
            all(),
            Effect::Outage {
                start: t0 + Duration::from_secs(10),
                end: t0 + Duration::from_secs(20),
            },
            0,
        ))
        .unwrap();
        let at = |s| {
            f.evaluate("GetCitizen", None, t0 + Duration::from_secs(s))
                .failure
                .map(|(c, _)| c)
        };
        assert_eq!(at(5), None);
        assert_eq!(at(10), Some(tonic::Code::Unavailable));
        assert_eq!(at(19), Some(tonic::Code::Unavailable));
        assert_eq!(at(20), None);
    }

    #[test]
    fn scope_limits_rules_to_a_method_or_persona() {
        let now = Instant::now();
        let f = Faults::default();
        let fail = Effect::Error {
            rate: 1.0,
            code: tonic::Code::Internal,
            message: String::new(),
        };
        f.add(rule(
            Scope {
                method: Some("GetHousehold".into()),
                personal_id: None,
            },
            fail.clone(),
            0,
        ))
        .unwrap();
        f.add(rule(
            Scope {
                method: None,
                personal_id: Some("042081999018".into()),
            },
            fail,
            0,
        ))
        .unwrap();
        assert!(
            f.evaluate("GetCitizen", Some("042188999005"), now)
                .failure
                .is_none()
        );
        assert!(
            f.evaluate("GetHousehold", Some("042188999005"), now)
                .failure
                .is_some()
        );
        assert!(
            f.evaluate("GetCitizen", Some("042081999018"), now)
                .failure
                .is_some()
        );
    }

    #[test]
    fn clearing_keeps_builtin_rules_unless_asked() {
        let f = Faults::with_rules(crate::personas::builtin_faults());
        let added = f
            .add(rule(
                all(),
                Effect::Latency {
                    fixed_ms: 1,
                    jitter_ms: 0,
                },
                0,
            ))
            .unwrap();
        assert_eq!(added.id, "fault-1");
        assert_eq!(f.list().len(), 5);
        assert_eq!(f.clear(None, false), 1);
        assert_eq!(f.list().len(), 4);
        assert_eq!(f.clear(Some("persona:chaos-slow"), false), 1);
        assert_eq!(f.clear(None, true), 3);
        assert!(f.list().is_empty());
    }

    #[test]
    fn bad_rules_are_refused_with_the_key_named() {
        let f = Faults::default();
        let err = f
            .add(rule(
                all(),
                Effect::Error {
                    rate: 1.5,
                    code: tonic::Code::Internal,
                    message: String::new(),
                },
                0,
            ))
            .unwrap_err();
        assert_eq!(err, FaultError::Rate("1.5".into()));
        assert!(err.to_string().contains("fault.error.rate"));
        let err = f
            .add(rule(
                all(),
                Effect::EveryNth {
                    n: 0,
                    code: tonic::Code::Internal,
                },
                0,
            ))
            .unwrap_err();
        assert_eq!(err, FaultError::ZeroPeriod);
        let err = f
            .add(rule(
                Scope {
                    method: Some("DropTables".into()),
                    personal_id: None,
                },
                Effect::Latency {
                    fixed_ms: 1,
                    jitter_ms: 0,
                },
                0,
            ))
            .unwrap_err();
        assert_eq!(err, FaultError::Method("DropTables".into()));
    }
}
