//! The generator and the store: determinism, validity, realism, personas, round-trips.
#![allow(clippy::unwrap_used)]

use lienthong_domain::{
    CardStatus, CitizenRecord, Household, LifeStatus, MaritalStatus, PersonalId,
};
use lienthong_proto::convert;
use mock_csdl::generator::{Batch, Generator, WORLD_DATE};
use mock_csdl::personas::PERSONAS;
use mock_csdl::{Spec, Store};
use std::collections::{HashMap, HashSet};

fn generate(seed: u64, citizens: u64, province: Option<u16>) -> Batch {
    let mut all = Batch::default();
    for batch in Generator::new(Spec {
        seed,
        citizens,
        province,
    })
    .unwrap()
    {
        let batch = batch.unwrap();
        all.citizens.extend(batch.citizens);
        all.households.extend(batch.households);
    }
    all
}

#[test]
fn same_seed_and_size_give_the_same_citizens() {
    let a = generate(11, 3000, None);
    let b = generate(11, 3000, None);
    assert_eq!(a.citizens, b.citizens);
    assert_eq!(a.households, b.households);
    let c = generate(12, 3000, None);
    assert_ne!(a.citizens, c.citizens, "another seed gives other citizens");
}

#[test]
fn a_smaller_store_is_a_prefix_of_a_larger_one() {
    let small = generate(5, 1000, None);
    let large = generate(5, 5000, None);
    // Only the last cluster of the small store may be cut short.
    let same = small
        .citizens
        .iter()
        .zip(&large.citizens)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(same > 950, "only {same} of 1000 agree");
}

#[test]
fn the_store_has_exactly_the_size_asked_for() {
    for n in [0, 1, 2, 7, 999, 4321] {
        assert_eq!(generate(3, n, None).citizens.len() as u64, n, "size {n}");
    }
}

#[test]
fn every_id_is_valid_unique_and_agrees_with_its_record() {
    let b = generate(21, 20_000, None);
    let mut ids = HashSet::new();
    let mut old_ids = HashSet::new();
    let mut insurance = HashSet::new();
    for c in &b.citizens {
        let reparsed = PersonalId::parse(c.personal_id.as_str()).unwrap();
        assert_eq!(reparsed, c.personal_id);
        assert_eq!(
            c.id_inconsistencies(),
            Vec::<&str>::new(),
            "{:?}",
            c.personal_id
        );
        assert!(
            ids.insert(c.personal_id.clone()),
            "duplicate {:?}",
            c.personal_id
        );
        assert!(
            c.personal_id.serial() < mock_csdl::generator::PERSONA_SERIAL_START,
            "generated serial in the persona range"
        );
        for o in c.old_id_number.iter().chain(&c.previous_old_id_numbers) {
            assert!(old_ids.insert(o.clone()), "duplicate old id");
        }
        if let Some(h) = &c.health_insurance_number {
            assert_eq!(h.len(), 10);
            assert!(insurance.insert(h.clone()), "duplicate insurance number");
        }
        assert!(c.date_of_birth <= WORLD_DATE, "born in the future");
    }
}

#[test]
fn relatives_and_households_are_consistent() {
    let b = generate(8, 20_000, None);
    let by_id: HashMap<&PersonalId, &CitizenRecord> =
        b.citizens.iter().map(|c| (&c.personal_id, c)).collect();
    let households: HashMap<_, &Household> = b.households.iter().map(|h| (&h.id, h)).collect();
    let mut parent_links = 0;
    for c in &b.citizens {
        for parent in [&c.father, &c.mother].into_iter().flatten() {
            if let Some(pid) = &parent.personal_id {
                let p = by_id.get(pid).expect("a parent with an ID is on record");
                assert_eq!(p.full_name, parent.full_name);
                assert!(p.date_of_birth.year() + 14 <= c.date_of_birth.year());
                parent_links += 1;
            }
        }
        if let Some(spouse) = &c.spouse {
            let s = by_id[spouse
                .personal_id
                .as_ref()
                .expect("generated spouses are on record")];
            assert_eq!(
                s.spouse.as_ref().and_then(|x| x.personal_id.as_ref()),
                Some(&c.personal_id),
                "spouse links are mutual"
            );
            assert_ne!(s.gender, c.gender);
        }
        match (&c.household, &c.life_status) {
            (Some(link), LifeStatus::Alive) => {
                let h = households[&link.household_id];
                assert!(
                    h.members
                        .iter()
                        .any(|(m, r)| *m == c.personal_id && *r == link.relation_to_head)
                );
                assert_eq!(c.permanent_address, h.address);
            }
            (None, LifeStatus::Deceased { date }) => assert!(*date >= c.date_of_birth),
            // Died in the last months and not yet struck off the register; never its head.
            (Some(link), LifeStatus::Deceased { date })
                if WORLD_DATE.days_since_epoch() - date.days_since_epoch() < 120 =>
            {
                let h = households[&link.household_id];
                assert_ne!(h.head, c.personal_id);
                assert!(h.members.iter().any(|(m, _)| *m == c.personal_id));
            }
            (h, l) => panic!("household {h:?} with life status {l:?}"),
        }
    }
    assert!(parent_links > 5_000, "only {parent_links} parent links");
    for h in &b.households {
        assert_eq!(h.members[0].0, h.head);
        assert!(by_id.contains_key(&h.head));
    }
}

