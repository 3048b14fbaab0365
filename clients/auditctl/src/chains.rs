//! Every chain of the fleet's central store, verified with the checkpoint keys (not by trusting
//! the store's rows): for `auditctl verify --central` and the console's verification page.

use ed25519_dalek::VerifyingKey;
use lienthong_gateway::audit::central;

/// What verification found in one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The first bad record and what is wrong there.
    Bad {
        sequence: u64,
        problem: String,
    },
    /// Complete and verified to `head`; signed up to `signed_to` when a checkpoint covers any.
    Verified {
        head: u64,
        records: u64,
        checkpoints: u64,
        signed_to: Option<u64>,
    },
    Empty,
}

/// One chain's standing in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub chain_id: String,
    pub state: State,
    /// The first missing sequence and how many later records wait for it.
    pub gap: Option<(u64, u64)>,
    /// Items the store refused on arrival and kept aside.
    pub quarantined: u64,
}

pub async fn verify(
    url: &str,
    schema: &str,
    keys: Vec<VerifyingKey>,
) -> Result<Vec<Chain>, String> {
    let settings = lienthong_gateway::config::Central {
        url: url.to_owned(),
        schema: schema.to_owned(),
        batch: 1,
        max_retry: std::time::Duration::from_secs(1),
    };
    let pool = central::lazy_pool(&settings).map_err(|e| format!("--central: {e}"))?;
    let found = central::chains(&pool)
        .await
        .map_err(|e| format!("cannot read the central store (schema {schema}): {e}"))?;
    let mut out = Vec::new();
    for chain in found {
        let report =
            central::verify_chain(&pool, &chain.chain_id, chain.verified_next, keys.clone())
                .await
                .map_err(|e| format!("cannot read chain {}: {e}", chain.chain_id))?;
        let state = match (&report.first_bad, report.head) {
            (Some((sequence, problem)), _) => State::Bad {
                sequence: *sequence,
                problem: problem.clone(),
            },
            (None, Some((head, _))) => State::Verified {
                head,
                records: report.records_checked,
                checkpoints: report.checkpoints_checked,
                signed_to: (report.uncovered <= head).then(|| head - report.uncovered),
            },
            (None, None) => State::Empty,
        };
        out.push(Chain {
            gap: (chain.waiting_past_gap > 0)
                .then_some((chain.verified_next, chain.waiting_past_gap)),
            quarantined: chain.quarantined,
            chain_id: chain.chain_id,
            state,
        });
    }
    pool.close().await;
    Ok(out)
}
