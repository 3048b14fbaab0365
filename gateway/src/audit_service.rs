//! `AuditService`, for officers with the auditor role only: query with filters (a personal ID is
//! turned into its pseudonym here and never stored), verify the chain, list checkpoints, export
//! a range with the checkpoint that covers it. Every call goes through the same pipeline as the
//! citizen calls, so each is itself audited.

use crate::audit::central::CentralReader;
use crate::audit::frame::Item;
use crate::audit::index::{Cursor, Filter};
use crate::audit::record::{Checkpoint, Record};
use crate::audit::verify::{self, Options};
use crate::catalog::Role;
use crate::config::AuditScope;
use crate::config::Environment;
use crate::pipeline::audit::{AuditSlot, Auditor, Subject};
use crate::pipeline::policy;
use crate::pipeline::rescue::Refusal;
use crate::pipeline::{Caller, Officer};
use ed25519_dalek::VerifyingKey;
use lienthong_domain::PersonalId;
use lienthong_proto::audit::v1 as pb;
use pb::audit_service_server::AuditService;
use std::pin::Pin;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

/// The reviewers' service.
#[derive(Clone)]
pub struct Audits {
    environment: Environment,
    auditor: Auditor,
    /// The current checkpoint key and any retired ones.
    keys: Vec<VerifyingKey>,
    /// The fleet's central store, for queries of every replica.
    central: Option<CentralReader>,
}

impl Audits {
    pub fn new(environment: Environment, auditor: Auditor, keys: Vec<VerifyingKey>) -> Self {
        Self {
            environment,
            auditor,
            keys,
            central: None,
        }
    }

    /// Answers queries of every replica from the central store.
    pub fn with_central(mut self, central: CentralReader) -> Self {
        self.central = Some(central);
        self
    }

    /// The request's audit slot, calling unit and officer, from the pipeline; the unit must be
    /// approved for this environment.
    fn caller<T>(&self, request: &Request<T>) -> Result<(AuditSlot, Caller, Officer), Status> {
        let slot = request
            .extensions()
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_default();
        let caller = request.extensions().get::<Caller>().cloned();
        let officer = request.extensions().get::<Officer>().cloned();
        let (Some(caller), Some(officer)) = (caller, officer) else {
            return Err(refuse(
                &slot,
                Refusal::Internal("audit call without the pipeline".into()),
            ));
        };
        policy::unit_approved(self.environment, &caller.unit).map_err(|r| refuse(&slot, r))?;
        Ok((slot, caller, officer))
    }

    /// Only approved units' auditors; returns the request's audit slot and the auditor's scope.
    fn admit<T>(&self, request: &Request<T>) -> Result<(AuditSlot, AuditScope), Status> {
        let (slot, caller, officer) = self.caller(request)?;
        if !officer.roles.contains(&Role::Auditor) {
            return Err(refuse(
                &slot,
                Refusal::RoleNotAllowed {
                    procedure: "audit review".into(),
                    roles: "auditor".into(),
                },
            ));
        }
        slot.note(|f| f.purpose = "audit_review".into());
        Ok((slot, caller.unit.audit_scope.clone()))
    }

    /// The records of this gateway's trail matching `filter`, streamed as the indexes find them
    /// (nothing is gathered in memory), each turned into `T`.
    fn stream<T: Send + 'static>(
        &self,
        filter: Filter,
        limit: usize,
        each: impl Fn(&Record) -> T + Send + 'static,
    ) -> ReceiverStream<Result<T, Status>> {
        let log = self.auditor.log.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            let sent = log.query_each(&filter, limit, |r| tx.blocking_send(Ok(each(&r))).is_ok());
            if let Err(e) = sent {
                let _ = tx.blocking_send(Err(internal(e)));
            }
        });
        ReceiverStream::new(rx)
    }
}

/// How many records a query may return: 0 for the default (1,000), at most 100,000.
fn limit_of(asked: u32) -> usize {
    match asked {
        0 => 1000,
        n => n.min(100_000) as usize,
    }
}

/// The cursor a caller gave to continue a page; None for the first page.
fn page_after(slot: &AuditSlot, token: &str) -> Result<Option<Cursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    Cursor::parse(token).map(Some).ok_or_else(|| {
        refuse(
            slot,
            Refusal::invalid(
                "page_after",
                "not a page cursor: give the page_cursor of the last item of the previous page",
            ),
        )
    })
}

