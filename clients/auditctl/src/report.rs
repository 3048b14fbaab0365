//! Misuse signals drawn from the Đề án 06 reports, computed offline from the records: shared
//! accounts, accounts gone silent, lookups without a dossier, use outside office hours, an
//! officer's volume far above their peers, and refusals in bursts. Signals, not verdicts: each
//! names the records a reviewer should read.

use lienthong_domain::date::civil_from_days;
use lienthong_gateway::audit::record::Record;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Vietnam's offset from UTC (no daylight saving).
const VN_OFFSET_US: i64 = 7 * 3600 * 1_000_000;
const MINUTE_US: i64 = 60 * 1_000_000;
const DAY_US: i64 = 24 * 3600 * 1_000_000;

/// Thresholds, each with a default a reviewer can change.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Two uses of one account this close together from different certificates or addresses.
    pub shared_window_min: i64,
    /// Silent for this many days before the end of the trail.
    pub dormant_days: i64,
    /// Office hours, local time (UTC+7), Monday to Friday, [start, end).
    pub office_start_hour: i64,
    pub office_end_hour: i64,
    /// An officer above this multiple of their unit's median volume (and above `volume_min`).
    pub volume_factor: f64,
    pub volume_min: usize,
    /// This many refusals within `burst_window_min` minutes.
    pub burst_count: usize,
    pub burst_window_min: i64,
    /// This many mismatching claims by one officer on one citizen within a day.
    pub probe_count: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            shared_window_min: 10,
            dormant_days: 30,
            office_start_hour: 7,
            office_end_hour: 18,
            volume_factor: 3.0,
            volume_min: 20,
            burst_count: 10,
            burst_window_min: 5,
            probe_count: 3,
        }
    }
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: &'static str,
    pub subject: String,
    pub detail: String,
    /// Sequences of the records that show it (a few).
    pub sequences: Vec<u64>,
}

/// "2026-11-23 14:05:09 +07".
pub fn local_time(time_us: i64) -> String {
    let t = time_us + VN_OFFSET_US;
    let days = t.div_euclid(DAY_US);
    let secs = t.rem_euclid(DAY_US) / 1_000_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +07",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn is_citizen_call(r: &Record) -> bool {
    r.entry.method.contains("CitizenGateway/") && !r.entry.method.ends_with("/ListProcedures")
}

/// Refusals that say nothing about what the officer did: the population database, the trail,
/// the shutdown, the caller's network.
const NOT_THE_OFFICERS: [&str; 8] = [
    "UPSTREAM_UNAVAILABLE",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_CIRCUIT_OPEN",
    "AUDIT_UNAVAILABLE",
    "SHUTTING_DOWN",
    "INTERNAL",
    "CLIENT_DEADLINE",
    "CLIENT_CANCELLED",
];

/// Refusals of requests the gateway could not read, so nothing is known of their dossier.
const UNREAD: [&str; 2] = ["MESSAGE_TOO_LARGE", "TRANSPORT"];

/// How many refusals a record stands for: one, or a door summary's count.
fn weight(r: &Record) -> usize {
    if r.entry.method == "(door summary)" {
        r.entry
            .outcome_message
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    } else {
        1
    }
}

fn is_verification(r: &Record) -> bool {
    r.entry.method.ends_with("/VerifyCitizen") || r.entry.method.ends_with("/VerifyBatch")
}

fn ip(peer: &str) -> &str {
    peer.rsplit_once(':').map(|(ip, _)| ip).unwrap_or(peer)
}

/// Local hour and weekday (0 = Monday).
fn local_hour_weekday(time_us: i64) -> (i64, i64) {
    let t = time_us + VN_OFFSET_US;
    let days = t.div_euclid(DAY_US);
    // 1970-01-01 was a Thursday.
    (
        (t.rem_euclid(DAY_US)) / (3600 * 1_000_000),
        (days + 3).rem_euclid(7),
    )
}

