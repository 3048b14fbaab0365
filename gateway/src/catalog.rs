//! The procedure catalog: which citizen fields each administrative procedure may see, which
//! officer roles may use it, and its e-form template. Read from TOML, checked once at start.

use lienthong_domain::{CitizenField, ProcedureCode};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Where a procedure's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    /// A code of the national procedure database (Cơ sở dữ liệu quốc gia về thủ tục hành
    /// chính), as published; check it against the Cổng Dịch vụ công quốc gia before relying on it.
    National,
    /// A national code no longer in force: the procedure moved to another ministry (the
    /// criminal-record certificate and the driving licence went to the Ministry of Public
    /// Security on 1 March 2025) under a code this catalog does not hold yet.
    Superseded,
    /// The catalog's own code (`LT.` for the bundles, `MH.` for the others), standing in for a
    /// code to be looked up. The default: an entry that does not say is not a national code.
    #[default]
    Illustrative,
}

/// The five uses of population data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    AdministrativeProcedure,
    SocioEconomicStatistics,
    DigitalCitizen,
    DataEcosystem,
    LeadershipDecision,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::AdministrativeProcedure => "administrative_procedure",
            Purpose::SocioEconomicStatistics => "socio_economic_statistics",
            Purpose::DigitalCitizen => "digital_citizen",
            Purpose::DataEcosystem => "data_ecosystem",
            Purpose::LeadershipDecision => "leadership_decision",
        }
    }
}

/// An officer's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Tiếp nhận hồ sơ.
    Receiver,
    /// Xử lý hồ sơ.
    Processor,
    /// Phê duyệt.
    Approver,
    /// Reads the audit trail; never citizen data.
    Auditor,
    /// Administers the gateway; never citizen data.
    Admin,
    /// A citizen, vouched for by an identity provider (as VNeID does): reads only the history
    /// of accesses to their own data; no procedure.
    Citizen,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "receiver" => Role::Receiver,
            "processor" => Role::Processor,
            "approver" => Role::Approver,
            "auditor" => Role::Auditor,
            "admin" => Role::Admin,
            "citizen" => Role::Citizen,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Receiver => "receiver",
            Role::Processor => "processor",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Citizen => "citizen",
        }
    }
}

/// Whose record a form is filled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormSubject {
    /// The citizen the request names; `father.`, `mother.`, `spouse.` are their relatives.
    Citizen,
    /// A parent declaring a birth: `mother.` and `father.` are the newborn's parents, that is the
    /// declaring parent and their spouse.
    DeclaringParent,
}

/// The person an attribute path starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person {
    Subject,
    Father,
    Mother,
    Spouse,
}

/// Sub-attributes of composite fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    CardType,
    CardIssueDate,
    CardIssuePlace,
    CardExpiryDate,
    CardStatus,
    HouseholdId,
    HouseholdRelation,
    DateOfDeath,
}

/// A citizen attribute a form field is filled from, e.g. `mother.date_of_birth`,
/// `card.issue_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub person: Person,
    pub field: CitizenField,
    pub part: Option<Part>,
}

