//! The mismatch layer: ten thousand declarations drawn from the store as provincial systems
//! hold them (`mock_csdl::declarations`, 43% with a difference verification must flag, 10% with
//! a variation it must see through) are verified through the gateway in VerifyBatch streams.
//! Each item's verdict agrees with its kind, and the flagged share is within two points of the
//! configured rate; the breakdown by kind is printed as the run's report.

use crate::helpers::*;
use lienthong_domain::LifeStatus;
use lienthong_proto::gateway::v1 as pb;
use mock_csdl::declarations::{Declaration, Declarations, Kind, Mix};
use mock_csdl::generator::Generator;
use std::collections::BTreeMap;

const DECLARATIONS: usize = 10_000;
const RATE: f64 = 0.43;

/// The living citizens of the environment's store (seed 7), as the generator made them.
fn living(citizens: u64) -> Vec<lienthong_domain::CitizenRecord> {
    Generator::new(mock_csdl::Spec {
        seed: 7,
        citizens,
        province: None,
    })
    .unwrap()
    .flat_map(|b| b.unwrap().citizens)
    .filter(|c| c.life_status == LifeStatus::Alive)
    .collect()
}

fn item(i: usize, d: &Declaration) -> pb::VerifyBatchRequest {
    pb::VerifyBatchRequest {
        context: i.is_multiple_of(5000).then(|| ctx("2.000488")).flatten(),
        item_id: format!("{i}:{}", d.kind.as_str()),
        personal_id: match d.old_id_subject {
            Some(_) => String::new(),
            None => d.personal_id.clone(),
        },
        old_id_number: d.old_id_subject.clone().unwrap_or_default(),
        claims: d
            .claims
            .iter()
            .map(|(field, value)| pb::Claim {
                field: field.as_str().into(),
                value: value.clone(),
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_declarations_are_flagged_at_the_configured_rate_kind_by_kind() {
    // The global, unit and officer rates are lifted: this is a bulk run, not a limits test.
    let env = spawn_env_of(
        10_800,
        &[
            ("LIMITS__PER_SECOND", "1000000"),
            ("LIMITS__BURST", "1000000"),
            (
                "UNITS__0__RATE",
                "{ per_second = 1000000, burst = 1000000 }",
            ),
            (
                "UNITS__0__OFFICER_RATE",
                "{ per_second = 1000000, burst = 1000000 }",
            ),
        ],
        |_| {},
    )
    .await;
    let records = living(10_800);
    assert!(records.len() >= DECLARATIONS, "{} living", records.len());
    let mut declarations = Declarations::new(Mix {
        rate: RATE,
        variations: 0.10,
        seed: 11,
    })
    .unwrap();
    let all: Vec<Declaration> = records[..DECLARATIONS]
        .iter()
        .map(|r| declarations.declare(r))
        .collect();

    let mut officer = env.officer("CB.H42.0002").await;
    // (declarations, flagged) by kind.
    let mut by_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (chunk_start, chunk) in all.chunks(5000).enumerate().map(|(n, c)| (n * 5000, c)) {
        let items: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(k, d)| item(chunk_start + k, d))
            .collect();
        let mut replies = officer
            .client
            .verify_batch(authed(&officer.token, tokio_stream::iter(items)))
            .await
            .unwrap()
            .into_inner();
        while let Some(reply) = replies.message().await.unwrap() {
            let (index, kind) = reply.item_id.split_once(':').unwrap();
            let kind = Kind::parse(kind).unwrap();
            let flagged = match reply.outcome.unwrap() {
                pb::verify_batch_response::Outcome::Result(r) => {
                    r.result != pb::OverallResult::Match as i32
                }
                pb::verify_batch_response::Outcome::Error(e) => {
                    panic!("item {index} refused: {} {}", e.reason, e.message)
                }
            };
            let entry = by_kind.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += usize::from(flagged);
            if flagged != kind.must_be_flagged() && wrong.len() < 10 {
                wrong.push(format!(
                    "{index} {kind:?}: {:?}",
                    all[index.parse::<usize>().unwrap()]
                ));
            }
        }
    }
    let (total, flagged) = by_kind
        .values()
        .fold((0, 0), |(t, f), (n, k)| (t + n, f + k));
    let mut report = format!(
        "{total} declarations, {flagged} flagged ({:.1}%)\n",
        100.0 * flagged as f64 / total as f64
    );
    for (kind, (n, k)) in &by_kind {
        report.push_str(&format!("  {:<20} {n:>6}  flagged {k:>6}\n", kind.as_str()));
    }
    eprintln!("{report}");
    assert_eq!(total, DECLARATIONS, "{report}");
    assert!(
        wrong.is_empty(),
        "verdicts against their kind:\n{}\n{report}",
        wrong.join("\n")
    );
    let share = flagged as f64 / total as f64;
    assert!((share - RATE).abs() < 0.02, "{report}");
    // Every kind was drawn.
    assert_eq!(by_kind.len(), Kind::ALL.len(), "{report}");
}
