//! What provincial systems actually hold about citizens: declarations drawn from records, with
//! the differences the real exchange meets (the 43% of lookups that did not match, up to October
//! 2024). A declaration carries the values a one-stop system would send to `VerifyCitizen` /
//! `VerifyBatch`, and the kind of difference it was given, so a verification run can be broken
//! down by kind.
//!
//! Two families of kinds:
//! - **differences** verification must flag (never MATCH): text in a legacy font encoding, a
//!   name without diacritics, in another order or spelt another way ("Quí" for "Quý"), a stale
//!   phone number, a spouse not updated after a divorce or a death, a father not updated after
//!   a recognition or a correction, a 9-digit number a later one replaced;
//! - **variations** verification must see through (MATCH, with the normalisation named): a birth
//!   date written dd-mm-yyyy, dd.mm.yyyy or as the card QR's ddmmyyyy, the old tone placement
//!   ("Thuỳ" for "Thùy", "hoà" for "hòa"), the permanent address in the pre-2025 units
//!   (commune, district, province) the record's 2025 commune was made from, the citizen named
//!   by their 9-digit number instead of the personal ID (a system that holds only the CMND).
//!
//! Seeded: the same seed, rates and records give the same declarations.

use lienthong_domain::{CitizenField, CitizenRecord, PartialDate, Share};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unicode_normalization::UnicodeNormalization;

/// The kind of difference a declaration carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The record's values, as they are.
    Exact,
    LegacyEncoding,
    MissingDiacritics,
    NameOrder,
    SpellingVariant,
    StalePhone,
    SpouseNotUpdated,
    SupersededNumber,
    ParentNotUpdated,
    DateFormat,
    TonePlacement,
    Pre2025Address,
    OldNumberOnly,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Exact,
        Kind::LegacyEncoding,
        Kind::MissingDiacritics,
        Kind::NameOrder,
        Kind::SpellingVariant,
        Kind::StalePhone,
        Kind::SpouseNotUpdated,
        Kind::SupersededNumber,
        Kind::ParentNotUpdated,
        Kind::DateFormat,
        Kind::TonePlacement,
        Kind::Pre2025Address,
        Kind::OldNumberOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::LegacyEncoding => "legacy-encoding",
            Kind::MissingDiacritics => "missing-diacritics",
            Kind::NameOrder => "name-order",
            Kind::SpellingVariant => "spelling-variant",
            Kind::StalePhone => "stale-phone",
            Kind::SpouseNotUpdated => "spouse-not-updated",
            Kind::SupersededNumber => "superseded-number",
            Kind::ParentNotUpdated => "parent-not-updated",
            Kind::DateFormat => "date-format",
            Kind::TonePlacement => "tone-placement",
            Kind::Pre2025Address => "pre-2025-address",
            Kind::OldNumberOnly => "old-number-only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether verification must flag it (a difference), rather than see through it.
    pub fn must_be_flagged(self) -> bool {
        !matches!(
            self,
            Kind::Exact
                | Kind::DateFormat
                | Kind::TonePlacement
                | Kind::Pre2025Address
                | Kind::OldNumberOnly
        )
    }
}

/// The differences, with their relative weights among the declarations that differ.
const DIFFERENCES: [(Kind, u32); 8] = [
    (Kind::MissingDiacritics, 30),
    (Kind::StalePhone, 25),
    (Kind::NameOrder, 10),
    (Kind::SpellingVariant, 10),
    (Kind::LegacyEncoding, 15),
    (Kind::SpouseNotUpdated, 10),
    (Kind::SupersededNumber, 5),
    (Kind::ParentNotUpdated, 5),
];

/// One declaration: the citizen, the declared values, and the kind of difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub personal_id: String,
    /// The 9-digit number the declaration names the citizen by instead of the personal ID (a
    /// system that holds only the CMND); None when it names the personal ID.
    pub old_id_subject: Option<String>,
    pub claims: Vec<(CitizenField, String)>,
    pub kind: Kind,
}

/// How many declarations differ, and how many carry a variation verification must see through.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Share of declarations with a difference verification must flag (0.43 in the real
    /// exchange).
    pub rate: f64,
    /// Share of declarations with a variation verification must see through.
    pub variations: f64,
    pub seed: u64,
}

/// Draws declarations from records.
pub struct Declarations {
    rng: ChaCha8Rng,
    mix: Mix,
}

