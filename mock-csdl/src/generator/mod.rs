//! The deterministic population generator: the same seed and size give the same citizens.
//!
//! Citizens come in family clusters (grandparents, children and their spouses, grandchildren).
//! Each cluster is drafted from its own random stream, seeded by the store seed and the cluster's
//! position, so clusters are drafted in parallel; numbers (personal IDs, old IDs, household ids,
//! health-insurance numbers) are then given out in cluster order by [`Numbering`], which keeps
//! them unique and leaves the personas' number ranges free.

pub mod family;
pub mod names;

use family::{DraftCluster, DraftPerson, ParentRef};
use lienthong_domain::units::{PRE2025_PROVINCE_CODES, units};
use lienthong_domain::{
    CitizenField, CitizenRecord, Household, HouseholdId, HouseholdLink, LifeStatus, OldIdNumber,
    PartialDate, PersonalId, Provenance, Relative, Source,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashMap;

/// "Today" in the mock world. Ages, card expiry and deaths are computed against this fixed date,
/// never the wall clock, so that a store generated next year holds the same citizens.
pub const WORLD_DATE: PartialDate = PartialDate::Full(2026, 11, 1);

/// Serials (last six digits of a personal ID) from this value up are reserved for personas.
pub const PERSONA_SERIAL_START: u32 = 999_000;
/// Old-ID suffixes (last seven digits) from this value up are reserved for personas.
pub const PERSONA_OLD_ID_START: u32 = 9_990_000;
/// Health-insurance suffixes (last eight digits) from this value up are reserved for personas.
pub const PERSONA_INSURANCE_START: u64 = 99_000_000;
/// Household numbers from this value up are reserved for personas.
pub const PERSONA_HOUSEHOLD_START: u32 = 9_990_000;

/// Clusters drafted per batch.
const CLUSTERS_PER_BATCH: u64 = 2048;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The seed: the same seed and size give the same citizens.
    pub seed: u64,
    /// How many citizens (personas come on top).
    pub citizens: u64,
    /// Generate a province's population (pre-2025 province code, e.g. 42 for Hà Tĩnh): nine in
    /// ten families are from there. None: the whole country.
    pub province: Option<u16>,
}

/// Why generation stopped.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "more than {PERSONA_SERIAL_START} citizens share province {0:03}, gender-century digit {1} and birth year {2:02}: personal ID numbers cannot hold them"
    )]
    SerialsExhausted(u16, u8, u8),
    #[error("{0:03} is not a pre-2025 province code (e.g. 42 for Hà Tĩnh, 38 for Thanh Hóa)")]
    UnknownProvince(u16),
}

/// A batch of generated citizens and the households they live in.
#[derive(Debug, Default)]
pub struct Batch {
    pub citizens: Vec<CitizenRecord>,
    pub households: Vec<Household>,
}

/// A stream of batches that together hold exactly `spec.citizens` citizens.
pub struct Generator {
    spec: Spec,
    next_cluster: u64,
    produced: u64,
    numbering: Numbering,
}

impl Generator {
    /// Checks the spec and starts the stream.
    pub fn new(spec: Spec) -> Result<Self, GenerateError> {
        if let Some(p) = spec.province
            && !PRE2025_PROVINCE_CODES.contains(&p)
        {
            return Err(GenerateError::UnknownProvince(p));
        }
        Ok(Self {
            spec,
            next_cluster: 0,
            produced: 0,
            numbering: Numbering::default(),
        })
    }

    fn cluster_rng(&self, index: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(splitmix(self.spec.seed ^ splitmix(index)))
    }

    fn next_batch(&mut self) -> Result<Batch, GenerateError> {
        let first = self.next_cluster;
        let drafts: Vec<DraftCluster> = (first..first + CLUSTERS_PER_BATCH)
            .into_par_iter()
            .map(|i| family::draft_cluster(&mut self.cluster_rng(i), self.spec.province))
            .collect();
        let mut batch = Batch::default();
        for draft in drafts {
            self.next_cluster += 1;
            let left = (self.spec.citizens - self.produced) as usize;
            let draft = family::truncate(draft, left);
            self.produced += draft.people.len() as u64;
            self.numbering.number_cluster(draft, &mut batch)?;
            if self.produced >= self.spec.citizens {
                break;
            }
        }
        Ok(batch)
    }
}

impl Iterator for Generator {
    type Item = Result<Batch, GenerateError>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.produced < self.spec.citizens).then(|| self.next_batch())
    }
}

/// SplitMix64: spreads a counter into a well-mixed seed.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A permutation of `0..modulus` (multiplier coprime with the modulus), so that counters become
/// unique numbers that look random.
fn permute(counter: u64, offset: u64, modulus: u64) -> u64 {
    (counter * 7919 + offset) % modulus
}