#[test]
fn the_population_looks_like_vietnam() {
    let b = generate(2025, 30_000, None);
    let n = b.citizens.len() as f64;
    let share = |pred: &dyn Fn(&CitizenRecord) -> bool| {
        b.citizens.iter().filter(|c| pred(c)).count() as f64 / n
    };
    let age = |c: &CitizenRecord| c.date_of_birth.age_on(WORLD_DATE);
    let alive = |c: &CitizenRecord| c.life_status == LifeStatus::Alive;
    let adults = b.citizens.iter().filter(|c| alive(c) && age(c) >= 18);
    let (adult_count, without_phone) = adults.fold((0, 0), |(a, w), c| {
        (a + 1, w + usize::from(c.phone.is_none()))
    });
    let no_phone = without_phone as f64 / f64::from(adult_count);
    assert!(
        (0.15..0.30).contains(&no_phone),
        "adults without phone: {no_phone}"
    );
    let male = share(&|c| c.gender == lienthong_domain::Gender::Male);
    assert!((0.45..0.56).contains(&male), "male: {male}");
    assert!(
        share(&|c| !c.date_of_birth.is_full()) > 0.001,
        "partial dates"
    );
    assert!(share(&|c| !alive(c)) > 0.01, "deceased");
    assert!(share(&|c| c.old_id_number.is_some()) > 0.1, "old IDs");
    let card =
        |s: CardStatus| move |c: &CitizenRecord| c.card.as_ref().is_some_and(|k| k.status == s);
    assert!(share(&card(CardStatus::Revoked)) > 0.001, "revoked cards");
    assert!(share(&card(CardStatus::Expired)) > 0.005, "expired cards");
    assert!(
        share(&|c| c.marital_status == MaritalStatus::Widowed) > 0.005,
        "widowed"
    );
    assert!(
        share(&|c| c.temporary_address.is_some()) > 0.01,
        "temporary residence"
    );
    let nguyen = share(&|c| c.full_name.starts_with("Nguyễn "));
    assert!((0.25..0.50).contains(&nguyen), "Nguyễn: {nguyen}");
    let kinh = share(&|c| c.ethnicity == "Kinh");
    assert!((0.75..0.95).contains(&kinh), "Kinh: {kinh}");
    // Children under 14 without a card; card holders of 14 and over.
    assert!(b.citizens.iter().any(|c| age(c) < 14 && c.card.is_none()));
    // A card is issued only to the living and is revoked at death; one issued before 14 is to
    // be renewed at 14.
    for c in &b.citizens {
        let Some(card) = &c.card else { continue };
        if let LifeStatus::Deceased { date } = c.life_status {
            assert!(card.issue_date <= date, "{c:?}");
            assert_eq!(card.status, CardStatus::Revoked, "{c:?}");
        }
        if card.issue_date.year() - c.date_of_birth.year() < 13 {
            let expiry = card.expiry_date.unwrap();
            assert_eq!(expiry.year() - c.date_of_birth.year(), 14, "{c:?}");
        }
    }
    // Some of the dead are still on a household register: the death bundle has work to do.
    assert!(
        b.citizens
            .iter()
            .any(|c| !alive(c) && c.household.is_some()),
        "deceased not yet struck off"
    );
    // Nearly everyone born by 1990 held a 9-digit CMND, numbered by the issuing province's
    // prefix (Hà Tĩnh's 18, Thanh Hóa's 17, Hồ Chí Minh City's 02).
    let born_by_1990: Vec<_> = b
        .citizens
        .iter()
        .filter(|c| c.date_of_birth.year() <= 1990)
        .collect();
    let with_old = born_by_1990
        .iter()
        .filter(|c| c.old_id_number.is_some())
        .count() as f64
        / born_by_1990.len() as f64;
    assert!(with_old > 0.9, "born by 1990 with an old ID: {with_old}");
    // The first number came from the province of birth; some hold several (a card lost and
    // issued again, a move to another province).
    for c in &b.citizens {
        let first = c
            .previous_old_id_numbers
            .first()
            .or(c.old_id_number.as_ref());
        let (Some(old), Some(prefix)) = (
            first,
            mock_csdl::generator::cmnd_prefix(c.place_of_birth.province_code()),
        ) else {
            continue;
        };
        assert_eq!(&old.as_str()[..2], format!("{prefix:02}"), "{c:?}");
        assert!(c.previous_old_id_numbers.is_empty() || c.old_id_number.is_some());
    }
    let several = share(&|c| !c.previous_old_id_numbers.is_empty());
    assert!(
        (0.02..0.12).contains(&several),
        "several old numbers: {several}"
    );
    assert_eq!(mock_csdl::generator::cmnd_prefix(42), Some(18));
    assert_eq!(mock_csdl::generator::cmnd_prefix(38), Some(17));
    assert_eq!(mock_csdl::generator::cmnd_prefix(79), Some(2));
    // Where people are from: provinces by their 2019 census population.
    let born_in = |p: u16| share(&|c| c.place_of_birth.province_code() == p);
    let (hcmc, hanoi) = (born_in(79), born_in(1));
    assert!((0.06..0.13).contains(&hcmc), "Hồ Chí Minh City: {hcmc}");
    assert!((0.05..0.12).contains(&hanoi), "Hà Nội: {hanoi}");
    // Ethnic groups and names by province: Hà Tĩnh is nearly all Kinh; the H'Mông of the
    // northern mountains (about a third there, 1.5% nationally) carry H'Mông names, the Khmer of
    // Trà Vinh and Sóc Trăng (about 30% there, 1.4% nationally) Khmer names. Families come in
    // clusters, so the bands are wide.
    let of_province = |p: u16| -> Vec<&CitizenRecord> {
        b.citizens
            .iter()
            .filter(|c| c.place_of_birth.province_code() == p)
            .collect()
    };
    let ha_tinh = of_province(42);
    let non_kinh =
        ha_tinh.iter().filter(|c| c.ethnicity != "Kinh").count() as f64 / ha_tinh.len() as f64;
    assert!(non_kinh < 0.03, "non-Kinh born in Hà Tĩnh: {non_kinh}");
    let northern: Vec<_> = [2, 10, 11, 12].into_iter().flat_map(of_province).collect();
    let hmong: Vec<_> = northern
        .iter()
        .filter(|c| c.ethnicity == "H'Mông")
        .collect();
    assert!(
        hmong.len() * 10 > northern.len(),
        "H'Mông in the northern mountains: {} of {}: {:?}",
        hmong.len(),
        northern.len(),
        northern
            .iter()
            .take(20)
            .map(|c| (&c.ethnicity, &c.full_name))
            .collect::<Vec<_>>()
    );
    let hmong_families = [
        "Giàng", "Vàng", "Thào", "Sùng", "Lầu", "Hầu", "Mùa", "Vừ", "Cứ", "Hạng", "Lý",
    ];
    for c in &hmong {
        let family = c.full_name.split(' ').next().unwrap();
        assert!(hmong_families.contains(&family), "{}", c.full_name);
    }
    let khmer_families = ["Thạch", "Sơn", "Danh", "Kim", "Lâm", "Trà", "Chau"];
    let mekong: Vec<_> = [84, 94].into_iter().flat_map(of_province).collect();
    let khmer: Vec<_> = mekong.iter().filter(|c| c.ethnicity == "Khmer").collect();
    assert!(
        khmer.len() * 10 > mekong.len(),
        "Khmer in Trà Vinh and Sóc Trăng"
    );
    assert!(
        khmer
            .iter()
            .all(|c| { khmer_families.contains(&c.full_name.split(' ').next().unwrap()) })
    );
    // Older registers' 01/01 placeholder birth dates.
    let old_births: Vec<_> = b
        .citizens
        .iter()
        .filter(|c| c.date_of_birth.year() < 1975)
        .collect();
    let placeholders = old_births
        .iter()
        .filter(|c| c.date_of_birth.to_parts().1 == 1 && c.date_of_birth.to_parts().2 == 1)
        .count() as f64
        / old_births.len() as f64;
    assert!(placeholders > 0.03, "01/01 placeholders: {placeholders}");
    // Diacritics everywhere: most names carry at least one non-ASCII letter.
    assert!(share(&|c| !c.full_name.is_ascii()) > 0.9);
}