impl Declarations {
    /// Rates outside 0..=1, or summing over 1, are refused with the reason.
    pub fn new(mix: Mix) -> Result<Self, String> {
        let ok = |r: f64| (0.0..=1.0).contains(&r);
        if !ok(mix.rate) || !ok(mix.variations) || mix.rate + mix.variations > 1.0 {
            return Err(format!(
                "--rate {} and --variations {} must each be between 0 and 1, and together at most 1",
                mix.rate, mix.variations
            ));
        }
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(mix.seed),
            mix,
        })
    }

    /// A declaration of a living citizen's record (the dead are not declared).
    pub fn declare(&mut self, record: &CitizenRecord) -> Declaration {
        let x: f64 = self.rng.random();
        let wanted = if x < self.mix.rate {
            self.difference()
        } else if x < self.mix.rate + self.mix.variations {
            match self.rng.random_range(0..4) {
                0 => Kind::DateFormat,
                1 => Kind::TonePlacement,
                2 => Kind::Pre2025Address,
                _ => Kind::OldNumberOnly,
            }
        } else {
            Kind::Exact
        };
        // A kind the record cannot show (no phone to be stale, no tone to move) becomes another
        // of its family, so the shares hold.
        let mut kind = wanted;
        for _ in 0..8 {
            if let Some(d) = self.apply(record, kind) {
                return d;
            }
            kind = if wanted.must_be_flagged() {
                self.difference()
            } else if matches!(
                kind,
                Kind::TonePlacement | Kind::Pre2025Address | Kind::OldNumberOnly
            ) {
                Kind::DateFormat
            } else {
                Kind::Exact
            };
        }
        self.apply(
            record,
            if wanted.must_be_flagged() {
                Kind::MissingDiacritics
            } else {
                Kind::Exact
            },
        )
        .unwrap_or_else(|| exact(record))
    }

    fn difference(&mut self) -> Kind {
        let total: u32 = DIFFERENCES.iter().map(|(_, w)| w).sum();
        let mut x = self.rng.random_range(0..total);
        for (kind, w) in DIFFERENCES {
            if x < w {
                return kind;
            }
            x -= w;
        }
        Kind::MissingDiacritics
    }

    /// The declaration with `kind` applied, or None when the record cannot show it.
    fn apply(&mut self, record: &CitizenRecord, kind: Kind) -> Option<Declaration> {
        let mut d = exact(record);
        d.kind = kind;
        let set = |d: &mut Declaration, field: CitizenField, value: String| {
            if let Some(c) = d.claims.iter_mut().find(|(f, _)| *f == field) {
                c.1 = value;
            } else {
                d.claims.push((field, value));
            }
        };
        let name = &record.full_name;
        match kind {
            Kind::Exact => {}
            Kind::LegacyEncoding => {
                let vni = to_vni(name);
                (vni != *name).then_some(())?;
                set(&mut d, CitizenField::FullName, vni);
            }
            Kind::MissingDiacritics => {
                let folded = without_diacritics(name);
                (folded != *name).then_some(())?;
                set(&mut d, CitizenField::FullName, folded);
            }
            Kind::NameOrder => {
                // The given name first, as some systems sort it ("Thư Trần Thị Minh").
                let (rest, given) = name.rsplit_once(' ')?;
                set(&mut d, CitizenField::FullName, format!("{given} {rest}"));
            }
            Kind::SpellingVariant => {
                set(&mut d, CitizenField::FullName, y_to_i(name)?);
            }
            Kind::StalePhone => {
                let phone = record.phone.as_ref()?;
                let mut stale = phone.clone();
                let last = stale.pop()?;
                let digit = last.to_digit(10)?;
                stale.push(char::from_digit(
                    (digit + 1 + self.rng.random_range(0..8)) % 10,
                    10,
                )?);
                set(&mut d, CitizenField::Phone, stale);
            }
            Kind::SpouseNotUpdated => {
                // A divorce, a death or a remarriage the system never heard of: it names a
                // spouse the record does not have.
                let candidates = match record.gender {
                    lienthong_domain::Gender::Male => ["Nguyễn Thị Hương", "Trần Thị Lan"],
                    lienthong_domain::Gender::Female => ["Nguyễn Văn Hùng", "Trần Văn Nam"],
                };
                let on_record = record.spouse.as_ref().map(|s| s.full_name.as_str());
                let declared = candidates.into_iter().find(|c| Some(*c) != on_record)?;
                set(&mut d, CitizenField::Spouse, declared.to_owned());
            }
            Kind::SupersededNumber => {
                // The system still holds a number a later one replaced; half the time it is all
                // the system holds, so it names the citizen by it too.
                let first = record.previous_old_id_numbers.first()?;
                set(&mut d, CitizenField::OldIdNumber, first.as_str().to_owned());
                if self.rng.random_bool(0.5) {
                    d.old_id_subject = Some(first.as_str().to_owned());
                }
            }
            Kind::OldNumberOnly => {
                // The system holds the 9-digit number only, and names the citizen by it.
                let old = record.old_id_number.as_ref()?;
                d.old_id_subject = Some(old.as_str().to_owned());
            }
            Kind::ParentNotUpdated => {
                // A father recognised or a name corrected after the system took the record:
                // it names another father.
                let on_record = record.father.as_ref()?.full_name.as_str();
                let family = on_record.split(' ').next()?;
                let declared = ["Văn Bình", "Văn Thành", "Đức Minh"]
                    .into_iter()
                    .map(|rest| format!("{family} {rest}"))
                    .find(|c| c != on_record)?;
                set(&mut d, CitizenField::Father, declared);
            }
            Kind::DateFormat => {
                let PartialDate::Full(y, m, day) = record.date_of_birth else {
                    return None;
                };
                let text = match self.rng.random_range(0..3) {
                    0 => format!("{day:02}-{m:02}-{y:04}"),
                    1 => format!("{day:02}.{m:02}.{y:04}"),
                    _ => format!("{day:02}{m:02}{y:04}"),
                };
                set(&mut d, CitizenField::DateOfBirth, text);
            }
            Kind::TonePlacement => {
                set(&mut d, CitizenField::FullName, old_tone_placement(name)?);
            }
            Kind::Pre2025Address => {
                // The permanent address as the system took it before 1 July 2025: the commune,
                // district and province the 2025 commune was made from.
                let address = &record.permanent_address;
                let former: Vec<_> = lienthong_domain::former_communes()
                    .of_ward(address.ward)
                    .collect();
                let whole: Vec<_> = former
                    .iter()
                    .filter(|c| c.share_in(address.ward) == Some(Share::Whole))
                    .collect();
                let pool = if whole.is_empty() {
                    former.iter().collect()
                } else {
                    whole
                };
                let commune = pool.get(self.rng.random_range(0..pool.len().max(1)))?;
                let text = if address.detail.is_empty() {
                    commune.formatted()
                } else {
                    format!("{}, {}", address.detail, commune.formatted())
                };
                set(&mut d, CitizenField::PermanentAddress, text);
            }
        }
        Some(d)
    }
}

