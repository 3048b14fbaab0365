//! The gRPC handlers: `PopulationRegistry` (records) and `RegistryAdmin` (faults, personas,
//! statistics). Wire types are parsed here, at the edge; store errors become statuses here.

use crate::bundles;
use crate::faults::{Effect, FaultError, FaultRule, Faults, Scope};
use crate::personas::PERSONAS;
use crate::store::{Store, StoreError};
use crate::updates;
use lienthong_domain::{CitizenRecord, HouseholdId, OldIdNumber, PersonalId};
use lienthong_proto::convert;
use lienthong_proto::csdl::v1 as pb;
use pb::population_registry_server::PopulationRegistry;
use pb::registry_admin_server::RegistryAdmin;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Shared state of both services; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    faults: Arc<Faults>,
    calls: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    review_delay: Duration,
}

impl Registry {
    pub fn new(store: Store, faults: Arc<Faults>) -> Self {
        Self {
            store,
            faults,
            calls: Arc::default(),
            review_delay: Duration::from_secs(2),
        }
    }

    /// How long a provincial system's update stays pending before it is decided.
    pub fn with_review_delay(mut self, delay: Duration) -> Self {
        self.review_delay = delay;
        self
    }

    fn count(&self, method: &'static str) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls.entry(method).or_default() += 1;
    }

    /// Applies the fault rules to a call: waits the injected delay, then fails if a rule says so.
    async fn faults(&self, method: &str, personal_id: Option<&str>) -> Result<(), Status> {
        let verdict = self
            .faults
            .evaluate(method, personal_id, tokio::time::Instant::now());
        if verdict.delay > Duration::ZERO {
            tokio::time::sleep(verdict.delay).await;
        }
        match verdict.failure {
            Some((code, message)) => Err(Status::new(code, message)),
            None => Ok(()),
        }
    }

    fn household_pb(&self, id: &HouseholdId) -> Result<Option<pb::Household>, Status> {
        let Some(h) = self.store.household(id).map_err(store_status)? else {
            return Ok(None);
        };
        let mut members = Vec::with_capacity(h.members.len());
        let mut head_name = String::new();
        for (member, relation) in &h.members {
            let Some(r) = self.store.citizen(member).map_err(store_status)? else {
                continue;
            };
            if *member == h.head {
                head_name = r.full_name.clone();
            }
            members.push(pb::HouseholdMember {
                personal_id: member.as_str().to_owned(),
                full_name: r.full_name,
                date_of_birth: Some(convert::date_to_pb(r.date_of_birth)),
                relation_to_head: convert::relation_to_pb(*relation) as i32,
            });
        }
        Ok(Some(pb::Household {
            household_id: h.id.as_str().to_owned(),
            head_personal_id: h.head.as_str().to_owned(),
            head_full_name: head_name,
            relation_to_head: pb::Relation::Unspecified as i32,
            members,
            address: Some(convert::address_to_pb(&h.address)),
        }))
    }

    /// The wire record; with `link_only`, its household is the id and relation alone (no
    /// household or member read from the store).
    fn citizen_pb(&self, record: &CitizenRecord, link_only: bool) -> Result<pb::Citizen, Status> {
        let mut citizen = convert::citizen_to_pb(record);
        if link_only {
            citizen.household = record.household.as_ref().map(|link| pb::Household {
                household_id: link.household_id.as_str().to_owned(),
                relation_to_head: convert::relation_to_pb(link.relation_to_head) as i32,
                ..pb::Household::default()
            });
        } else if let Some(link) = &record.household
            && let Some(mut household) = self.household_pb(&link.household_id)?
        {
            household.relation_to_head = convert::relation_to_pb(link.relation_to_head) as i32;
            citizen.household = Some(household);
        }
        Ok(citizen)
    }
}

/// A refused argument: INVALID_ARGUMENT with a BadRequest field violation.
pub fn invalid_argument(field: &str, problem: impl ToString) -> Status {
    let problem = problem.to_string();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {problem}"),
        ErrorDetails::with_bad_request_violation(field, problem),
    )
}

fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "store failure");
    Status::internal("the population store failed to read a record; see the server log")
}