/// Every signal in a set of records (in sequence order).
pub fn signals(records: &[Record], t: &Thresholds) -> Vec<Signal> {
    let mut out = Vec::new();
    let mut by_officer: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| !r.entry.officer_code.is_empty()) {
        by_officer.entry(&r.entry.officer_code).or_default().push(r);
    }

    // Shared accounts: one officer, two certificates or addresses, close in time.
    for (officer, rs) in &by_officer {
        let mut sorted = rs.clone();
        sorted.sort_by_key(|r| r.entry.time_us);
        let mut seen = BTreeSet::new();
        for w in sorted.windows(2) {
            let (a, b) = (&w[0].entry, &w[1].entry);
            if b.time_us - a.time_us > t.shared_window_min * MINUTE_US {
                continue;
            }
            let what = if a.cert_fingerprint != b.cert_fingerprint {
                "certificates"
            } else if ip(&a.peer_address) != ip(&b.peer_address) {
                "addresses"
            } else {
                continue;
            };
            if seen.insert(what) {
                out.push(Signal {
                    kind: "shared-account",
                    subject: (*officer).to_owned(),
                    detail: format!(
                        "used from two {what} within {} min ({} and {}, at {})",
                        t.shared_window_min,
                        if what == "certificates" {
                            &a.unit_code
                        } else {
                            ip(&a.peer_address)
                        },
                        if what == "certificates" {
                            &b.unit_code
                        } else {
                            ip(&b.peer_address)
                        },
                        local_time(b.time_us)
                    ),
                    sequences: vec![w[0].sequence, w[1].sequence],
                });
            }
        }
    }

    // Dormant accounts: silent for a long time before the end of the trail.
    if let Some(end) = records.iter().map(|r| r.entry.time_us).max() {
        for (officer, rs) in &by_officer {
            if let Some(last) = rs.iter().max_by_key(|r| r.entry.time_us) {
                let silent_days = (end - last.entry.time_us) / DAY_US;
                if silent_days >= t.dormant_days {
                    out.push(Signal {
                        kind: "dormant-account",
                        subject: (*officer).to_owned(),
                        detail: format!(
                            "last used {} ({silent_days} days before the end of the trail): revoke it if no longer needed",
                            local_time(last.entry.time_us)
                        ),
                        sequences: vec![last.sequence],
                    });
                }
            }
        }
    }

    // Lookups without a dossier, and use outside office hours.
    for (officer, rs) in &by_officer {
        let no_dossier: Vec<u64> = rs
            .iter()
            .filter(|r| {
                is_citizen_call(r)
                    && r.entry.dossier_id.is_empty()
                    && !UNREAD.contains(&r.entry.outcome_reason.as_str())
            })
            .map(|r| r.sequence)
            .collect();
        if !no_dossier.is_empty() {
            out.push(Signal {
                kind: "no-dossier",
                subject: (*officer).to_owned(),
                detail: format!(
                    "{} citizen-data request(s) named no dossier",
                    no_dossier.len()
                ),
                sequences: no_dossier.into_iter().take(10).collect(),
            });
        }
        let off_hours: Vec<u64> = rs
            .iter()
            .filter(|r| is_citizen_call(r) && r.entry.outcome_code == 0)
            .filter(|r| {
                let (h, wd) = local_hour_weekday(r.entry.time_us);
                wd >= 5 || h < t.office_start_hour || h >= t.office_end_hour
            })
            .map(|r| r.sequence)
            .collect();
        if !off_hours.is_empty() {
            out.push(Signal {
                kind: "off-hours",
                subject: (*officer).to_owned(),
                detail: format!(
                    "{} citizen record(s) served outside {:02}:00–{:02}:00 Monday–Friday (UTC+7)",
                    off_hours.len(),
                    t.office_start_hour,
                    t.office_end_hour
                ),
                sequences: off_hours.into_iter().take(10).collect(),
            });
        }
    }

    // Volume far above peers of the same unit.
    let mut by_unit: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
    for (officer, rs) in &by_officer {
        let served = rs
            .iter()
            .filter(|r| is_citizen_call(r) && r.entry.outcome_code == 0)
            .count();
        let unit = rs
            .first()
            .map(|r| r.entry.unit_code.as_str())
            .unwrap_or_default();
        by_unit.entry(unit).or_default().push((officer, served));
    }
    for (unit, officers) in &by_unit {
        if officers.len() < 3 {
            continue;
        }
        let mut counts: Vec<usize> = officers.iter().map(|(_, c)| *c).collect();
        counts.sort_unstable();
        let median = counts[counts.len() / 2].max(1) as f64;
        for (officer, count) in officers {
            if *count >= t.volume_min && *count as f64 > t.volume_factor * median {
                out.push(Signal {
                    kind: "high-volume",
                    subject: (*officer).to_owned(),
                    detail: format!(
                        "{count} citizen records served, {:.1}× the median of unit {unit}'s {} officers ({median})",
                        *count as f64 / median,
                        officers.len()
                    ),
                    sequences: Vec::new(),
                });
            }
        }
    }

    // Refusals in bursts, by officer (or by address when no officer was established).
    let mut refusals: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for r in records.iter().filter(|r| {
        r.entry.outcome_code != 0 && !NOT_THE_OFFICERS.contains(&r.entry.outcome_reason.as_str())
    }) {
        let who = if r.entry.officer_code.is_empty() {
            format!("address {}", ip(&r.entry.peer_address))
        } else {
            r.entry.officer_code.clone()
        };
        refusals.entry(who).or_default().push(r);
    }
    for (who, mut rs) in refusals {
        rs.sort_by_key(|r| r.entry.time_us);
        let window = t.burst_window_min * MINUTE_US;
        let mut start = 0;
        let mut count = 0;
        for end in 0..rs.len() {
            count += weight(rs[end]);
            while rs[end].entry.time_us - rs[start].entry.time_us > window {
                count -= weight(rs[start]);
                start += 1;
            }
            if count >= t.burst_count {
                let reasons: BTreeSet<&str> = rs[start..=end]
                    .iter()
                    .map(|r| r.entry.outcome_reason.as_str())
                    .collect();
                out.push(Signal {
                    kind: "refusal-burst",
                    subject: who.clone(),
                    detail: format!(
                        "{count} refusals within {} min from {} ({})",
                        t.burst_window_min,
                        local_time(rs[start].entry.time_us),
                        reasons.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    sequences: rs[start..=end]
                        .iter()
                        .map(|r| r.sequence)
                        .take(10)
                        .collect(),
                });
                break;
            }
        }
    }
    out.extend(probing(records, t));
    out
}