impl Attribute {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (person, rest) = match s.split_once('.') {
            Some(("father", r)) => (Person::Father, r),
            Some(("mother", r)) => (Person::Mother, r),
            Some(("spouse", r)) => (Person::Spouse, r),
            _ => (Person::Subject, s),
        };
        let (field, part) = match rest {
            "card.type" => (CitizenField::Card, Some(Part::CardType)),
            "card.issue_date" => (CitizenField::Card, Some(Part::CardIssueDate)),
            "card.issue_place" => (CitizenField::Card, Some(Part::CardIssuePlace)),
            "card.expiry_date" => (CitizenField::Card, Some(Part::CardExpiryDate)),
            "card.status" => (CitizenField::Card, Some(Part::CardStatus)),
            "household.id" => (CitizenField::Household, Some(Part::HouseholdId)),
            "household.relation_to_head" => {
                (CitizenField::Household, Some(Part::HouseholdRelation))
            }
            "life_status.date_of_death" => (CitizenField::LifeStatus, Some(Part::DateOfDeath)),
            other => {
                let f = CitizenField::parse(other).map_err(|e| e.to_string())?;
                if matches!(f, CitizenField::Card | CitizenField::Household) {
                    return Err(format!(
                        "{other:?} is composite: name a part such as card.issue_date or household.id"
                    ));
                }
                (f, None)
            }
        };
        if person != Person::Subject
            && matches!(
                field,
                CitizenField::Father | CitizenField::Mother | CitizenField::Spouse
            )
        {
            return Err(format!("{s:?} reaches too far: one relative at most"));
        }
        Ok(Self {
            person,
            field,
            part,
        })
    }

    /// Whether the relative reference embedded in the subject's record (name, ID, date of
    /// birth) is enough, so the relative's own record need not be read.
    pub fn on_reference(&self) -> bool {
        self.part.is_none()
            && matches!(
                self.field,
                CitizenField::FullName | CitizenField::PersonalId | CitizenField::DateOfBirth
            )
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let person = match self.person {
            Person::Subject => "",
            Person::Father => "father.",
            Person::Mother => "mother.",
            Person::Spouse => "spouse.",
        };
        let part = match self.part {
            None => return write!(f, "{person}{}", self.field.as_str()),
            Some(Part::CardType) => "card.type",
            Some(Part::CardIssueDate) => "card.issue_date",
            Some(Part::CardIssuePlace) => "card.issue_place",
            Some(Part::CardExpiryDate) => "card.expiry_date",
            Some(Part::CardStatus) => "card.status",
            Some(Part::HouseholdId) => "household.id",
            Some(Part::HouseholdRelation) => "household.relation_to_head",
            Some(Part::DateOfDeath) => "life_status.date_of_death",
        };
        write!(f, "{person}{part}")
    }
}

/// One field of an e-form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub key: String,
    pub label: String,
    /// None when the citizen must declare it.
    pub attribute: Option<Attribute>,
}

/// A procedure's e-form template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormTemplate {
    pub id: String,
    pub subject: FormSubject,
    pub fields: Vec<FormField>,
}

/// An administrative procedure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    pub code: ProcedureCode,
    pub name: String,
    pub name_en: String,
    pub purpose: Purpose,
    pub fields: BTreeSet<CitizenField>,
    pub roles: BTreeSet<Role>,
    pub household_access: bool,
    pub bundle: Vec<ProcedureCode>,
    pub form: FormTemplate,
    pub code_status: CodeStatus,
    /// The fields it may send back to the database (write-back); a subset of `fields`.
    pub updates: BTreeSet<CitizenField>,
}

/// The catalog, by code.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    procedures: BTreeMap<ProcedureCode, Procedure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    procedure: Vec<RawProcedure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcedure {
    code: String,
    name: String,
    name_en: String,
    purpose: Purpose,
    fields: Vec<String>,
    roles: Vec<Role>,
    #[serde(default)]
    household_access: bool,
    #[serde(default)]
    bundle: Vec<String>,
    #[serde(default)]
    code_status: CodeStatus,
    #[serde(default)]
    updates: Vec<String>,
    form: RawForm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: String,
    subject: FormSubject,
    fields: Vec<RawFormField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormField {
    key: String,
    label: String,
    attribute: Option<String>,
}

