//! Step 4, purpose-bound access, deny by default: the unit must be approved for this gateway's
//! environment, the procedure must be in the catalog and allowed for the unit and one of the
//! officer's roles, and every field asked for must be one the procedure needs. Plain functions:
//! they need the decoded request, so the handlers call them first.

use super::rescue::Refusal;
use super::{Caller, Officer};
use crate::catalog::{Catalog, Procedure};
use crate::config::{Approval, Environment, Unit};
use lienthong_domain::{CitizenField, DossierId, ProcedureCode, RequestId};
use std::collections::BTreeSet;

/// What every request names, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: RequestId,
    pub procedure: ProcedureCode,
    pub dossier: DossierId,
    pub channel: Channel,
}

/// How the citizen's data is reached.
#[derive(Clone, PartialEq, Eq)]
pub enum Channel {
    /// An officer processing the dossier.
    OfficerDossier,
    /// The citizen's consent through their VNeID login, with its token (not yet verified).
    CitizenConsent { token: String },
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never in a log.
        match self {
            Channel::OfficerDossier => f.write_str("OfficerDossier"),
            Channel::CitizenConsent { .. } => f.write_str("CitizenConsent"),
        }
    }
}

/// The longest consent token read.
pub const MAX_CONSENT_TOKEN_BYTES: usize = 8 * 1024;

/// What the exchange withholds on the citizen-consent channel (Thanh Hóa's report: the phone
/// number, the card's issue date and the parents' dates of birth are not shared under a VNeID
/// login).
pub const WITHHELD_ON_CONSENT: &str =
    "the phone number, the card's issue date and the parents' dates of birth";

/// A granted request: the procedure, and the fields it may see.
#[derive(Debug, Clone)]
pub struct Permit<'c> {
    pub procedure: &'c Procedure,
    pub context: RequestContext,
}

/// The unit may be served by a gateway in this environment.
pub fn unit_approved(environment: Environment, unit: &Unit) -> Result<(), Refusal> {
    let refuse = |detail: String, detail_vi: String| {
        Err(Refusal::UnitNotApproved {
            unit: unit.code.to_string(),
            detail,
            detail_vi,
        })
    };
    match unit.approval {
        Approval::Approved => {}
        Approval::Pending => {
            return refuse(
                "its connection request is still pending approval; ask the operator to complete the approval".into(),
                "hồ sơ đề nghị kết nối đang chờ phê duyệt".into(),
            );
        }
        Approval::Suspended => {
            return refuse(
                "its connection is suspended; contact the operator".into(),
                "kết nối của đơn vị đang bị tạm dừng".into(),
            );
        }
    }
    if environment == Environment::Production && unit.environment == Environment::Sandbox {
        return refuse(
            "it holds sandbox credentials only and has not been approved for production".into(),
            "đơn vị mới được cấp quyền kết nối thử nghiệm (sandbox), chưa được phê duyệt kết nối chính thức".into(),
        );
    }
    Ok(())
}

/// The request may use its procedure: unit approved, procedure known and allowed for the unit
/// and for one of the officer's roles.
pub fn authorize<'c>(
    environment: Environment,
    catalog: &'c Catalog,
    caller: &Caller,
    officer: &Officer,
    context: RequestContext,
) -> Result<Permit<'c>, Refusal> {
    unit_approved(environment, &caller.unit)?;
    let procedure = catalog
        .get(&context.procedure)
        .ok_or_else(|| Refusal::UnknownProcedure(context.procedure.to_string()))?;
    if !caller.unit.procedures.contains(&procedure.code) {
        return Err(Refusal::ProcedureNotAllowed {
            procedure: procedure.code.to_string(),
            unit: caller.unit.code.to_string(),
        });
    }
    if procedure.roles.is_disjoint(&officer.roles) {
        return Err(Refusal::RoleNotAllowed {
            procedure: procedure.code.to_string(),
            roles: procedure
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Permit { procedure, context })
}

impl Permit<'_> {
    /// The fields to disclose: those asked for, each of which the procedure must allow; all of
    /// the procedure's fields when none are named.
    pub fn fields(&self, wanted: &[CitizenField]) -> Result<BTreeSet<CitizenField>, Refusal> {
        if wanted.is_empty() {
            return Ok(self.procedure.fields.clone());
        }
        let refused: Vec<&str> = wanted
            .iter()
            .filter(|f| !self.procedure.fields.contains(f))
            .map(|f| f.as_str())
            .collect();
        if refused.is_empty() {
            Ok(wanted.iter().copied().collect())
        } else {
            Err(Refusal::FieldNotAllowed {
                procedure: self.procedure.code.to_string(),
                fields: refused.join(", "),
            })
        }
    }

    /// The procedure may read households.
    pub fn household(&self) -> Result<(), Refusal> {
        if self.procedure.household_access {
            Ok(())
        } else {
            Err(Refusal::HouseholdNotAllowed(
                self.procedure.code.to_string(),
            ))
        }
    }
}

/// The unit may verify in bulk; returns its cap on items per stream.
pub fn bulk_cap(unit: &Unit) -> Result<u32, Refusal> {
    match unit.batch_max_items {
        0 => Err(Refusal::BulkNotAllowed(unit.code.to_string())),
        n => Ok(n),
    }
}
