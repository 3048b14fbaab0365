//! One family cluster, drafted from its own seeded random stream: grandparents, their children
//! with spouses, and grandchildren, living in one or more households. Members refer to each
//! other by position; numbers (personal IDs, household ids) are given out later, in order.

use super::WORLD_DATE;
use super::names::{self, RELIGIONS, STREETS, Weighted};
use lienthong_domain::date::days_in_month;
use lienthong_domain::units::{AdminUnits, units};
use lienthong_domain::{
    Address, CardStatus, CardType, DistrictCode, EidLevel, Gender, IdCard, MaritalStatus,
    PartialDate, Relation, WardCode,
};
use rand::Rng;
use rand::seq::IndexedRandom;

/// A parent as seen from a drafted person.
#[derive(Debug, Clone)]
pub enum ParentRef {
    /// Another member of the same cluster.
    Local(usize),
    /// Someone outside the database: known by name and birth year only.
    External { name: String, born: PartialDate },
    /// Not recorded.
    Unknown,
}

/// A drafted person: everything but the numbers.
#[derive(Debug, Clone)]
pub struct DraftPerson {
    pub gender: Gender,
    pub dob: PartialDate,
    pub name: String,
    pub birth_district: DistrictCode,
    pub origin: DistrictCode,
    pub ethnicity: &'static str,
    pub religion: &'static str,
    pub father: ParentRef,
    pub mother: ParentRef,
    pub spouse: Option<usize>,
    pub marital: MaritalStatus,
    pub died: Option<PartialDate>,
    /// The provinces that issued the person's 9-digit numbers (CMND), in order; empty for none.
    pub old_id_provinces: Vec<u16>,
    pub card: Option<IdCard>,
    pub phone: Option<String>,
    pub eid: EidLevel,
    pub insured: bool,
    pub temporary: Option<Address>,
    /// Index into the cluster's households, and relation to its head.
    pub household: Option<(usize, Relation)>,
    /// Seed for the person's provenance timestamps.
    pub provenance_seed: u64,
}

/// A drafted household: its address and members (head first).
#[derive(Debug, Clone)]
pub struct DraftHousehold {
    pub address: Address,
    pub members: Vec<(usize, Relation)>,
}

/// A married couple of the family and the children who live with them.
#[derive(Debug, Clone)]
struct Couple {
    father: usize,
    mother: usize,
    /// The one who married into the family.
    spouse: usize,
    kids: Vec<usize>,
    divorced: bool,
}

/// A drafted family cluster.
#[derive(Debug, Clone, Default)]
pub struct DraftCluster {
    pub people: Vec<DraftPerson>,
    pub households: Vec<DraftHousehold>,
}

const CARD_SWITCH: PartialDate = PartialDate::Full(2024, 7, 1);

/// How long after a death the deceased may still be on the household register.
const STRIKE_OFF_DAYS: i64 = 120;

/// Whether someone who died on `date` is still on the residence register.
pub fn not_yet_struck_off(date: PartialDate) -> bool {
    WORLD_DATE.days_since_epoch() - date.days_since_epoch() < STRIKE_OFF_DAYS
}
const CHIP_START: PartialDate = PartialDate::Full(2021, 1, 1);

fn random_date_between(rng: &mut impl Rng, from: PartialDate, to: PartialDate) -> PartialDate {
    let (a, b) = (from.days_since_epoch(), to.days_since_epoch());
    if b <= a {
        return PartialDate::from_days_since_epoch(a);
    }
    PartialDate::from_days_since_epoch(rng.random_range(a..=b))
}

fn birth_date(rng: &mut impl Rng, year: i32) -> PartialDate {
    let year = year.min(WORLD_DATE.year());
    // Older records sometimes hold only the year, or the month and year.
    if year < 1960 && rng.random_bool(0.04) {
        return PartialDate::Year(year);
    }
    let month = rng.random_range(1..=12);
    if year < 1970 && rng.random_bool(0.02) {
        return PartialDate::YearMonth(year, month);
    }
    // Many older registers wrote 01/01 where the day and month were not known.
    if year < 1975 && rng.random_bool(0.06) {
        return PartialDate::Full(year, 1, 1);
    }
    let day = rng.random_range(1..=days_in_month(year, month));
    let date = PartialDate::Full(year, month, day);
    if date > WORLD_DATE {
        random_date_between(rng, PartialDate::Full(year, 1, 1), WORLD_DATE)
    } else {
        date
    }
}