impl Catalog {
    /// Parses and checks a catalog, reporting every problem with the key it is under.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let raw: RawCatalog = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut errors = Vec::new();
        let mut procedures = BTreeMap::new();
        for (i, p) in raw.procedure.into_iter().enumerate() {
            let at = format!("procedure[{i}] ({})", p.code);
            match Self::procedure(&at, p, &mut errors) {
                Some(proc) => {
                    if procedures.insert(proc.code.clone(), proc).is_some() {
                        errors.push(format!("{at}.code: defined twice"));
                    }
                }
                None => continue,
            }
        }
        for p in procedures.values() {
            for b in &p.bundle {
                if !procedures.contains_key(b) {
                    errors.push(format!(
                        "procedure {}.bundle: {b} is not in the catalog",
                        p.code
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { procedures })
        } else {
            Err(errors)
        }
    }

    fn procedure(at: &str, p: RawProcedure, errors: &mut Vec<String>) -> Option<Procedure> {
        let before = errors.len();
        let code = ProcedureCode::parse(&p.code)
            .map_err(|e| errors.push(format!("{at}.code: {e}")))
            .ok();
        let mut fields = BTreeSet::new();
        for f in &p.fields {
            match CitizenField::parse(f) {
                Ok(f) => {
                    fields.insert(f);
                }
                Err(e) => errors.push(format!("{at}.fields: {e}")),
            }
        }
        if p.roles.is_empty() {
            errors.push(format!("{at}.roles: no role may use it; name at least one"));
        }
        if p.roles
            .iter()
            .any(|r| matches!(r, Role::Auditor | Role::Admin | Role::Citizen))
        {
            errors.push(format!(
                "{at}.roles: auditor, admin and citizen never use a procedure; use receiver, processor or approver"
            ));
        }
        if p.household_access && !fields.contains(&CitizenField::Household) {
            errors.push(format!(
                "{at}.household_access: needs \"household\" in fields"
            ));
        }
        // Write-back: only the fields the database takes back, and only fields the procedure sees.
        let mut updates = BTreeSet::new();
        for f in &p.updates {
            match CitizenField::parse(f) {
                Ok(f) if !CitizenField::UPDATABLE.contains(&f) => errors.push(format!(
                    "{at}.updates: {} cannot be sent back; updatable: phone, health_insurance_number, current_address",
                    f.as_str()
                )),
                Ok(f) if !fields.contains(&f) => errors.push(format!(
                    "{at}.updates: {} must also be in fields",
                    f.as_str()
                )),
                Ok(f) => {
                    updates.insert(f);
                }
                Err(e) => errors.push(format!("{at}.updates: {e}")),
            }
        }
        let bundle: Vec<ProcedureCode> = p
            .bundle
            .iter()
            .filter_map(|b| {
                ProcedureCode::parse(b)
                    .map_err(|e| errors.push(format!("{at}.bundle: {e}")))
                    .ok()
            })
            .collect();
        let mut form_fields = Vec::new();
        for (j, f) in p.form.fields.into_iter().enumerate() {
            let fat = format!("{at}.form.fields[{j}] ({})", f.key);
            let attribute = match f.attribute.as_deref().map(Attribute::parse) {
                None => None,
                Some(Err(e)) => {
                    errors.push(format!("{fat}.attribute: {e}"));
                    continue;
                }
                Some(Ok(a)) => {
                    for needed in needed_fields(&a, p.form.subject) {
                        if !fields.contains(&needed) {
                            errors.push(format!(
                                "{fat}.attribute: {a} needs the procedure to allow \"{}\"",
                                needed.as_str()
                            ));
                        }
                    }
                    Some(a)
                }
            };
            form_fields.push(FormField {
                key: f.key,
                label: f.label,
                attribute,
            });
        }
        if errors.len() > before {
            return None;
        }
        Some(Procedure {
            code: code?,
            name: p.name,
            name_en: p.name_en,
            purpose: p.purpose,
            fields,
            roles: p.roles.into_iter().collect(),
            household_access: p.household_access,
            bundle,
            code_status: p.code_status,
            updates,
            form: FormTemplate {
                id: p.form.id,
                subject: p.form.subject,
                fields: form_fields,
            },
        })
    }

    pub fn get(&self, code: &ProcedureCode) -> Option<&Procedure> {
        self.procedures.get(code)
    }

    pub fn contains(&self, code: &ProcedureCode) -> bool {
        self.procedures.contains_key(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Procedure> {
        self.procedures.values()
    }

    pub fn len(&self) -> usize {
        self.procedures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procedures.is_empty()
    }
}

/// The record fields a procedure must allow for an attribute to be read.
pub fn needed_fields(a: &Attribute, subject: FormSubject) -> Vec<CitizenField> {
    match (subject, a.person) {
        (_, Person::Subject) => vec![a.field],
        (FormSubject::Citizen, Person::Father) => vec![CitizenField::Father],
        (FormSubject::Citizen, Person::Mother) => vec![CitizenField::Mother],
        (_, Person::Spouse) => vec![CitizenField::Spouse],
        // The declaring parent is one of the two; the other is reached through the spouse.
        (FormSubject::DeclaringParent, Person::Father | Person::Mother) => {
            vec![a.field, CitizenField::Spouse]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../deploy/procedures.toml");

    #[test]
    fn the_shipped_catalog_is_valid_and_covers_the_essential_services() {
        let c = Catalog::parse(SHIPPED).unwrap();
        assert!(c.len() >= 22, "{}", c.len());
        let status = |code: &str| {
            c.get(&ProcedureCode::parse(code).unwrap())
                .unwrap_or_else(|| panic!("{code} is missing"))
                .code_status
        };
        // The essential services the reports name, each code marked for what it is.
        for code in [
            "MH.CANCUOC",
            "MH.LUUTRU",
            "MH.TAMVANG",
            "MH.DANGKYXE",
            "MH.HOCHIEU",
            "MH.DANGKYTHUE",
            "MH.DUTHI",
            "LT.KHAISINH",
        ] {
            assert_eq!(status(code), CodeStatus::Illustrative, "{code}");
        }
        assert_eq!(status("1.004873"), CodeStatus::National);
        assert_eq!(status("1.001193"), CodeStatus::National);
        // Moved to the Ministry of Public Security on 1 March 2025.
        assert_eq!(status("2.000488"), CodeStatus::Superseded);
        assert_eq!(status("1.002804"), CodeStatus::Superseded);
        // An own code is never marked national.
        for p in c.iter() {
            let own = p.code.as_str().starts_with("MH.") || p.code.as_str().starts_with("LT.");
            assert!(
                !own || p.code_status == CodeStatus::Illustrative,
                "{}",
                p.code
            );
        }
        let bundles: Vec<_> = c.iter().filter(|p| !p.bundle.is_empty()).collect();
        assert_eq!(bundles.len(), 2);
        for p in c.iter() {
            assert!(!p.form.fields.is_empty(), "{} has an empty form", p.code);
        }
    }

    #[test]
    fn attributes_parse_and_print_back() {
        for s in [
            "full_name",
            "mother.date_of_birth",
            "card.issue_place",
            "spouse.card.issue_date",
            "household.id",
            "life_status.date_of_death",
        ] {
            assert_eq!(Attribute::parse(s).unwrap().to_string(), s);
        }
        assert!(Attribute::parse("card").is_err());
        assert!(Attribute::parse("mother.father").is_err());
        assert!(Attribute::parse("password").is_err());
    }

    #[test]
    fn errors_name_the_procedure_and_key() {
        let bad = r#"
[[procedure]]
code = "9.999"
name = "x"
name_en = "x"
purpose = "administrative_procedure"
fields = ["full_name", "nickname"]
roles = ["auditor"]
bundle = ["0.404"]
[procedure.form]
id = "F"
subject = "citizen"
fields = [{ key = "ns", label = "Ngày sinh", attribute = "date_of_birth" }]
"#;
        let errors = Catalog::parse(bad).unwrap_err();
        let all = errors.join("\n");
        assert!(
            all.contains("procedure[0] (9.999).fields: \"nickname\""),
            "{all}"
        );
        assert!(all.contains(".roles: auditor, admin and citizen"), "{all}");
        assert!(
            all.contains("form.fields[0] (ns).attribute: date_of_birth needs the procedure to allow \"date_of_birth\""),
            "{all}"
        );
    }
}