/// The first two digits of a 9-digit CMND issued in a (pre-2025) province: the numbering set
/// when several of today's provinces were one (Hà Sơn Bình, Nghệ Tĩnh, Bình Trị Thiên, Sông Bé…),
/// so they share a prefix. Hà Tây's 11 went with Hòa Bình; Hà Nội's numbers are 01.
pub fn cmnd_prefix(province: u16) -> Option<u8> {
    Some(match province {
        1 => 1,
        79 => 2,
        31 => 3,
        11 | 12 => 4,
        14 => 5,
        10 | 15 => 6,
        2 | 8 => 7,
        4 | 20 => 8,
        6 | 19 => 9,
        22 => 10,
        17 => 11,
        24 | 27 => 12,
        25 | 26 => 13,
        30 | 33 => 14,
        34 => 15,
        35..=37 => 16,
        38 => 17,
        40 | 42 => 18,
        44..=46 => 19,
        48 | 49 => 20,
        51 | 52 => 21,
        54 | 56 => 22,
        62 | 64 => 23,
        66 | 67 => 24,
        68 => 25,
        58 | 60 => 26,
        75 | 77 => 27,
        70 | 74 => 28,
        72 => 29,
        80 => 30,
        82 => 31,
        83 => 32,
        84 | 86 => 33,
        87 => 34,
        89 => 35,
        92..=94 => 36,
        91 => 37,
        95 | 96 => 38,
        _ => return None,
    })
}

/// Gives out numbers in cluster order.
#[derive(Default)]
struct Numbering {
    serials: HashMap<(u16, u8, u8), u32>,
    /// By CMND prefix.
    old_ids: HashMap<u8, u32>,
    households: u32,
    people: u64,
}

impl Numbering {
    fn personal_id(&mut self, p: &DraftPerson) -> Result<PersonalId, GenerateError> {
        let province = p.birth_district.district().province_code;
        let probe = PersonalId::new(province, p.gender, p.dob.year(), 0)
            .map_err(|_| GenerateError::UnknownProvince(province))?;
        let digit = probe.as_str().as_bytes()[3] - b'0';
        let yy = (p.dob.year().rem_euclid(100)) as u8;
        let key = (province, digit, yy);
        let counter = self.serials.entry(key).or_insert(0);
        if *counter >= PERSONA_SERIAL_START {
            return Err(GenerateError::SerialsExhausted(province, digit, yy));
        }
        let offset = splitmix(u64::from(province) << 16 | u64::from(digit) << 8 | u64::from(yy));
        let serial = permute(
            u64::from(*counter),
            offset % u64::from(PERSONA_SERIAL_START),
            u64::from(PERSONA_SERIAL_START),
        ) as u32;
        *counter += 1;
        PersonalId::new(province, p.gender, p.dob.year(), serial)
            .map_err(|_| GenerateError::UnknownProvince(province))
    }

    /// A 9-digit identity card number (CMND) of the province that issued it. Provinces that
    /// were one when the numbering was set share its prefix (Nghệ An and Hà Tĩnh: 18), so
    /// numbers are counted per prefix.
    fn old_id(&mut self, province: u16) -> Option<OldIdNumber> {
        let prefix = cmnd_prefix(province)?;
        let counter = self.old_ids.entry(prefix).or_insert(0);
        if *counter >= PERSONA_OLD_ID_START {
            return None;
        }
        let suffix = permute(
            u64::from(*counter),
            splitmix(u64::from(prefix)) % u64::from(PERSONA_OLD_ID_START),
            u64::from(PERSONA_OLD_ID_START),
        );
        *counter += 1;
        OldIdNumber::parse(&format!("{prefix:02}{suffix:07}")).ok()
    }