fn anniversary(dob: PartialDate, age: i32) -> PartialDate {
    let (y, m, d) = dob.to_parts();
    let (m, d) = (m.max(1), d.max(1));
    let d = d.min(days_in_month(y + age, m));
    PartialDate::Full(y + age, m, d)
}

/// The card rules: a card issued before 14 must be renewed at 14; from 14 a card is valid until
/// the holder turns 25, 40 or 60, one issued within two years of such an age runs to the next,
/// and from 58 on it is valid for life. A card is issued only to the living (`until` is the day
/// of death for the deceased), and a deceased citizen's card is revoked.
fn card_for(rng: &mut impl Rng, dob: PartialDate, died: Option<PartialDate>) -> Option<IdCard> {
    let until = died.unwrap_or(WORLD_DATE);
    let age = dob.age_on(until);
    let earliest = if age >= 14 {
        anniversary(dob, 14).max(CHIP_START)
    } else if rng.random_bool(0.08) {
        // Since July 2024 a child under 14 may be given a Căn cước card on request.
        dob.max(CARD_SWITCH)
    } else {
        return None;
    };
    if earliest > until {
        return None;
    }
    let issue = random_date_between(rng, earliest, until);
    let age_at_issue = dob.age_on(issue);
    let expiry = if age_at_issue < 14 {
        Some(anniversary(dob, 14))
    } else {
        [25, 40, 60]
            .into_iter()
            .find(|&m| age_at_issue < m - 2)
            .map(|m| anniversary(dob, m))
    };
    let (card_type, place) = if issue >= CARD_SWITCH {
        (CardType::CanCuoc, "Bộ Công an")
    } else {
        (
            CardType::ChipCccd,
            "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
        )
    };
    let status = match rng.random_range(0..1000) {
        _ if died.is_some() => CardStatus::Revoked,
        0..4 => CardStatus::Revoked,
        4..10 => CardStatus::Lost,
        _ if expiry.is_some_and(|e| e < WORLD_DATE) => CardStatus::Expired,
        _ => CardStatus::Valid,
    };
    Some(IdCard {
        card_type,
        issue_date: issue,
        issue_place: place.to_owned(),
        expiry_date: expiry,
        status,
    })
}

fn phone(rng: &mut impl Rng) -> String {
    let prefix = names::PHONE_PREFIXES.choose(rng).copied().unwrap_or("091");
    format!("{prefix}{:07}", rng.random_range(0..10_000_000))
}

/// Picks the pre-2025 province a cluster is from: the scope province nine times in ten, else a
/// province weighted by its population at the 2019 census.
fn pick_province(rng: &mut impl Rng, scope: Option<u16>) -> u16 {
    if let Some(p) = scope
        && rng.random_bool(0.9)
    {
        return p;
    }
    names::PROVINCE_POPULATION.pick(rng)
}

fn random_district(rng: &mut impl Rng, u: &AdminUnits, old_province: u16) -> DistrictCode {
    let ds: Vec<_> = u.districts_of(old_province).collect();
    let code = ds.choose(rng).map(|d| d.code).unwrap_or(1);
    DistrictCode::try_from(u32::from(code)).unwrap_or_else(|_| first_district())
}

fn first_district() -> DistrictCode {
    DistrictCode::try_from(u32::from(units().districts[0].code))
        .expect("the embedded table has districts")
}

/// A random address in a 2025 province: a numbered house on a street in a ward, or a hamlet in
/// a commune.
pub fn random_address(rng: &mut impl Rng, u: &AdminUnits, province_2025: u16) -> Address {
    let wards: Vec<_> = u.wards_of(province_2025).collect();
    let ward = wards.choose(rng).copied().unwrap_or(&u.wards[0]);
    let detail = if ward.is_urban {
        let street = STREETS.choose(rng).copied().unwrap_or("Trần Phú");
        format!("Số {} đường {street}", rng.random_range(1..300))
    } else {
        match rng.random_range(0..3) {
            0 => format!("Thôn {}", rng.random_range(1..15)),
            1 => format!("Xóm {}", rng.random_range(1..12)),
            _ => format!("Tổ dân phố {}", rng.random_range(1..20)),
        }
    };
    Address {
        detail,
        ward: WardCode::try_from(ward.code).expect("ward comes from the table"),
    }
}