fn not_found(what: &str) -> Status {
    Status::not_found(format!(
        "no citizen record has {what}; check the number, or list the personas with `mock-csdl personas`"
    ))
}

#[tonic::async_trait]
impl PopulationRegistry for Registry {
    async fn get_citizen(
        &self,
        request: Request<pb::GetCitizenRequest>,
    ) -> Result<Response<pb::GetCitizenResponse>, Status> {
        self.count("GetCitizen");
        let req = request.into_inner();
        let record = match req.key {
            Some(pb::get_citizen_request::Key::PersonalId(s)) => {
                let id = PersonalId::parse(&s).map_err(|e| invalid_argument("personal_id", e))?;
                self.store
                    .citizen(&id)
                    .map_err(store_status)?
                    .ok_or_else(|| not_found(&format!("personal ID {}", id.masked())))
            }
            Some(pb::get_citizen_request::Key::OldIdNumber(s)) => {
                let old =
                    OldIdNumber::parse(&s).map_err(|e| invalid_argument("old_id_number", e))?;
                self.store
                    .citizen_by_old_id(&old)
                    .map_err(store_status)?
                    .ok_or_else(|| not_found(&format!("old ID number {}", old.masked())))
            }
            None => Err(invalid_argument(
                "key",
                "give either personal_id (12 digits) or old_id_number (9 digits)",
            )),
        };
        // Faults apply to the persona even when the lookup itself would fail.
        let pid = record
            .as_ref()
            .ok()
            .map(|r| r.personal_id.as_str().to_owned());
        self.faults("GetCitizen", pid.as_deref()).await?;
        // Accepted updates from provincial systems take effect when their review ends.
        let record = updates::apply_due(&self.store, record?).map_err(store_status)?;
        let citizen = self.citizen_pb(&record, req.household_link_only)?;
        Ok(Response::new(pb::GetCitizenResponse {
            citizen: Some(citizen),
        }))
    }

    async fn get_household(
        &self,
        request: Request<pb::GetHouseholdRequest>,
    ) -> Result<Response<pb::GetHouseholdResponse>, Status> {
        self.count("GetHousehold");
        let req = request.into_inner();
        let (household_id, pid) = match req.key {
            Some(pb::get_household_request::Key::PersonalId(s)) => {
                let id = PersonalId::parse(&s).map_err(|e| invalid_argument("personal_id", e))?;
                let record = self
                    .store
                    .citizen(&id)
                    .map_err(store_status)?
                    .ok_or_else(|| not_found(&format!("personal ID {}", id.masked())))?;
                let link = record.household.ok_or_else(|| {
                    Status::not_found(format!(
                        "citizen {} belongs to no household (struck off residence, e.g. deceased)",
                        id.masked()
                    ))
                })?;
                (link.household_id, Some(s))
            }
            Some(pb::get_household_request::Key::HouseholdId(s)) => (
                HouseholdId::parse(&s).map_err(|e| invalid_argument("household_id", e))?,
                None,
            ),
            None => {
                return Err(invalid_argument(
                    "key",
                    "give either personal_id or household_id",
                ));
            }
        };
        self.faults("GetHousehold", pid.as_deref()).await?;
        let household = self.household_pb(&household_id)?.ok_or_else(|| {
            Status::not_found(format!("no household has number {}", household_id.as_str()))
        })?;
        Ok(Response::new(pb::GetHouseholdResponse {
            household: Some(household),
        }))
    }

    async fn submit_update(
        &self,
        request: Request<pb::SubmitUpdateRequest>,
    ) -> Result<Response<pb::DataUpdate>, Status> {
        self.count("SubmitUpdate");
        let req = request.into_inner();
        let personal_id =
            PersonalId::parse(&req.personal_id).map_err(|e| invalid_argument("personal_id", e))?;
        let field = lienthong_domain::CitizenField::parse(&req.field)
            .map_err(|e| invalid_argument("field", e))?;
        self.faults("SubmitUpdate", Some(personal_id.as_str()))
            .await?;
        let submission = updates::Submission {
            personal_id,
            field,
            value: req.value,
            source_system: req.source_system,
            dossier_id: req.dossier_id,
            evidence_ref: req.evidence_ref,
            request_id: req.request_id,
        };
        match updates::submit(&self.store, submission, self.review_delay) {
            Ok(u) => Ok(Response::new(update_pb(&u))),
            Err(updates::SubmitError::NotFound) => Err(not_found("that personal ID")),
            Err(updates::SubmitError::Store(e)) => Err(store_status(e)),
            Err(e @ updates::SubmitError::Field(_)) => Err(invalid_argument("field", e)),
            Err(e @ updates::SubmitError::TooLong { field }) => Err(invalid_argument(field, e)),
        }
    }