/// The record's own values: name, birth date, and the phone and spouse when on record.
fn exact(record: &CitizenRecord) -> Declaration {
    let mut claims = vec![
        (CitizenField::FullName, record.full_name.clone()),
        (CitizenField::DateOfBirth, record.date_of_birth.to_string()),
    ];
    if let Some(phone) = &record.phone {
        claims.push((CitizenField::Phone, phone.clone()));
    }
    if let Some(spouse) = &record.spouse {
        claims.push((CitizenField::Spouse, spouse.full_name.clone()));
    }
    if let Some(old) = &record.old_id_number {
        claims.push((CitizenField::OldIdNumber, old.as_str().to_owned()));
    }
    Declaration {
        personal_id: record.personal_id.as_str().to_owned(),
        old_id_subject: None,
        claims,
        kind: Kind::Exact,
    }
}

/// The text without its diacritics (đ as d), as systems without Vietnamese input stored it.
pub fn without_diacritics(text: &str) -> String {
    text.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

/// "Quý" → "Quí", "Mỹ" → "Mĩ", "Kỳ" → "Kì": the y/i spelling variants of a final syllable vowel.
fn y_to_i(name: &str) -> Option<String> {
    const PAIRS: [(char, char); 5] = [('ý', 'í'), ('ỳ', 'ì'), ('ỷ', 'ỉ'), ('ỹ', 'ĩ'), ('ỵ', 'ị')];
    let words: Vec<&str> = name.split(' ').collect();
    for (i, w) in words.iter().enumerate().rev() {
        let last = w.chars().last()?;
        // "uý" in "Quý" is a vowel y; "Thuý" (Thúy) is not a y/i variant.
        if let Some((_, i_form)) = PAIRS.iter().find(|(y, _)| *y == last)
            && (w.starts_with("Qu") || w.chars().count() == 2)
        {
            let mut changed: Vec<String> = words.iter().map(|s| (*s).to_owned()).collect();
            let stem: String = w.chars().take(w.chars().count() - 1).collect();
            changed[i] = format!("{stem}{i_form}");
            return Some(changed.join(" "));
        }
    }
    None
}

/// The old tone placement: the tone on the first vowel of "oa", "oe", "uy" ("hoà" for "hòa",
/// "Thuỳ" for "Thùy"), which verification treats as the same name.
fn old_tone_placement(name: &str) -> Option<String> {
    // (new, old) for each tone.
    const MOVES: [(&str, &str); 15] = [
        ("òa", "oà"),
        ("óa", "oá"),
        ("ỏa", "oả"),
        ("õa", "oã"),
        ("ọa", "oạ"),
        ("òe", "oè"),
        ("óe", "oé"),
        ("ỏe", "oẻ"),
        ("õe", "oẽ"),
        ("ọe", "oẹ"),
        ("ùy", "uỳ"),
        ("úy", "uý"),
        ("ủy", "uỷ"),
        ("ũy", "uỹ"),
        ("ụy", "uỵ"),
    ];
    MOVES
        .iter()
        .find(|(new, _)| name.contains(new))
        .map(|(new, old)| name.replacen(new, old, 1))
}

/// The text as VNI-Windows stored it, read back as Windows-1252: a base letter, then the
/// Latin-1 characters the VNI fonts draw as its marks ("Trần" → "Traàn").
pub fn to_vni(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        let upper = c != lower;
        let vni = vni_of(lower);
        match vni {
            Some(s) if upper => out.extend(s.chars().flat_map(char::to_uppercase)),
            Some(s) => out.push_str(&s),
            None => out.push(c),
        }
    }
    out
}

