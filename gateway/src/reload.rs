//! Live reconfiguration: the configuration file read again (on SIGHUP, or `POST /reload` on the
//! admin listener) and put in force without a restart. Units (added, removed, re-approved,
//! their procedures and rates), officers' rates, the global rate, the catalog and the token
//! issuers change at once for the calls that arrive from then on; calls in flight finish under
//! the configuration they started with (their caller carries its unit and catalog), and
//! connections stay open. A limit whose rates are unchanged keeps its state. An invalid file
//! changes nothing. Every reload, applied or refused, leaves an audit record and a log line.

use crate::audit::log::timestamp_us;
use crate::audit::record::Entry;
use crate::config::{Config, ConfigSource};
use crate::pipeline::{Auditor, Authn, Identify, Limits};
use governor::clock::Clock;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// The method recorded for a reload.
pub const RELOAD_METHOD: &str = "(configuration reload)";

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In force; what changed (empty: nothing), and the changed keys that only a restart
    /// applies.
    Applied {
        changes: Vec<String>,
        need_restart: Vec<String>,
    },
    /// Nothing changed: every problem of the new file, each naming its key.
    Refused { problems: Vec<String> },
}

impl Outcome {
    /// In words, items separated by `sep`: what changed (or "no change") and the keys that
    /// wait for a restart, or every problem.
    pub fn said(&self, sep: &str) -> String {
        match self {
            Outcome::Applied {
                changes,
                need_restart,
            } => {
                let mut said = if changes.is_empty() {
                    "no change".to_owned()
                } else {
                    changes.join(sep)
                };
                if !need_restart.is_empty() {
                    said.push_str(&format!(
                        "{sep}not applied until a restart: {}",
                        need_restart.join(", ")
                    ));
                }
                said
            }
            Outcome::Refused { problems } => problems.join(sep),
        }
    }
}

/// A reload as the admin listener calls it: who asked → what happened.
pub type ReloadFn =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// Puts a configuration file's new contents in force.
pub struct Reloader<C: Clock> {
    source: Option<ConfigSource>,
    running: Mutex<Config>,
    identify: Identify,
    limits: Limits<C>,
    authn: Authn,
    auditor: Auditor,
}

impl<C: Clock + Clone + Send + Sync + 'static> Reloader<C> {
    pub fn new(
        config: &Config,
        identify: Identify,
        limits: Limits<C>,
        authn: Authn,
        auditor: Auditor,
    ) -> Self {
        Self {
            source: config.source.clone(),
            running: Mutex::new(config.clone()),
            identify,
            limits,
            authn,
            auditor,
        }
    }

    /// Reads the file again and puts it in force, or refuses it; `who` asked (for the record).
    pub async fn reload(&self, who: &str) -> Outcome {
        let started = Instant::now();
        let loaded = match &self.source {
            Some(source) => source.load().map_err(|e| {
                e.problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", e.file.display()))
                    .collect()
            }),
            None => Err(vec![
                "the running configuration was not read from a file: nothing to read again"
                    .to_owned(),
            ]),
        };
        let outcome = match loaded {
            Ok(new) => {
                crate::jwks::start(&new.auth).await;
                self.apply(new)
            }
            Err(problems) => Outcome::Refused { problems },
        };
        let said = outcome.said("; ");
        let (code, reason) = match &outcome {
            Outcome::Applied { .. } => {
                tracing::info!(%who, changes = %said, "configuration reloaded");
                (0, "")
            }
            Outcome::Refused { .. } => {
                tracing::warn!(%who, problems = %said, "configuration reload refused: the running configuration stays in force");
                (tonic::Code::InvalidArgument as i32, "CONFIG_INVALID")
            }
        };
        self.auditor.metrics.reload(code == 0);
        let entry = Entry {
            time_us: timestamp_us(),
            request_id: format!("reload-{}", timestamp_us()),
            peer_address: who.to_owned(),
            method: RELOAD_METHOD.into(),
            outcome_code: code,
            outcome_reason: reason.into(),
            outcome_message: said,
            latency_us: started.elapsed().as_micros() as u64,
            ..Entry::default()
        };
        if let Err(e) = self.auditor.log.append(entry).await {
            tracing::error!(error = %e, "the reload's audit record could not be written");
        }
        outcome
    }

    /// Puts the reloadable parts of `new` in force: limits first, so that a unit the identity
    /// step admits always has its limits.
    fn apply(&self, new: Config) -> Outcome {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let changes = changes(&running, &new);
        let need_restart = need_restart(&running, &new);
        self.limits
            .replace((new.global_rate, new.batch_share_percent), &new.units);
        self.identify.replace(&new);
        self.authn.reload(&new.auth);
        self.auditor.metrics.set_known(
            new.units.keys().map(|u| u.as_str()),
            new.catalog.iter().map(|p| p.code.as_str()),
        );
        running.units = new.units;
        running.revoked_certificates = new.revoked_certificates;
        running.catalog = new.catalog;
        running.auth = new.auth;
        running.global_rate = new.global_rate;
        running.batch_share_percent = new.batch_share_percent;
        Outcome::Applied {
            changes,
            need_restart,
        }
    }

    /// The reload as the admin listener calls it.
    pub fn as_fn(self: &Arc<Self>) -> ReloadFn {
        let me = self.clone();
        Arc::new(move |who| {
            let me = me.clone();
            Box::pin(async move { me.reload(&who).await })
        })
    }
}

fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// What changed among the reloadable parts, in words.
fn changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let codes =
        |c: &Config| -> BTreeSet<String> { c.units.keys().map(|u| u.to_string()).collect() };
    let (before, after) = (codes(old), codes(new));
    for added in after.difference(&before) {
        out.push(format!("unit {added} added"));
    }
    for removed in before.difference(&after) {
        out.push(format!("unit {removed} removed"));
    }
    for (code, u) in &new.units {
        let Some(o) = old.units.get(code) else {
            continue;
        };
        let mut what = Vec::new();
        if o.approval != u.approval {
            what.push(format!(
                "approval {} → {}",
                o.approval.as_str(),
                u.approval.as_str()
            ));
        }
        let granted: Vec<String> = u
            .procedures
            .difference(&o.procedures)
            .map(|p| format!("+{p}"))
            .chain(
                o.procedures
                    .difference(&u.procedures)
                    .map(|p| format!("-{p}")),
            )
            .collect();
        if !granted.is_empty() {
            what.push(format!("procedures {}", granted.join(" ")));
        }
        if o.rate != u.rate {
            what.push("rate".into());
        }
        if o.officer_rate != u.officer_rate {
            what.push("officer rate".into());
        }
        if !same(&o.environment, &u.environment)
            || o.batch_max_items != u.batch_max_items
            || !same(&o.audit_scope, &u.audit_scope)
            || o.name != u.name
        {
            what.push("other settings".into());
        }
        if !what.is_empty() {
            out.push(format!("unit {code}: {}", what.join(", ")));
        }
    }
    let procedures = |c: &Config| -> BTreeMap<String, String> {
        c.catalog
            .iter()
            .map(|p| (p.code.to_string(), format!("{p:?}")))
            .collect()
    };
    let (before, after) = (procedures(old), procedures(new));
    for (code, p) in &after {
        match before.get(code) {
            None => out.push(format!("procedure {code} added to the catalog")),
            Some(o) if o != p => out.push(format!("procedure {code} changed")),
            _ => {}
        }
    }
    for code in before.keys().filter(|c| !after.contains_key(*c)) {
        out.push(format!("procedure {code} removed from the catalog"));
    }
    let revoked = new
        .revoked_certificates
        .difference(&old.revoked_certificates)
        .count();
    let restored = old
        .revoked_certificates
        .difference(&new.revoked_certificates)
        .count();
    if revoked > 0 {
        out.push(format!("{revoked} certificate(s) revoked"));
    }
    if restored > 0 {
        out.push(format!("{restored} certificate(s) no longer revoked"));
    }
    if old.global_rate != new.global_rate {
        out.push("global rate".into());
    }
    if old.batch_share_percent != new.batch_share_percent {
        out.push("batch share of the global rate".into());
    }
    if !same(&old.auth, &new.auth) {
        out.push("token issuers".into());
    }
    out
}

/// The keys that changed but only take effect at the next start.
fn need_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    let mut check = |key: &str, changed: bool| {
        if changed {
            keys.push(key.to_owned());
        }
    };
    check("environment", old.environment != new.environment);
    check("listen", old.listen != new.listen);
    check("health_listen", old.health_listen != new.health_listen);
    check("admin_listen", old.admin_listen != new.admin_listen);
    check("tls", !same(&old.tls, &new.tls));
    check("upstream", !same(&old.upstream, &new.upstream));
    check(
        "max_message_bytes",
        old.max_message_bytes != new.max_message_bytes,
    );
    check(
        "shutdown_grace_ms",
        old.shutdown_grace != new.shutdown_grace,
    );
    check("audit", !same(&old.audit, &new.audit));
    check(
        "limits.backend, limits.redis",
        !same(&old.shared_limits, &new.shared_limits)
            || old.shared_limits.as_ref().map(|s| &s.url)
                != new.shared_limits.as_ref().map(|s| &s.url),
    );
    check(
        "audit.central.url",
        old.audit.central.as_ref().map(|c| &c.url) != new.audit.central.as_ref().map(|c| &c.url),
    );
    check("door", !same(&old.door, &new.door));
    check("transport", !same(&old.transport, &new.transport));
    check(
        "verification",
        old.verification_budget_per_day != new.verification_budget_per_day,
    );
    keys
}
