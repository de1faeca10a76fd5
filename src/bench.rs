//! Throughput and memory benchmark: networks scored per second on random
//! architectures, and the process's peak resident memory.

use crate::run::{score_many, ScoreCache, Setting, Workers};
use crate::shard::Shard;
use anyhow::Result;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Benchmark figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Space.
    pub space: String,
    /// Where the networks ran (`cpu`, `cuda:0`, ...).
    pub device: String,
    /// Networks scored.
    pub networks: usize,
    /// Worker threads.
    pub jobs: usize,
    /// Memory budget the workers share (MB; 0: none).
    pub memory_budget_mb: u64,
    /// Image batch size.
    pub batch: i64,
    /// Input height and width.
    pub resolution: [i64; 2],
    /// Wall seconds.
    pub seconds: f64,
    /// Networks per second.
    pub nets_per_second: f64,
    /// Mean wall milliseconds per network on one worker.
    pub ms_per_network: f64,
    /// Peak resident memory of the process (MB).
    pub peak_rss_mb: f64,
    /// CPU seconds (user + system) the process spent while scoring.
    pub cpu_seconds: f64,
    /// Share of the workers' cores kept busy: CPU seconds over wall
    /// seconds times `jobs` (1.0: every worker computing all the time;
    /// below: waiting on the memory gate, on each other or on I/O).
    pub cpu_busy: f64,
    /// Mean milliseconds per network of each proxy (one worker).
    pub ms_per_proxy: std::collections::BTreeMap<String, f64>,
    /// The shard benchmarked (`K/N`), when one (see [`crate::shard`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// CPU seconds (user + system) this process has used so far, 0 if unknown
/// (`getrusage`; a few lines, no crate needed).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is handed.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Peak resident set size of this process in MB (`VmHWM`), 0 if unknown.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Scores `networks` random architectures (drawn with `seed`), or the given
/// `indices`, on `workers`; with a `shard`, only its share of them.
pub fn run(
    s: &Setting,
    networks: usize,
    indices: &[usize],
    workers: Workers,
    shard: Option<Shard>,
    quiet: bool,
) -> Result<BenchReport> {
    let idx = if indices.is_empty() {
        let n = networks.min(s.space.len());
        sample(&mut ChaCha8Rng::seed_from_u64(s.seed), s.space.len(), n).into_vec()
    } else {
        indices.to_vec()
    };
    let total = idx.len();
    let idx = match shard {
        Some(k) => k.select(&idx),
        None => idx,
    };
    if let (Some(k), true) = (shard, idx.is_empty()) {
        anyhow::bail!(
            "shard {}/{} of {total} network(s) is empty: nothing to measure (use at most {total} shards, or more --networks)",
            k.k,
            k.n
        );
    }
    let n = idx.len();
    let mut cache = ScoreCache::in_memory();
    let cpu0 = cpu_seconds();
    let (records, secs) = score_many(s, &idx, workers, &mut cache, quiet)?;
    let cpu = cpu_seconds() - cpu0;
    let count = records.len().max(1) as f64;
    let per_net = records.iter().map(|r| r.seconds(&s.selection)).sum::<f64>() / count;
    let ms_per_proxy = s
        .selection
        .proxies
        .iter()
        .map(|p| {
            let col = p.columns().seconds;
            (p.name().to_string(), records.iter().filter_map(|r| r.get(&col)).sum::<f64>() / count * 1e3)
        })
        .collect();
    let shape = s.input_shape();
    Ok(BenchReport {
        space: s.space.name().into(),
        device: crate::device::name(s.device),
        networks: n,
        jobs: workers.jobs,
        memory_budget_mb: workers.memory_budget_mb,
        batch: s.batch as i64,
        resolution: [shape.get(2).copied().unwrap_or(0), shape.get(3).copied().unwrap_or(0)],
        seconds: secs,
        nets_per_second: n as f64 / secs,
        ms_per_network: per_net * 1e3,
        peak_rss_mb: peak_rss_mb(),
        cpu_seconds: cpu,
        cpu_busy: cpu / (secs * workers.jobs.max(1) as f64),
        ms_per_proxy,
        shard: shard.map(|k| k.to_string()),
    })
}
