//! Jobs that must run on one node of a cluster at a time (the daily retention prune):
//! each node that wants to run a job's period appends a claim to `job_leases`, waits
//! `SETTLE`, and runs only when its claim is the earliest of that period. ClickHouse has no
//! compare-and-set, so the earliest claim is the agreement: a node that claims after the
//! winner decided sees the winner's claim and stands down; two claims in flight together
//! are both visible after the wait (inserts are synchronous on every shard) and both nodes
//! pick the same one. The assumption is clocks within `SETTLE` of each other; the jobs
//! guarded this way are idempotent, so a broken assumption costs double work, not data.

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{quote, ChError, ClickHouse};

/// How long a claim waits for competing claims before reading the outcome.
pub const SETTLE: Duration = Duration::from_secs(2);

/// This process's name in `job_leases.holder`: the host, the process and a random part,
/// so two nodes on one machine differ as well.
pub fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

#[derive(Serialize)]
struct Claim<'a> {
    job: &'a str,
    holder: &'a str,
    at: i64,
}

/// Claims `job` (a name with its period, e.g. `retention:20425`) and returns whether this
/// node won it and should run it.
pub async fn claim(ch: &ClickHouse, job: &str) -> Result<bool, ChError> {
    let me = holder();
    let at = chrono::Utc::now().timestamp_micros();
    ch.insert(
        "job_leases",
        &[Claim {
            job,
            holder: me,
            at,
        }],
    )
    .await?;
    tokio::time::sleep(SETTLE).await;
    #[derive(Deserialize)]
    struct Winner {
        holder: String,
    }
    let winner: Winner = ch
        .row(&format!(
            "SELECT holder FROM {} WHERE job = {} ORDER BY at, holder LIMIT 1",
            ch.table("job_leases"),
            quote(job)
        ))
        .await?;
    Ok(winner.holder == me)
}