/// The shares of the 2019 census (and the years since), each within a band: a store of 60,000
/// in family clusters comes out within a point or two.
#[test]
fn the_demography_is_the_census_s() {
    let b = generate(2025, 60_000, None);
    let living: Vec<&CitizenRecord> = b
        .citizens
        .iter()
        .filter(|c| c.life_status == LifeStatus::Alive)
        .collect();
    let age = |c: &CitizenRecord| c.date_of_birth.age_on(WORLD_DATE);
    let share_of = |group: &[&&CitizenRecord], pred: &dyn Fn(&CitizenRecord) -> bool| {
        group.iter().filter(|c| pred(c)).count() as f64 / group.len() as f64
    };
    let everyone: Vec<&&CitizenRecord> = living.iter().collect();
    let band = |lo: i32, hi: i32| share_of(&everyone, &|c| (lo..hi).contains(&age(c)));
    let mut report = Vec::new();
    let mut check = |what: &str, value: f64, range: std::ops::Range<f64>| {
        report.push(format!("{what}: {value:.3} (band {range:?})"));
        range.contains(&value)
    };
    let mut ok = true;
    // Age pyramid (2019 census: 24.3% under 15, 68.0% 15–64, 7.7% 65 and over).
    ok &= check("ages 0-14", band(0, 15), 0.22..0.265);
    ok &= check("ages 15-64", band(15, 65), 0.65..0.71);
    ok &= check("ages 65+", band(65, 200), 0.065..0.10);
    // Births in the last year, per thousand living (13.5–16‰ since 2019).
    let world = WORLD_DATE.days_since_epoch();
    let births = share_of(&everyone, &|c| {
        c.date_of_birth.is_full() && world - c.date_of_birth.days_since_epoch() < 365
    }) * 1000.0;
    ok &= check("births per 1000", births, 12.0..17.0);
    // Household size (3.5 at the 2019 census).
    let size = b.households.iter().map(|h| h.members.len()).sum::<usize>() as f64
        / b.households.len() as f64;
    ok &= check("persons per household", size, 3.3..3.8);
    let alone = b.households.iter().filter(|h| h.members.len() == 1).count() as f64
        / b.households.len() as f64;
    ok &= check("households of one", alone, 0.04..0.20);
    // Marital status of those 15 and over (2019: 22.6% never married, 69.2% married, 6.3%
    // widowed, 1.7% divorced or separated). Widowhood is low here: a spouse who died before the
    // database was built is not drawn.
    let adults: Vec<&&CitizenRecord> = living.iter().filter(|c| age(c) >= 15).collect();
    let status = |s: MaritalStatus| share_of(&adults, &|c| c.marital_status == s);
    ok &= check("never married", status(MaritalStatus::Single), 0.18..0.28);
    ok &= check("married", status(MaritalStatus::Married), 0.66..0.78);
    ok &= check("divorced", status(MaritalStatus::Divorced), 0.01..0.03);
    ok &= check("widowed", status(MaritalStatus::Widowed), 0.01..0.08);
    // A divorced citizen has no spouse on record.
    assert!(
        living
            .iter()
            .filter(|c| c.marital_status == MaritalStatus::Divorced)
            .all(|c| c.spouse.is_none())
    );
    // Phone ownership falls with age.
    let phones = |lo: i32, hi: i32| {
        let group: Vec<&&CitizenRecord> = living
            .iter()
            .filter(|c| (lo..hi).contains(&age(c)))
            .collect();
        share_of(&group, &|c| c.phone.is_some())
    };
    ok &= check("phone 16-59", phones(16, 60), 0.82..0.94);
    ok &= check("phone 60-69", phones(60, 70), 0.6..0.8);
    ok &= check("phone 70-79", phones(70, 80), 0.35..0.55);
    ok &= check("phone 80+", phones(80, 200), 0.1..0.3);
    println!("{}", report.join("\n"));
    assert!(ok, "outside the census bands:\n{}", report.join("\n"));
}