    fn number_cluster(
        &mut self,
        draft: DraftCluster,
        batch: &mut Batch,
    ) -> Result<(), GenerateError> {
        let ids = draft
            .people
            .iter()
            .map(|p| self.personal_id(p))
            .collect::<Result<Vec<_>, _>>()?;
        let household_ids: Vec<HouseholdId> = draft
            .households
            .iter()
            .map(|h| {
                self.households += 1;
                HouseholdId::new(h.address.province_code(), self.households)
            })
            .collect();
        for (h, id) in draft.households.iter().zip(&household_ids) {
            batch.households.push(Household {
                id: id.clone(),
                head: ids[h.members[0].0].clone(),
                members: h
                    .members
                    .iter()
                    .map(|&(p, r)| (ids[p].clone(), r))
                    .collect(),
                address: h.address.clone(),
            });
        }
        for (i, p) in draft.people.iter().enumerate() {
            self.people += 1;
            let relative = |r: &ParentRef| match r {
                ParentRef::Local(j) => Some(Relative {
                    personal_id: Some(ids[*j].clone()),
                    full_name: draft.people[*j].name.clone(),
                    date_of_birth: draft.people[*j].dob,
                }),
                ParentRef::External { name, born } => Some(Relative {
                    personal_id: None,
                    full_name: name.clone(),
                    date_of_birth: *born,
                }),
                ParentRef::Unknown => None,
            };
            let household = p.household.map(|(h, relation)| {
                (
                    HouseholdLink {
                        household_id: household_ids[h].clone(),
                        relation_to_head: relation,
                    },
                    draft.households[h].address.clone(),
                )
            });
            let mut old_ids: Vec<OldIdNumber> = p
                .old_id_provinces
                .iter()
                .filter_map(|&province| self.old_id(province))
                .collect();
            let old_id_number = old_ids.pop();
            let permanent = household
                .as_ref()
                .map(|(_, a)| a.clone())
                // The deceased are struck off residence; their last address is their family's.
                .unwrap_or_else(|| fallback_address(&draft, i));
            let insurance = p.insured.then(|| {
                let n = permute(self.people, 12_345, PERSONA_INSURANCE_START);
                format!("{:02}{n:08}", permanent.province_code())
            });
            let mut record = CitizenRecord {
                personal_id: ids[i].clone(),
                old_id_number,
                previous_old_id_numbers: old_ids,
                full_name: p.name.clone(),
                date_of_birth: p.dob,
                gender: p.gender,
                nationality: "VN".to_owned(),
                ethnicity: p.ethnicity.to_owned(),
                religion: p.religion.to_owned(),
                place_of_birth: lienthong_domain::HistoricalPlace {
                    district: p.birth_district,
                },
                place_of_origin: lienthong_domain::HistoricalPlace { district: p.origin },
                current_address: p.temporary.clone().unwrap_or_else(|| permanent.clone()),
                permanent_address: permanent,
                temporary_address: p.temporary.clone(),
                household: household.map(|(link, _)| link),
                father: relative(&p.father),
                mother: relative(&p.mother),
                spouse: p.spouse.and_then(|s| relative(&ParentRef::Local(s))),
                marital_status: p.marital,
                card: p.card.clone(),
                phone: p.phone.clone(),
                eid_level: p.eid,
                health_insurance_number: insurance,
                life_status: match p.died {
                    Some(date) => LifeStatus::Deceased { date },
                    None => LifeStatus::Alive,
                },
                provenance: Vec::new(),
            };
            record.provenance = provenance_for(&record, p.provenance_seed);
            batch.citizens.push(record);
        }
        Ok(())
    }
}

/// The address of the first household of the cluster, for someone in none (the deceased).
fn fallback_address(draft: &DraftCluster, person: usize) -> lienthong_domain::Address {
    let spouse_home = draft.people[person]
        .spouse
        .and_then(|s| draft.people[s].household)
        .map(|(h, _)| h);
    let h = spouse_home.unwrap_or(0);
    match draft.households.get(h) {
        Some(h) => h.address.clone(),
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(draft.people[person].provenance_seed);
            let province = draft.people[person].origin.district().province_code;
            let p2025 = units()
                .old_province(province)
                .map(|p| p.province_2025)
                .unwrap_or(1);
            family::random_address(&mut rng, units(), p2025)
        }
    }
}

/// The source of each field and when it was last updated: civil-status facts date from the
/// population database's build-up (2021) or the event (birth, death), residence from the
/// household's registration, card fields from the card's issue.
pub fn provenance_for(record: &CitizenRecord, seed: u64) -> Vec<Provenance> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let build_up = PartialDate::Full(2021, 7, 1);
    let world = WORLD_DATE.days_since_epoch();
    let mut stamp = |event: PartialDate| -> i64 {
        let from = event.max(build_up).days_since_epoch();
        let day = (from + rng.random_range(0..120)).min(world);
        day * 86_400 + rng.random_range(8 * 3600..17 * 3600)
    };
    let birth = record.date_of_birth;
    let card_issue = record.card.as_ref().map(|c| c.issue_date).unwrap_or(birth);
    let death = match record.life_status {
        LifeStatus::Deceased { date } => date,
        LifeStatus::Alive => birth,
    };
    let residence = stamp(birth);
    CitizenField::ALL
        .iter()
        .filter(|f| record.has(**f))
        .map(|&field| {
            use CitizenField as F;
            let (source, updated_at) = match field {
                F::Card | F::OldIdNumber | F::PreviousOldIdNumbers | F::EidLevel => {
                    (Source::IdCard, stamp(card_issue))
                }
                F::PermanentAddress | F::TemporaryAddress | F::CurrentAddress | F::Household => {
                    (Source::Residence, residence)
                }
                F::Phone => (Source::SelfDeclared, stamp(card_issue)),
                F::HealthInsuranceNumber => (Source::SocialInsurance, stamp(birth)),
                F::LifeStatus => (Source::CivilStatus, stamp(death)),
                _ => (Source::CivilStatus, stamp(birth)),
            };
            Provenance {
                field,
                source,
                updated_at,
                system: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pre_2025_province_has_a_cmnd_prefix() {
        for &p in PRE2025_PROVINCE_CODES {
            assert!(cmnd_prefix(p).is_some_and(|x| (1..=38).contains(&x)), "{p}");
        }
        assert_eq!(cmnd_prefix(3), None);
    }
}