fn ts(us: i64) -> lienthong_proto::Timestamp {
    lienthong_proto::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn us(t: &lienthong_proto::Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

/// A record on the wire.
pub fn record_to_pb(r: &Record) -> pb::AuditRecord {
    let e = &r.entry;
    pb::AuditRecord {
        chain_id: r.chain_id.clone(),
        sequence: r.sequence,
        time: Some(ts(e.time_us)),
        request_id: e.request_id.clone(),
        unit_code: e.unit_code.clone(),
        cert_fingerprint: e.cert_fingerprint.clone(),
        peer_address: e.peer_address.clone(),
        officer_code: e.officer_code.clone(),
        roles: e.roles.clone(),
        method: e.method.clone(),
        procedure_code: e.procedure_code.clone(),
        dossier_id: e.dossier_id.clone(),
        purpose: e.purpose.clone(),
        citizen_pseudonym: e.citizen_pseudonym.clone(),
        citizen_masked_id: e.citizen_masked_id.clone(),
        fields_disclosed: e.fields_disclosed.clone(),
        outcome: Some(pb::Outcome {
            code: e.outcome_code,
            reason: e.outcome_reason.clone(),
            message: e.outcome_message.clone(),
        }),
        latency_us: e.latency_us,
        prev_hash: r.prev_hash.to_vec(),
        hash: r.hash.to_vec(),
        page_cursor: String::new(),
    }
}

/// A record from the wire (an export), for offline verification.
pub fn record_from_pb(r: &pb::AuditRecord) -> Option<Record> {
    let outcome = r.outcome.clone().unwrap_or_default();
    Some(Record {
        chain_id: r.chain_id.clone(),
        sequence: r.sequence,
        entry: crate::audit::record::Entry {
            time_us: r.time.as_ref().map(us).unwrap_or(0),
            request_id: r.request_id.clone(),
            unit_code: r.unit_code.clone(),
            cert_fingerprint: r.cert_fingerprint.clone(),
            peer_address: r.peer_address.clone(),
            officer_code: r.officer_code.clone(),
            roles: r.roles.clone(),
            method: r.method.clone(),
            procedure_code: r.procedure_code.clone(),
            dossier_id: r.dossier_id.clone(),
            purpose: r.purpose.clone(),
            citizen_pseudonym: r.citizen_pseudonym.clone(),
            citizen_masked_id: r.citizen_masked_id.clone(),
            fields_disclosed: r.fields_disclosed.clone(),
            outcome_code: outcome.code,
            outcome_reason: outcome.reason,
            outcome_message: outcome.message,
            latency_us: r.latency_us,
        },
        prev_hash: r.prev_hash.as_slice().try_into().ok()?,
        hash: r.hash.as_slice().try_into().ok()?,
    })
}

pub fn checkpoint_to_pb(c: &Checkpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        chain_id: c.chain_id.clone(),
        sequence: c.sequence,
        record_hash: c.record_hash.to_vec(),
        time: Some(ts(c.time_us)),
        key_id: c.key_id.clone(),
        signature: c.signature.to_vec(),
    }
}

pub fn checkpoint_from_pb(c: &pb::Checkpoint) -> Option<Checkpoint> {
    Some(Checkpoint {
        chain_id: c.chain_id.clone(),
        sequence: c.sequence,
        record_hash: c.record_hash.as_slice().try_into().ok()?,
        time_us: c.time.as_ref().map(us).unwrap_or(0),
        key_id: c.key_id.clone(),
        signature: c.signature.as_slice().try_into().ok()?,
    })
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<pb::AuditRecord, Status>> + Send>>;
type AccessStream = Pin<Box<dyn Stream<Item = Result<pb::CitizenAccess, Status>> + Send>>;

/// An access as its citizen may see it.
fn access_to_pb(r: &Record, catalog: &crate::catalog::Catalog) -> pb::CitizenAccess {
    let e = &r.entry;
    let procedure_name = lienthong_domain::ProcedureCode::parse(&e.procedure_code)
        .ok()
        .and_then(|p| catalog.get(&p).map(|p| p.name.clone()))
        .unwrap_or_default();
    pb::CitizenAccess {
        time: Some(ts(e.time_us)),
        unit_code: e.unit_code.clone(),
        officer_code: e.officer_code.clone(),
        operation: e.method.rsplit('/').next().unwrap_or_default().to_owned(),
        procedure_code: e.procedure_code.clone(),
        procedure_name,
        dossier_id: e.dossier_id.clone(),
        // An auditor's search for the citizen records the auditor's scope there: not the
        // citizen's data.
        fields_disclosed: e
            .fields_disclosed
            .iter()
            .filter(|f| !f.starts_with("audit_"))
            .cloned()
            .collect(),
        served: e.outcome_code == 0,
        refusal_reason: e.outcome_reason.clone(),
        page_cursor: Cursor::of(r).token(),
        chain_id: r.chain_id.clone(),
        sequence: r.sequence,
    }
}
type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;

/// Notes a refusal for the audit record and turns it into the caller's status.
fn refuse(slot: &AuditSlot, r: Refusal) -> Status {
    slot.note(|f| f.refusal = Some(r.clone()));
    r.to_status()
}

fn internal(e: impl std::fmt::Display) -> Status {
    Refusal::Internal(e.to_string()).to_status()
}

#[tonic::async_trait]
impl AuditService for Audits {
    type QueryStream = RecordStream;

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<RecordStream>, Status> {
        let (slot, scope) = self.admit(&request)?;
        let q = request.into_inner();
        // The scope decision is part of the record: which units' records this query could read.
        let units_in = match &scope {
            AuditScope::National => {
                slot.note(|f| f.fields = vec!["audit_scope:*".into()]);
                None
            }
            AuditScope::Units(units) => {
                slot.note(|f| {
                    f.fields = units.iter().map(|u| format!("audit_scope:{u}")).collect()
                });
                if !q.unit_code.is_empty() && !units.iter().any(|u| u.as_str() == q.unit_code) {
                    let unit = crate::audit::record::bound_str(&q.unit_code, 32);
                    return Err(refuse(
                        &slot,
                        Refusal::OutsideAuditScope(format!("unit {unit}")),
                    ));
                }
                Some(units.iter().map(|u| u.to_string()).collect())
            }
        };
        let mut filter = Filter {
            units_in,
            // What the trail held when the query began (every receipt given), not the query's
            // own record.
            before: Some(self.auditor.log.acknowledged()),
            officer: q.officer_code,
            unit: q.unit_code,
            procedure: q.procedure_code,
            reason: q.reason,
            served: match pb::OutcomeFilter::try_from(q.outcome) {
                Ok(pb::OutcomeFilter::Served) => Some(true),
                Ok(pb::OutcomeFilter::Refused) => Some(false),
                _ => None,
            },
            from_us: q.from.as_ref().map(us),
            to_us: q.to.as_ref().map(us),
            sequence: q.sequence,
            ..Filter::default()
        };
        if q.all_replicas && q.sequence.is_some() {
            return Err(refuse(
                &slot,
                Refusal::invalid(
                    "sequence",
                    "a sequence names a record of this gateway's own chain; search every \
                     replica's chain by the other filters instead",
                ),
            ));
        }
        if !q.page_after.is_empty() {
            if q.all_replicas {
                return Err(refuse(
                    &slot,
                    Refusal::invalid(
                        "page_after",
                        "pages are for this gateway's own trail; ask every replica's chain with \
                         a narrower time range instead",
                    ),
                ));
            }
            filter.after = page_after(&slot, &q.page_after)?;
        }
        if !q.personal_id.is_empty() {
            let id = PersonalId::parse(&q.personal_id)
                .map_err(|e| refuse(&slot, Refusal::invalid("personal_id", e)))?;
            filter.citizen_pseudonym = self.auditor.pseudonyms.of(&id);
            slot.note(|f| f.subject = Some(Subject::Personal(id)));
        }
        let limit = limit_of(q.limit);
        if q.all_replicas {
            let Some(central) = &self.central else {
                return Err(refuse(&slot, Refusal::CentralNotConfigured));
            };
            slot.note(|f| f.fields.push("audit_source:central".into()));
            filter.before = None;
            let mut rows = Box::pin(central.query(&filter, limit));
            // The first answer says whether the store is there; the rest are streamed.
            let first = rows.next().await;
            let first = match first {
                Some(Err(e)) => {
                    tracing::warn!(problem = %e, "central audit store query failed");
                    return Err(refuse(&slot, Refusal::CentralUnavailable));
                }
                other => other,
            };
            let stream = tokio_stream::iter(first).chain(rows).map(|r| match r {
                Ok(r) => Ok(record_to_pb(&r)),
                Err(e) => {
                    tracing::warn!(problem = %e, "central audit store query failed");
                    Err(Refusal::CentralUnavailable.to_status())
                }
            });
            return Ok(Response::new(Box::pin(stream)));
        }
        let records = self.stream(filter, limit, |r| pb::AuditRecord {
            page_cursor: Cursor::of(r).token(),
            ..record_to_pb(r)
        });
        Ok(Response::new(Box::pin(records)))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        self.admit(&request)?;
        let q = request.into_inner();
        let log = self.auditor.log.clone();
        let opts = Options {
            keys: self.keys.clone(),
            from_genesis: true,
            to_sequence: (q.to_sequence > 0).then_some(q.to_sequence),
            anchor: None,
        };
        let report = tokio::task::spawn_blocking(move || verify::verify_file(log.path(), &opts))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let (first_bad, problem) = report.first_bad.clone().unwrap_or((0, String::new()));
        Ok(Response::new(pb::VerifyResponse {
            ok: report.ok(),
            records_checked: report.records_checked,
            checkpoints_checked: report.checkpoints_checked,
            first_bad_sequence: first_bad,
            problem,
        }))
    }

    async fn list_checkpoints(
        &self,
        request: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        self.admit(&request)?;
        let from = request.into_inner().from_sequence;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: self
                .auditor
                .log
                .checkpoints(from)
                .map_err(internal)?
                .iter()
                .map(checkpoint_to_pb)
                .collect(),
        }))
    }

    type ListMyAccessesStream = AccessStream;

    async fn list_my_accesses(
        &self,
        request: Request<pb::ListMyAccessesRequest>,
    ) -> Result<Response<AccessStream>, Status> {
        let (slot, caller, officer) = self.caller(&request)?;
        let Some(citizen) = officer.citizen.clone() else {
            return Err(refuse(
                &slot,
                Refusal::RoleNotAllowed {
                    procedure: "a citizen's access history".into(),
                    roles: "citizen".into(),
                },
            ));
        };
        slot.note(|f| {
            f.purpose = "citizen_access_history".into();
            f.subject = Some(Subject::Personal(citizen.clone()));
        });
        let q = request.into_inner();
        let filter = Filter {
            citizen_pseudonym: self.auditor.pseudonyms.of(&citizen),
            before: Some(self.auditor.log.acknowledged()),
            from_us: q.from.as_ref().map(us),
            to_us: q.to.as_ref().map(us),
            // The citizen's own reads of this history are not accesses by an agency.
            without_role: Some(crate::catalog::Role::Citizen.as_str().into()),
            after: page_after(&slot, &q.page_after)?,
            ..Filter::default()
        };
        let catalog = caller.catalog.clone();
        let accesses = self.stream(filter, limit_of(q.limit), move |r| {
            access_to_pb(r, &catalog)
        });
        Ok(Response::new(Box::pin(accesses)))
    }

    type ExportStream = ExportStream;

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<ExportStream>, Status> {
        let (slot, scope) = self.admit(&request)?;
        // A range carries every unit's records (the chain cannot be cut and still verify).
        if scope != AuditScope::National {
            return Err(refuse(
                &slot,
                Refusal::OutsideAuditScope(
                    "an export carries every unit's records in its range".into(),
                ),
            ));
        }
        slot.note(|f| f.fields = vec!["audit_scope:*".into()]);
        let q = request.into_inner();
        let log = self.auditor.log.clone();
        // Streamed as the trail is read: nothing is gathered in memory.
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            let send = |item| {
                tx.blocking_send(Ok(pb::ExportChunk { item: Some(item) }))
                    .is_ok()
            };
            // The range ends at the first checkpoint at or after its last record, so the export
            // carries its own proof.
            let want_to = (q.to_sequence > 0).then_some(q.to_sequence);
            let cover = match log.checkpoints(want_to.unwrap_or(0)) {
                Ok(list) if want_to.is_some() => list.into_iter().next(),
                Ok(list) => list.into_iter().last(),
                Err(e) => {
                    let _ = tx.blocking_send(Err(internal(e)));
                    return;
                }
            };
            let end = cover.as_ref().map(|c| c.sequence).or(want_to);
            let frames = match log.frames() {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(internal(e)));
                    return;
                }
            };
            for item in frames {
                let r = match item {
                    Ok((_, Item::Record(r))) => r,
                    Ok((_, Item::Checkpoint(_))) => continue,
                    Err(e) => {
                        let refusal = Refusal::TrailUnreadable {
                            offset: e.offset,
                            problem: e.problem,
                        };
                        let _ = tx.blocking_send(Err(refusal.to_status()));
                        return;
                    }
                };
                if r.sequence < q.from_sequence {
                    continue;
                }
                if end.is_some_and(|e| r.sequence > e) {
                    break;
                }
                if !send(pb::export_chunk::Item::Record(record_to_pb(&r))) {
                    return;
                }
            }
            if let Some(c) = cover {
                send(pb::export_chunk::Item::Checkpoint(checkpoint_to_pb(&c)));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