/// One lower-case Vietnamese letter in VNI-Windows; None for letters VNI writes as they are.
fn vni_of(c: char) -> Option<String> {
    // Tones after a plain vowel, after â/ê/ô, and after ă.
    const PLAIN: [char; 5] = ['ø', 'ù', 'û', 'õ', 'ï'];
    const HAT: [char; 5] = ['à', 'á', 'å', 'ã', 'ä'];
    const BREVE: [char; 5] = ['è', 'é', 'ú', 'ü', 'ë'];
    match c {
        'đ' => return Some("ñ".into()),
        'ơ' => return Some("ô".into()),
        'ư' => return Some("ö".into()),
        'â' | 'ê' | 'ô' => return Some(format!("{}â", base_of(c))),
        'ă' => return Some("aê".into()),
        // i and y carry their tones on single Latin-1 letters.
        'ì' => return Some("ì".into()),
        'í' => return Some("í".into()),
        'ỉ' => return Some("æ".into()),
        'ĩ' => return Some("ó".into()),
        'ị' => return Some("ò".into()),
        'ỵ' => return Some("î".into()),
        _ => {}
    }
    let decomposed: Vec<char> = c.to_string().nfd().collect();
    let (&base, marks) = decomposed.split_first()?;
    if marks.is_empty() {
        return None;
    }
    let tone = marks.iter().find_map(|m| match m {
        '\u{300}' => Some(0),
        '\u{301}' => Some(1),
        '\u{309}' => Some(2),
        '\u{303}' => Some(3),
        '\u{323}' => Some(4),
        _ => None,
    });
    let hat = marks.contains(&'\u{302}');
    let breve = marks.contains(&'\u{306}');
    let horn = marks.contains(&'\u{31b}');
    let stem = match (base, horn) {
        ('o', true) => "ô".to_owned(),
        ('u', true) => "ö".to_owned(),
        _ => base.to_string(),
    };
    let tone = tone?;
    Some(if hat {
        format!("{stem}{}", HAT[tone])
    } else if breve {
        format!("{stem}{}", BREVE[tone])
    } else {
        format!("{stem}{}", PLAIN[tone])
    })
}

fn base_of(c: char) -> char {
    c.to_string().nfd().next().unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_text_is_what_the_verifier_recognises() {
        assert_eq!(to_vni("Trần Thị Minh Thư"), "Traàn Thò Minh Thö");
        assert_eq!(to_vni("Nguyễn Văn Hà"), "Nguyeãn Vaên Haø");
        assert_eq!(to_vni("Đặng"), "Ñaëng");
    }

    #[test]
    fn spelling_and_tone_variants() {
        assert_eq!(y_to_i("Nguyễn Văn Quý").as_deref(), Some("Nguyễn Văn Quí"));
        assert_eq!(y_to_i("Lê Thị Mỹ").as_deref(), Some("Lê Thị Mĩ"));
        assert_eq!(y_to_i("Nguyễn Thị Thúy"), None);
        assert_eq!(
            old_tone_placement("Nguyễn Thị Thùy Linh").as_deref(),
            Some("Nguyễn Thị Thuỳ Linh")
        );
        assert_eq!(without_diacritics("Đặng Quốc Việt"), "Dang Quoc Viet");
    }

    #[test]
    fn rates_are_bounded() {
        let mix = |rate, variations| Mix {
            rate,
            variations,
            seed: 1,
        };
        assert!(Declarations::new(mix(0.43, 0.1)).is_ok());
        assert!(Declarations::new(mix(1.2, 0.0)).is_err());
        assert!(Declarations::new(mix(0.7, 0.5)).is_err());
    }
}