    async fn get_update(
        &self,
        request: Request<pb::GetUpdateRequest>,
    ) -> Result<Response<pb::DataUpdate>, Status> {
        self.count("GetUpdate");
        let req = request.into_inner();
        match self.store.update(&req.update_id).map_err(store_status)? {
            // Only the source system sees its updates.
            Some(u) if u.source_system == req.source_system => Ok(Response::new(update_pb(&u))),
            _ => Err(Status::not_found(
                "no update of this source system has that id",
            )),
        }
    }

    async fn open_case(
        &self,
        request: Request<pb::OpenCaseRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        self.count("OpenCase");
        let req = request.into_inner();
        let subject =
            PersonalId::parse(&req.personal_id).map_err(|e| invalid_argument("personal_id", e))?;
        let kind = match pb::BundleKind::try_from(req.kind) {
            Ok(pb::BundleKind::Birth) => bundles::BundleKind::Birth,
            Ok(pb::BundleKind::Death) => bundles::BundleKind::Death,
            _ => return Err(invalid_argument("kind", "BIRTH or DEATH")),
        };
        self.faults("OpenCase", Some(subject.as_str())).await?;
        let opening = bundles::Opening {
            kind,
            subject,
            source_system: req.source_system,
            dossier_id: req.dossier_id,
            request_id: req.request_id,
        };
        case_reply(bundles::open(&self.store, opening))
    }

    async fn complete_case_step(
        &self,
        request: Request<pb::CompleteCaseStepRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        self.count("CompleteCaseStep");
        let req = request.into_inner();
        self.faults("CompleteCaseStep", None).await?;
        let action = bundles::Action {
            case_id: req.case_id,
            procedure: req.procedure_code,
            entered: req.entered.into_iter().map(|e| (e.key, e.value)).collect(),
            source_system: req.source_system,
            officer: req.officer,
            request_id: req.request_id,
        };
        case_reply(bundles::complete(&self.store, action))
    }

    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::BundleCase>, Status> {
        self.count("GetCase");
        let req = request.into_inner();
        case_reply(bundles::get(&self.store, &req.case_id, &req.source_system))
    }
}

fn case_reply(
    result: Result<bundles::Case, bundles::CaseError>,
) -> Result<Response<pb::BundleCase>, Status> {
    use bundles::CaseError as E;
    match result {
        Ok(c) => Ok(Response::new(case_pb(&c))),
        Err(E::CitizenNotFound) => Err(not_found("that personal ID")),
        Err(E::CaseNotFound) => Err(Status::not_found(
            "no case of this source system has that id",
        )),
        Err(E::Store(e)) => Err(store_status(e)),
        Err(e @ E::TooLong { field }) => Err(invalid_argument(field, e)),
        Err(e @ E::Invalid(_)) => Err(invalid_argument("case", e)),
        Err(E::NotReady(why)) => Err(Status::failed_precondition(why)),
    }
}