#[test]
fn a_province_store_is_mostly_that_province() {
    let b = generate(1, 5000, Some(42));
    let local = b
        .citizens
        .iter()
        .filter(|c| c.personal_id.province_code() == 42)
        .count() as f64
        / 5000.0;
    assert!(local > 0.75, "share registered in Hà Tĩnh: {local}");
    assert!(
        Generator::new(Spec {
            seed: 1,
            citizens: 10,
            province: Some(3)
        })
        .is_err()
    );
}

#[test]
fn records_survive_the_wire_both_ways() {
    let b = generate(77, 5000, None);
    let personas = mock_csdl::personas::batch();
    for c in b.citizens.iter().chain(&personas.citizens) {
        let wire = convert::citizen_to_pb(c);
        let back = convert::citizen_from_pb(&wire).unwrap();
        assert_eq!(&back, c);
    }
}

#[test]
fn personas_are_in_every_store_whatever_the_size_and_seed() {
    for (seed, size) in [(1, 0), (2, 1), (3, 500)] {
        let store = Store::temporary().unwrap();
        let meta = store
            .generate(
                Spec {
                    seed,
                    citizens: size,
                    province: None,
                },
                false,
                |_| {},
            )
            .unwrap();
        assert_eq!(meta.citizens, size + PERSONAS.len() as u64);
        for p in PERSONAS {
            let id = PersonalId::parse(p.personal_id).unwrap();
            let r = store.citizen(&id).unwrap().expect("persona present");
            assert_eq!(r.full_name, p.full_name);
            // Every number the persona held finds them, the superseded ones too.
            for old in r.old_id_number.iter().chain(&r.previous_old_id_numbers) {
                let by_old = store.citizen_by_old_id(old).unwrap().unwrap();
                assert_eq!(by_old.personal_id, id);
            }
            assert_eq!(
                r.old_id_number.as_ref().map(|o| o.as_str()),
                p.old_id_number
            );
        }
    }
}