/// The big cities and industrial provinces migrant workers register temporary residence in.
const MIGRATION_TARGETS: Weighted<u16> =
    Weighted::new(&[(79, 40), (1, 25), (75, 10), (24, 10), (48, 8), (31, 7)]);

struct Builder<'r, R: Rng> {
    rng: &'r mut R,
    u: &'static AdminUnits,
    cluster: DraftCluster,
}

impl<R: Rng> Builder<'_, R> {
    fn external_parents(
        &mut self,
        family: &str,
        ethnicity: &str,
        born: i32,
    ) -> (ParentRef, ParentRef) {
        if !self.rng.random_bool(0.6) {
            return (ParentRef::Unknown, ParentRef::Unknown);
        }
        let fy = born - self.rng.random_range(22..38);
        let my = fy + self.rng.random_range(0..6);
        let father = names::full_name_of(self.rng, ethnicity, family, Gender::Male, fy);
        let mother_family = names::family_of(self.rng, ethnicity);
        let mother = names::full_name_of(self.rng, ethnicity, mother_family, Gender::Female, my);
        (
            ParentRef::External {
                name: father,
                born: PartialDate::Year(fy),
            },
            ParentRef::External {
                name: mother,
                born: PartialDate::Year(my),
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn person(
        &mut self,
        gender: Gender,
        year: i32,
        family: &str,
        province: u16,
        origin: DistrictCode,
        ethnicity: &'static str,
        religion: &'static str,
        father: ParentRef,
        mother: ParentRef,
    ) -> usize {
        let dob = birth_date(self.rng, year);
        let age = dob.age_on(WORLD_DATE);
        let death_chance = match age {
            90.. => 0.6,
            80..=89 => 0.3,
            70..=79 => 0.12,
            60..=69 => 0.04,
            18..=59 => 0.004,
            _ => 0.0,
        };
        let died = self.rng.random_bool(death_chance).then(|| {
            let from = anniversary(dob, 50.min(age)).max(PartialDate::Full(2010, 1, 1));
            random_date_between(self.rng, from, WORLD_DATE)
        });
        let alive = died.is_none();
        let card = card_for(self.rng, dob, died);
        // Phone ownership falls with age (a number in the citizen's own name).
        let phone_share = match age {
            ..16 => 0.0,
            16..=59 => 0.88,
            60..=69 => 0.7,
            70..=79 => 0.45,
            _ => 0.2,
        };
        let has_phone = alive && self.rng.random_bool(phone_share);
        let eid = match (alive && card.is_some(), self.rng.random_range(0..100)) {
            (true, 0..65) => EidLevel::Level2,
            (true, 65..73) => EidLevel::Level1,
            // Registered in the last days, awaiting approval (two to three days).
            (true, 73..75) => EidLevel::Level1Pending,
            _ => EidLevel::None,
        };
        let temporary =
            (alive && (18..=40).contains(&age) && self.rng.random_bool(0.12)).then(|| {
                let target = MIGRATION_TARGETS.pick(self.rng);
                random_address(self.rng, self.u, target)
            });
        let person = DraftPerson {
            gender,
            dob,
            name: names::full_name_of(self.rng, ethnicity, family, gender, dob.year()),
            birth_district: random_district(self.rng, self.u, province),
            origin,
            ethnicity,
            religion,
            father,
            mother,
            spouse: None,
            marital: MaritalStatus::Single,
            died,
            old_id_provinces: self.old_id_provinces(dob, province),
            card,
            phone: has_phone.then(|| phone(self.rng)),
            eid,
            insured: age < 6 || self.rng.random_bool(0.92),
            temporary,
            household: None,
            provenance_seed: self.rng.random(),
        };
        self.cluster.people.push(person);
        self.cluster.people.len() - 1
    }

    /// The 9-digit CMND was issued from 14 until the 12-digit numbers replaced it: nearly
    /// everyone born by 1990 held one, fewer of those who turned 14 later. Some were given
    /// another number: a card lost and issued again (same province), or a move to a province
    /// that numbered it anew.
    fn old_id_provinces(&mut self, dob: PartialDate, province: u16) -> Vec<u16> {
        let share = match dob.year() {
            ..=1990 => 0.97,
            1991..=1998 => 0.8,
            1999..=2002 => 0.45,
            _ => 0.0,
        };
        if !self.rng.random_bool(share) {
            return Vec::new();
        }
        let mut provinces = vec![province];
        if self.rng.random_bool(0.05) {
            provinces.push(province);
        }
        if self.rng.random_bool(0.04) {
            provinces.push(pick_province(self.rng, None));
        }
        provinces
    }

    fn marry(&mut self, a: usize, b: usize) {
        // A survivor is widowed; the deceased stays married on record.
        let status = |me: &DraftPerson, other: &DraftPerson| {
            if me.died.is_none() && other.died.is_some() {
                MaritalStatus::Widowed
            } else {
                MaritalStatus::Married
            }
        };
        let people = &mut self.cluster.people;
        let (sa, sb) = (
            status(&people[a], &people[b]),
            status(&people[b], &people[a]),
        );
        people[a].spouse = Some(b);
        people[b].spouse = Some(a);
        people[a].marital = sa;
        people[b].marital = sb;
    }

    /// Children of a couple: from the mother's twentieth year, two to four years apart.
    fn children(
        &mut self,
        father: usize,
        mother: usize,
        count: usize,
        family: &str,
        province: u16,
    ) -> Vec<usize> {
        let (origin, ethnicity, religion) = {
            let f = &self.cluster.people[father];
            (f.origin, f.ethnicity, f.religion)
        };
        let mother_year = self.cluster.people[mother].dob.year();
        // No child is born after a parent's death.
        let last_year = [father, mother]
            .iter()
            .filter_map(|&p| self.cluster.people[p].died.map(|d| d.year()))
            .min()
            .unwrap_or(WORLD_DATE.year());
        let mut year = mother_year + self.rng.random_range(20..27);
        let mut kids = Vec::new();
        for _ in 0..count {
            if year > last_year.min(WORLD_DATE.year()) || year - mother_year > 42 {
                break;
            }
            let gender = if self.rng.random_bool(0.52) {
                Gender::Male
            } else {
                Gender::Female
            };
            kids.push(self.person(
                gender,
                year,
                family,
                province,
                origin,
                ethnicity,
                religion,
                ParentRef::Local(father),
                ParentRef::Local(mother),
            ));
            year += self.rng.random_range(2..5);
        }
        kids
    }

    /// The family name a person passes on to their children: the first word of their name.
    fn family_name_of(&self, p: usize) -> String {
        let name = &self.cluster.people[p].name;
        name.split(' ').next().unwrap_or(name).to_owned()
    }

    /// Whether an adult of the family marries; if so, drafts the spouse and the couple's
    /// children. About one marriage in thirty ends in divorce (the 2019 census counts 1.7%
    /// of adults divorced or separated).
    fn settle(
        &mut self,
        child: usize,
        ethnicity: &'static str,
        province: u16,
        family: &str,
    ) -> Option<Couple> {
        let (age, gender, year) = {
            let c = &self.cluster.people[child];
            (c.dob.age_on(WORLD_DATE), c.gender, c.dob.year())
        };
        let chance = match age {
            ..20 => 0.0,
            20..=24 => 0.35,
            25..=29 => 0.65,
            _ => 0.9,
        };
        if !self.rng.random_bool(chance) {
            return None;
        }
        let spouse_gender = match gender {
            Gender::Male => Gender::Female,
            Gender::Female => Gender::Male,
        };
        let spouse_family = names::family_of(self.rng, ethnicity);
        let spouse_year = match spouse_gender {
            Gender::Female => year + self.rng.random_range(0..6),
            Gender::Male => year - self.rng.random_range(0..6),
        };
        let spouse_province = if self.rng.random_bool(0.7) {
            province
        } else {
            pick_province(self.rng, None)
        };
        let spouse_origin = random_district(self.rng, self.u, spouse_province);
        let (sf, sm) = self.external_parents(spouse_family, ethnicity, spouse_year);
        let spouse_religion = RELIGIONS.pick(self.rng);
        let spouse = self.person(
            spouse_gender,
            spouse_year,
            spouse_family,
            spouse_province,
            spouse_origin,
            ethnicity,
            spouse_religion,
            sf,
            sm,
        );
        self.marry(child, spouse);
        let (father, mother) = match gender {
            Gender::Male => (child, spouse),
            Gender::Female => (spouse, child),
        };
        let kid_family = match gender {
            Gender::Male => family.to_owned(),
            Gender::Female => self.family_name_of(spouse),
        };
        // Two children is the norm for those born since 1975; more before.
        let count = if year < 1975 {
            self.rng.random_range(1..5)
        } else {
            self.rng.random_range(1..4)
        };
        let kids = self.children(father, mother, count, &kid_family, province);
        let both_alive =
            self.cluster.people[child].died.is_none() && self.cluster.people[spouse].died.is_none();
        let divorced = both_alive && self.rng.random_bool(0.03);
        if divorced {
            for p in [child, spouse] {
                self.cluster.people[p].spouse = None;
                self.cluster.people[p].marital = MaritalStatus::Divorced;
            }
        }
        Some(Couple {
            father,
            mother,
            spouse,
            kids,
            divorced,
        })
    }

    /// A couple's own household: father, mother and children at home; after a divorce the
    /// children stay with their mother and the father lives on his own.
    fn move_out(&mut self, couple: &Couple, province_2025: u16) {
        let address = random_address(self.rng, self.u, province_2025);
        if couple.divorced {
            let mut members = vec![(couple.mother, Relation::Head)];
            members.extend(couple.kids.iter().map(|&k| (k, Relation::Child)));
            self.household(address, members);
            self.live_alone(couple.father, province_2025);
        } else {
            let mut members = vec![
                (couple.father, Relation::Head),
                (couple.mother, Relation::Spouse),
            ];
            members.extend(couple.kids.iter().map(|&k| (k, Relation::Child)));
            self.household(address, members);
        }
    }

    /// A household of one.
    fn live_alone(&mut self, p: usize, province_2025: u16) {
        let address = random_address(self.rng, self.u, province_2025);
        self.household(address, vec![(p, Relation::Head)]);
    }

    fn household(&mut self, address: Address, members: Vec<(usize, Relation)>) {
        // The dead are struck off the residence register after the death is registered; those
        // who died in the last months may not be yet (never the head: the household has one).
        let members: Vec<_> = members
            .into_iter()
            .filter(|&(p, relation)| match self.cluster.people[p].died {
                None => true,
                Some(date) => relation != Relation::Head && not_yet_struck_off(date),
            })
            .collect();
        // When the head has died, the first living member heads the household.
        let Some(heir) = members
            .iter()
            .position(|&(p, _)| self.cluster.people[p].died.is_none())
        else {
            return;
        };
        let mut members = members;
        if members[0].1 != Relation::Head {
            let (p, _) = members.remove(heir);
            members.insert(0, (p, Relation::Head));
        }
        let index = self.cluster.households.len();
        for (p, rel) in &members {
            self.cluster.people[*p].household = Some((index, *rel));
        }
        self.cluster
            .households
            .push(DraftHousehold { address, members });
    }
}

/// Drafts a whole family cluster.
pub fn draft_cluster(rng: &mut impl Rng, scope: Option<u16>) -> DraftCluster {
    let u = units();
    let province = pick_province(rng, scope);
    let province_2025 = u
        .old_province(province)
        .map(|p| p.province_2025)
        .unwrap_or(province);
    // Ethnic groups and their names follow the province (Kinh names in the lowlands; Thái,
    // Mường, H'Mông, Khmer… naming where those groups live).
    let ethnicity = names::ethnicity_in(rng, province);
    let family = names::family_of(rng, ethnicity);
    let religion = RELIGIONS.pick(rng);
    let origin = random_district(rng, u, province);
    let mut b = Builder {
        rng,
        u,
        cluster: DraftCluster::default(),
    };

    // Grandparents.
    // Weighted to older grandparents, so that the age pyramid comes out as the census's.
    let g0_year = if b.rng.random_bool(0.6) {
        b.rng.random_range(1928..1960)
    } else {
        b.rng.random_range(1960..1988)
    };
    let (gf_father, gf_mother) = b.external_parents(family, ethnicity, g0_year);
    let grandfather = b.person(
        Gender::Male,
        g0_year,
        family,
        province,
        origin,
        ethnicity,
        religion,
        gf_father,
        gf_mother,
    );
    let gm_family = names::family_of(b.rng, ethnicity);
    let gm_year = g0_year + b.rng.random_range(-1..6);
    let (gm_father, gm_mother) = b.external_parents(gm_family, ethnicity, gm_year);
    let gm_origin = random_district(b.rng, u, province);
    let grandmother = b.person(
        Gender::Female,
        gm_year,
        gm_family,
        province,
        gm_origin,
        ethnicity,
        religion,
        gm_father,
        gm_mother,
    );
    b.marry(grandfather, grandmother);
    // A store is a sample: some elderly couples' children live elsewhere and are not drawn
    // (about one in five of the elderly live alone or as a couple).
    let empty_nest = g0_year < 1962 && b.rng.random_bool(0.3);
    let kids_count = match g0_year {
        _ if empty_nest => 0,
        ..1960 => b.rng.random_range(3..7),
        1960..1975 => b.rng.random_range(2..5),
        _ => b.rng.random_range(1..4),
    };
    let g1 = b.children(grandfather, grandmother, kids_count, family, province);

    // The children's own families; the eldest son (or eldest child) stays with the parents.
    let stays = g1
        .iter()
        .copied()
        .find(|&k| b.cluster.people[k].gender == Gender::Male)
        .or_else(|| g1.first().copied());
    let mut home = vec![
        (grandfather, Relation::Head),
        (grandmother, Relation::Spouse),
    ];
    for &child in &g1 {
        let Some(couple) = b.settle(child, ethnicity, province, family) else {
            home.push((child, Relation::Child));
            continue;
        };
        // The grandchildren's own families: each married grandchild moves out.
        let mut at_home = Vec::new();
        for &kid in &couple.kids {
            let kid_family = b.family_name_of(kid);
            match b.settle(kid, ethnicity, province, &kid_family) {
                Some(own) => b.move_out(&own, province_2025),
                None => at_home.push(kid),
            }
        }
        if Some(child) == stays {
            home.push((child, Relation::Child));
            if couple.divorced {
                b.live_alone(couple.spouse, province_2025);
            } else {
                home.push((couple.spouse, Relation::Other));
            }
            home.extend(at_home.iter().map(|&k| (k, Relation::Grandchild)));
        } else {
            let couple = Couple {
                kids: at_home,
                ..couple
            };
            b.move_out(&couple, province_2025);
        }
    }
    // The grandparents' household; when both have died, the child who stayed heads it.
    let home_address = random_address(b.rng, u, province_2025);
    let alive = |b: &Builder<'_, _>, p: usize| b.cluster.people[p].died.is_none();
    if !alive(&b, grandfather) && !alive(&b, grandmother) {
        if let Some(heir) = stays {
            home = rebase_on_heir(&b.cluster, &home, heir);
        }
    } else if !alive(&b, grandfather) {
        home = home
            .into_iter()
            .map(|(p, r)| match p {
                p if p == grandmother => (p, Relation::Head),
                _ => (p, r),
            })
            .collect();
    }
    b.household(home_address, home);
    b.cluster
}

/// Relations in the grandparents' home once the heir has become head of household.
fn rebase_on_heir(
    cluster: &DraftCluster,
    home: &[(usize, Relation)],
    heir: usize,
) -> Vec<(usize, Relation)> {
    let heir_spouse = cluster.people[heir].spouse;
    let mut out = vec![(heir, Relation::Head)];
    for &(p, r) in home {
        if p == heir {
            continue;
        }
        let rel = if Some(p) == heir_spouse {
            Relation::Spouse
        } else if r == Relation::Grandchild {
            Relation::Child
        } else if r == Relation::Head || r == Relation::Spouse {
            Relation::Parent
        } else {
            Relation::Other
        };
        out.push((p, rel));
    }
    out
}

/// Keeps the first `budget` people of a cluster, so that a store has exactly the size asked for.
/// People are drafted parents before children, so cutting the tail never leaves a child without
/// drafted parents; a spouse cut off becomes a relative outside the database.
pub fn truncate(mut cluster: DraftCluster, budget: usize) -> DraftCluster {
    if cluster.people.len() <= budget {
        return cluster;
    }
    cluster.people.truncate(budget);
    for p in &mut cluster.people {
        if p.spouse.is_some_and(|s| s >= budget) {
            p.spouse = None;
            p.marital = MaritalStatus::Single;
        }
    }
    let mut kept = Vec::new();
    for mut h in std::mem::take(&mut cluster.households) {
        h.members.retain(|(p, _)| *p < budget);
        if h.members.is_empty() {
            continue;
        }
        // If the head was cut, the first remaining member heads the household.
        h.members[0].1 = Relation::Head;
        for &(p, r) in &h.members {
            cluster.people[p].household = Some((kept.len(), r));
        }
        kept.push(h);
    }
    cluster.households = kept;
    cluster
}