/// Verification used as a way to read a record: one officer's mismatching claims on one
/// citizen (or claims refused for the verification budget), many within a day.
fn probing(records: &[Record], t: &Thresholds) -> Vec<Signal> {
    let mut by_pair: BTreeMap<(&str, &str), Vec<(&Record, usize)>> = BTreeMap::new();
    for r in records.iter().filter(|r| {
        is_verification(r)
            && !r.entry.officer_code.is_empty()
            && !r.entry.citizen_pseudonym.is_empty()
    }) {
        let e = &r.entry;
        let misses = e
            .fields_disclosed
            .iter()
            .filter(|f| f.ends_with(":MISMATCH"))
            .count()
            + usize::from(
                e.outcome_reason == "RATE_LIMITED" && e.outcome_message.contains("verification"),
            );
        if misses > 0 {
            by_pair
                .entry((&e.officer_code, &e.citizen_pseudonym))
                .or_default()
                .push((r, misses));
        }
    }
    let mut out = Vec::new();
    for ((officer, _), mut rs) in by_pair {
        rs.sort_by_key(|(r, _)| r.entry.time_us);
        let (mut start, mut count) = (0, 0);
        for end in 0..rs.len() {
            count += rs[end].1;
            while rs[end].0.entry.time_us - rs[start].0.entry.time_us > DAY_US {
                count -= rs[start].1;
                start += 1;
            }
            if count >= t.probe_count {
                let fields: BTreeSet<&str> = rs[start..=end]
                    .iter()
                    .flat_map(|(r, _)| r.entry.fields_disclosed.iter())
                    .filter_map(|f| f.strip_suffix(":MISMATCH"))
                    .collect();
                out.push(Signal {
                    kind: "verification-probing",
                    subject: officer.to_owned(),
                    detail: format!(
                        "{count} mismatching claims on citizen {} within a day from {} ({})",
                        rs[start].0.entry.citizen_masked_id,
                        local_time(rs[start].0.entry.time_us),
                        fields.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    sequences: rs[start..=end]
                        .iter()
                        .map(|(r, _)| r.sequence)
                        .take(10)
                        .collect(),
                });
                break;
            }
        }
    }
    out
}

/// The signals as a readable report.
pub fn render(signals: &[Signal], records: usize) -> String {
    let mut out = format!("{records} records read, {} signal(s)\n", signals.len());
    let mut kinds: BTreeMap<&str, Vec<&Signal>> = BTreeMap::new();
    for s in signals {
        kinds.entry(s.kind).or_default().push(s);
    }
    for (kind, list) in kinds {
        let _ = writeln!(out, "\n{kind} ({})", list.len());
        for s in list {
            let _ = writeln!(out, "  {:<16} {}", s.subject, s.detail);
            if !s.sequences.is_empty() {
                let seqs: Vec<String> = s.sequences.iter().map(u64::to_string).collect();
                let _ = writeln!(out, "  {:<16} records: {}", "", seqs.join(", "));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lienthong_gateway::audit::record::{Entry, GENESIS};

    /// `day_offset` days after Monday 2026-10-12 (day 20738 of the epoch), at `hour`:`min`
    /// local time.
    fn at(day_offset: i64, hour: i64, min: i64) -> i64 {
        20_738 * DAY_US + day_offset * DAY_US + (hour * 60 + min) * MINUTE_US - VN_OFFSET_US
    }

    #[allow(clippy::too_many_arguments)]
    fn rec(
        seq: u64,
        officer: &str,
        unit: &str,
        fp: &str,
        peer: &str,
        time_us: i64,
        code: i32,
        dossier: &str,
    ) -> Record {
        Record::seal(
            "t",
            seq,
            Entry {
                time_us,
                officer_code: officer.into(),
                unit_code: unit.into(),
                cert_fingerprint: fp.into(),
                peer_address: peer.into(),
                method: "/lienthong.gateway.v1.CitizenGateway/LookupCitizen".into(),
                dossier_id: dossier.into(),
                outcome_code: code,
                outcome_reason: if code == 0 {
                    String::new()
                } else {
                    "FIELD_NOT_ALLOWED".into()
                },
                ..Entry::default()
            },
            GENESIS,
        )
    }

    fn kinds(signals: &[Signal], subject: &str) -> BTreeSet<&'static str> {
        signals
            .iter()
            .filter(|s| s.subject == subject)
            .map(|s| s.kind)
            .collect()
    }

    #[test]
    fn each_signal_fires_on_its_pattern_and_not_on_ordinary_use() {
        let mut v = Vec::new();
        let mut seq = 0;
        let mut push = |r: fn(u64) -> Record| {
            v.push(r(seq));
            seq += 1;
        };
        // Ordinary officers: a few lookups in office hours, one address, one certificate.
        for _ in 0..4 {
            push(|s| {
                rec(
                    s,
                    "A",
                    "U1",
                    "fp1",
                    "10.0.0.1:1",
                    at(38, 9, s as i64),
                    0,
                    "D",
                )
            });
            push(|s| {
                rec(
                    s,
                    "B",
                    "U1",
                    "fp1",
                    "10.0.0.2:1",
                    at(38, 10, s as i64),
                    0,
                    "D",
                )
            });
        }
        // Shared: C from two addresses three minutes apart, and an off-hours lookup.
        push(|s| rec(s, "C", "U1", "fp1", "10.0.0.3:1", at(38, 11, 0), 0, "D"));
        push(|s| rec(s, "C", "U1", "fp1", "10.9.9.9:1", at(38, 11, 3), 0, "D"));
        push(|s| rec(s, "C", "U1", "fp1", "10.0.0.3:1", at(38, 22, 30), 0, "D"));
        // Dormant: D last seen at the start.
        push(|s| rec(s, "D", "U1", "fp1", "10.0.0.4:1", at(0, 9, 0), 0, "D"));
        // No dossier, and a burst of refusals.
        push(|s| rec(s, "E", "U1", "fp1", "10.0.0.5:1", at(38, 14, 0), 0, ""));
        for _ in 0..12 {
            push(|s| {
                rec(
                    s,
                    "F",
                    "U1",
                    "fp1",
                    "10.0.0.6:1",
                    at(38, 15, 0) + s as i64 * 1_000_000,
                    7,
                    "D",
                )
            });
        }
        // High volume: G serves 60 while peers serve 4.
        for _ in 0..60 {
            push(|s| {
                rec(
                    s,
                    "G",
                    "U1",
                    "fp1",
                    "10.0.0.7:1",
                    at(38, 9, 30) + s as i64 * 1_000_000,
                    0,
                    "D",
                )
            });
        }
        let s = signals(&v, &Thresholds::default());
        assert!(kinds(&s, "A").is_empty(), "{s:?}");
        assert!(kinds(&s, "B").is_empty());
        assert_eq!(
            kinds(&s, "C"),
            BTreeSet::from(["shared-account", "off-hours"])
        );
        assert_eq!(kinds(&s, "D"), BTreeSet::from(["dormant-account"]));
        assert_eq!(kinds(&s, "E"), BTreeSet::from(["no-dossier"]));
        assert_eq!(kinds(&s, "F"), BTreeSet::from(["refusal-burst"]));
        assert_eq!(kinds(&s, "G"), BTreeSet::from(["high-volume"]));
        assert!(render(&s, v.len()).contains("shared-account (1)"));
    }

    fn entry(seq: u64, officer: &str, time_us: i64, f: impl FnOnce(&mut Entry)) -> Record {
        let mut e = Entry {
            time_us,
            officer_code: officer.into(),
            unit_code: "U1".into(),
            cert_fingerprint: "fp1".into(),
            peer_address: "10.0.0.1:1".into(),
            method: "/lienthong.gateway.v1.CitizenGateway/VerifyCitizen".into(),
            dossier_id: "D".into(),
            citizen_pseudonym: "p1".into(),
            citizen_masked_id: "042•••••••005".into(),
            ..Entry::default()
        };
        f(&mut e);
        Record::seal("t", seq, e, GENESIS)
    }

    #[test]
    fn probing_by_verification_and_what_is_not_the_officers_doing() {
        let mut v = Vec::new();
        // H guesses one citizen's birth date three times; I mismatches on three citizens.
        for i in 0..3 {
            v.push(entry(i, "H", at(38, 9, i as i64), |e| {
                e.fields_disclosed = vec!["date_of_birth:MISMATCH".into()];
            }));
            v.push(entry(10 + i, "I", at(38, 9, i as i64), |e| {
                e.citizen_pseudonym = format!("p{i}");
                e.fields_disclosed = vec!["full_name:MISMATCH".into()];
            }));
        }
        // J meets a failing population database twenty times: not J's doing.
        for i in 0..20 {
            v.push(entry(20 + i, "J", at(38, 10, 0) + i as i64, |e| {
                e.outcome_code = 14;
                e.outcome_reason = "UPSTREAM_UNAVAILABLE".into();
            }));
        }
        // A door summary of 40 refusals from one address is a burst from that address.
        v.push(entry(50, "", at(38, 11, 0), |e| {
            e.method = "(door summary)".into();
            e.peer_address = "10.6.6.6".into();
            e.outcome_code = 16;
            e.outcome_reason = "NO_CLIENT_CERTIFICATE".into();
            e.outcome_message = "40 more calls from 10.6.6.6 were refused".into();
        }));
        let s = signals(&v, &Thresholds::default());
        assert_eq!(
            kinds(&s, "H"),
            BTreeSet::from(["verification-probing"]),
            "{s:?}"
        );
        assert!(kinds(&s, "I").is_empty(), "{s:?}");
        assert!(kinds(&s, "J").is_empty(), "{s:?}");
        let door = s.iter().find(|s| s.subject == "address 10.6.6.6").unwrap();
        assert!(door.detail.starts_with("40 refusals"), "{door:?}");
    }

    #[test]
    fn local_times_are_vietnamese() {
        // 2026-11-23T02:05:09Z (day 20780) is 09:05:09 in Hà Nội, a Monday.
        let us = (20_780 * 86_400 + 2 * 3600 + 5 * 60 + 9) * 1_000_000;
        assert_eq!(local_time(us), "2026-11-23 09:05:09 +07");
        assert_eq!(local_hour_weekday(us), (9, 0));
    }
}