#[test]
fn the_store_round_trips_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("csdl.sled");
    let spec = Spec {
        seed: 9,
        citizens: 2000,
        province: None,
    };
    let expected = generate(9, 2000, None);
    {
        let store = Store::open(&path).unwrap();
        assert!(matches!(
            store.meta(),
            Err(mock_csdl::StoreError::NotGenerated)
        ));
        let mut last = 0;
        store.generate(spec, false, |n| last = n).unwrap();
        assert_eq!(last, 2000);
        let again = store.generate(spec, false, |_| {});
        assert!(matches!(again, Err(mock_csdl::StoreError::NotEmpty { .. })));
    }
    // Reopen from disk.
    let store = Store::open(&path).unwrap();
    let meta = store.meta().unwrap();
    assert_eq!((meta.seed, meta.generated), (9, 2000));
    for c in &expected.citizens {
        assert_eq!(store.citizen(&c.personal_id).unwrap().as_ref(), Some(c));
        if let Some(old) = &c.old_id_number {
            assert_eq!(
                store.citizen_by_old_id(old).unwrap().map(|r| r.personal_id),
                Some(c.personal_id.clone())
            );
        }
    }
    for h in &expected.households {
        assert_eq!(store.household(&h.id).unwrap().as_ref(), Some(h));
    }
    let missing = PersonalId::parse("001099000000").unwrap();
    assert_eq!(store.citizen(&missing).unwrap(), None);
    assert_eq!(
        store.citizens().count() as u64,
        2000 + PERSONAS.len() as u64
    );
}

/// FNV-1a over the encoded records: a fingerprint that does not depend on the Rust release.
fn fingerprint(batch: &Batch) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in &batch.citizens {
        for b in postcard::to_stdvec(c).unwrap() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[test]
fn the_generated_population_is_pinned() {
    // A change to this number means every store generated with the same seed changes: testers
    // relying on a seed would see other citizens. Change it only on purpose, and say so.
    assert_eq!(
        fingerprint(&generate(1, 2000, None)),
        7_990_847_779_349_825_505
    );
}