fn timestamp(us: i64) -> lienthong_proto::Timestamp {
    lienthong_proto::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A case as its source system sees it.
pub fn case_pb(c: &bundles::Case) -> pb::BundleCase {
    let values = |v: &[(String, String)]| {
        v.iter()
            .map(|(key, value)| pb::EnteredValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    };
    pb::BundleCase {
        case_id: c.id.clone(),
        kind: match c.kind {
            bundles::BundleKind::Birth => pb::BundleKind::Birth,
            bundles::BundleKind::Death => pb::BundleKind::Death,
        } as i32,
        subject_personal_id: c.subject.as_str().to_owned(),
        source_system: c.source_system.clone(),
        dossier_id: c.dossier_id.clone(),
        opened_at: Some(timestamp(c.opened_at_us)),
        completed: c.completed(),
        steps: c
            .steps
            .iter()
            .map(|s| {
                let (agency, agency_vi) = s.agency();
                pb::CaseStep {
                    procedure_code: s.procedure.clone(),
                    agency: agency.to_owned(),
                    agency_vi: agency_vi.to_owned(),
                    status: match s.status {
                        bundles::StepStatus::Waiting => pb::StepStatus::Waiting,
                        bundles::StepStatus::Ready => pb::StepStatus::Ready,
                        bundles::StepStatus::Done => pb::StepStatus::Done,
                        bundles::StepStatus::Rejected => pb::StepStatus::Rejected,
                        bundles::StepStatus::AlreadyOnRecord => pb::StepStatus::AlreadyOnRecord,
                    } as i32,
                    subject_personal_id: s
                        .subject
                        .as_ref()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    handed_off_at: s.handed_off_at_us.map(timestamp),
                    acted_at: s.acted_at_us.map(timestamp),
                    acted_by: s.acted_by.clone(),
                    entered: values(&s.entered),
                    outcome: values(&s.outcome),
                    reason: s.reason.clone(),
                    reason_vi: s.reason_vi.clone(),
                }
            })
            .collect(),
    }
}

/// An update as its source system sees it now.
fn update_pb(u: &updates::DataUpdate) -> pb::DataUpdate {
    let now = updates::now_us();
    let status = u.status_at(now);
    let (reason, reason_vi) = match (&u.verdict, status) {
        (updates::Verdict::Rejected { reason, reason_vi }, updates::Status::Rejected) => {
            (reason.clone(), reason_vi.clone())
        }
        _ => (String::new(), String::new()),
    };
    pb::DataUpdate {
        update_id: u.id.clone(),
        personal_id: u.personal_id.as_str().to_owned(),
        field: u.field.as_str().to_owned(),
        value: u.value.clone(),
        source_system: u.source_system.clone(),
        dossier_id: u.dossier_id.clone(),
        evidence_ref: u.evidence_ref.clone(),
        status: match status {
            updates::Status::Pending => pb::UpdateStatus::Pending,
            updates::Status::Accepted => pb::UpdateStatus::Accepted,
            updates::Status::Rejected => pb::UpdateStatus::Rejected,
        } as i32,
        reason,
        reason_vi,
        submitted_at: Some(timestamp(u.submitted_at_us)),
        decided_at: (status != updates::Status::Pending).then(|| timestamp(u.decided_at_us)),
    }
}

// --- admin ---------------------------------------------------------------------------------

fn code_from_pb(field: &'static str, code: i32) -> Result<Code, FaultError> {
    if (1..=16).contains(&code) {
        Ok(Code::from_i32(code))
    } else {
        Err(FaultError::Code(field, code))
    }
}

fn fault_from_pb(f: pb::Fault) -> Result<FaultRule, FaultError> {
    let scope = f.scope.unwrap_or_default();
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    let now = tokio::time::Instant::now();
    let effect = match f.effect.ok_or(FaultError::NoEffect)? {
        pb::fault::Effect::Latency(l) => Effect::Latency {
            fixed_ms: l.fixed_ms,
            jitter_ms: l.jitter_ms,
        },
        pb::fault::Effect::Error(e) => Effect::Error {
            rate: e.rate,
            code: code_from_pb("error", e.code)?,
            message: e.message,
        },
        pb::fault::Effect::EveryNth(e) => Effect::EveryNth {
            n: e.n,
            code: code_from_pb("every_nth", e.code)?,
        },
        pb::fault::Effect::Outage(o) => {
            let start = now + Duration::from_millis(o.start_after_ms);
            Effect::Outage {
                start,
                end: start + Duration::from_millis(o.duration_ms),
            }
        }
    };
    Ok(FaultRule {
        id: String::new(),
        scope: Scope {
            method: non_empty(scope.method),
            personal_id: non_empty(scope.personal_id),
        },
        effect,
        seed: f.seed,
        builtin: false,
    })
}

fn fault_to_pb(r: &FaultRule) -> pb::Fault {
    let now = tokio::time::Instant::now();
    let ms = |d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64;
    pb::Fault {
        id: r.id.clone(),
        scope: Some(pb::FaultScope {
            method: r.scope.method.clone().unwrap_or_default(),
            personal_id: r.scope.personal_id.clone().unwrap_or_default(),
        }),
        effect: Some(match &r.effect {
            Effect::Latency {
                fixed_ms,
                jitter_ms,
            } => pb::fault::Effect::Latency(pb::LatencyFault {
                fixed_ms: *fixed_ms,
                jitter_ms: *jitter_ms,
            }),
            Effect::Error {
                rate,
                code,
                message,
            } => pb::fault::Effect::Error(pb::ErrorFault {
                rate: *rate,
                code: *code as i32,
                message: message.clone(),
            }),
            Effect::EveryNth { n, code } => pb::fault::Effect::EveryNth(pb::EveryNthFault {
                n: *n,
                code: *code as i32,
            }),
            // Reported relative to now: what is left of the wait and of the window.
            Effect::Outage { start, end } => pb::fault::Effect::Outage(pb::OutageFault {
                start_after_ms: ms(start.saturating_duration_since(now)),
                duration_ms: ms(end.saturating_duration_since(now.max(*start))),
            }),
        }),
        seed: r.seed,
        builtin: r.builtin,
    }
}

#[tonic::async_trait]
impl RegistryAdmin for Registry {
    async fn set_fault(
        &self,
        request: Request<pb::SetFaultRequest>,
    ) -> Result<Response<pb::SetFaultResponse>, Status> {
        let fault = request
            .into_inner()
            .fault
            .ok_or_else(|| invalid_argument("fault", "is required"))?;
        let rule = fault_from_pb(fault)
            .and_then(|r| self.faults.add(r))
            .map_err(|e| invalid_argument("fault", e))?;
        // The rule's citizen, if any, is logged masked: never a full personal ID in a log.
        let citizen = rule.scope.personal_id.as_deref().map(|p| {
            lienthong_domain::PersonalId::parse(p)
                .map(|p| p.masked())
                .unwrap_or_else(|_| "(not a personal ID)".into())
        });
        tracing::info!(id = %rule.id, method = ?rule.scope.method, citizen = citizen.as_deref(), "fault set");
        Ok(Response::new(pb::SetFaultResponse {
            fault: Some(fault_to_pb(&rule)),
        }))
    }

    async fn clear_faults(
        &self,
        request: Request<pb::ClearFaultsRequest>,
    ) -> Result<Response<pb::ClearFaultsResponse>, Status> {
        let req = request.into_inner();
        let id = (!req.id.is_empty()).then_some(req.id.as_str());
        let removed = self.faults.clear(id, req.include_builtin);
        if let (Some(id), 0) = (id, removed) {
            return Err(Status::not_found(format!(
                "no fault has id {id:?}; list them with ListFaults"
            )));
        }
        Ok(Response::new(pb::ClearFaultsResponse {
            removed: removed as u32,
        }))
    }

    async fn list_faults(
        &self,
        _request: Request<pb::ListFaultsRequest>,
    ) -> Result<Response<pb::ListFaultsResponse>, Status> {
        Ok(Response::new(pb::ListFaultsResponse {
            faults: self.faults.list().iter().map(fault_to_pb).collect(),
        }))
    }

    async fn list_personas(
        &self,
        _request: Request<pb::ListPersonasRequest>,
    ) -> Result<Response<pb::ListPersonasResponse>, Status> {
        Ok(Response::new(pb::ListPersonasResponse {
            personas: PERSONAS
                .iter()
                .map(|p| pb::Persona {
                    key: p.key.to_owned(),
                    personal_id: p.personal_id.to_owned(),
                    old_id_number: p.old_id_number.unwrap_or_default().to_owned(),
                    full_name: p.full_name.to_owned(),
                    scenario: p.scenario.to_owned(),
                    scenario_vi: p.scenario_vi.to_owned(),
                })
                .collect(),
        }))
    }

    async fn get_stats(
        &self,
        _request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let meta = self.store.meta().map_err(store_status)?;
        let calls = self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        Ok(Response::new(pb::GetStatsResponse {
            citizens: meta.citizens,
            households: meta.households,
            seed: meta.seed,
            calls,
            faults_triggered: self.faults.triggered(),
        }))
    }
}
