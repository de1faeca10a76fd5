//! The worker pool: networks scored in parallel (one libtorch thread each)
//! under the memory gate, appended to the results folder as they finish.

use super::folder::ScoreCache;
use super::score::{score_index, Record};
use super::setting::Setting;
use crate::memory::MemoryGate;
use crate::progress::Progress;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// How networks are scored in parallel: worker threads (one libtorch thread
/// each) and the memory budget they share (see [`crate::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Workers {
    /// Networks scored at once, at most.
    pub jobs: usize,
    /// Working memory all workers' networks may hold at once (MB; 0: no limit).
    pub memory_budget_mb: u64,
}

/// Says once when the budget holds fewer networks than there are workers
/// (their estimated working memory, that of the first network to score), so
/// that workers would take turns (the proxies' per-input figures are upper
/// bounds measured at 32x32; they over-estimate large inputs).
fn warn_if_serialised(s: &Setting, index: usize, workers: Workers, cache: &ScoreCache) -> Result<()> {
    let budget = workers.memory_budget_mb.saturating_mul(1 << 20);
    if workers.jobs < 2 || budget == 0 {
        return Ok(());
    }
    let need = s.working_set(&s.space.arch(index)?, cache.get(index))?;
    let (mb, jobs) = (workers.memory_budget_mb, workers.jobs);
    if need > budget {
        eprintln!(
            "note: a network's estimated working memory ({} MB) exceeds --memory-budget {mb} MB: networks run one at a time; --memory-budget 0 (no limit) or a larger one lets {jobs} run at once",
            need >> 20,
        );
    } else if need > 0 && budget / need < jobs as u64 {
        eprintln!(
            "note: --memory-budget {mb} MB holds {} of the {jobs} workers at once (a network's estimated working memory: {} MB); a budget of {} MB, or 0 (no limit), lets all {jobs} run",
            budget / need,
            need >> 20,
            (need * jobs as u64).div_ceil(1 << 20),
        );
    }
    Ok(())
}

/// Runs `f`, turning a panic (libtorch's failures, such as an allocation it
/// could not make, are panics in tch) into an error with its first line, so
/// that the run stops with one line and keeps what it wrote, instead of
/// "a scoped thread panicked".
pub fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let why = crate::files::panic_message(payload.as_ref());
            if why.contains("can't allocate memory") || why.contains("out of memory") {
                anyhow::bail!("out of memory: {why} (a smaller --batch or --proxy-batch, or fewer --jobs, needs less)")
            }
            anyhow::bail!("{why}")
        }
    }
}

/// Scores `indices` (skipping those whose every proxy is in the cache) on
/// `workers`, appending each result as it finishes. Returns the records of
/// all `indices` and the wall seconds spent scoring.
pub fn score_many(
    s: &Setting,
    indices: &[usize],
    workers: Workers,
    cache: &mut ScoreCache,
    quiet: bool,
) -> Result<(Vec<Record>, f64)> {
    let mut todo: Vec<usize> =
        indices.iter().copied().filter(|i| !cache.get(*i).is_some_and(|r| r.has_all(&s.selection))).collect();
    todo.sort_unstable();
    todo.dedup();
    let t0 = Instant::now();
    if !todo.is_empty() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(workers.jobs.max(1)).build()?;
        let gate = MemoryGate::new(workers.memory_budget_mb.saturating_mul(1 << 20));
        if !quiet {
            warn_if_serialised(s, todo[0], workers, cache)?;
        }
        // what cannot fit in memory is refused before anything runs
        s.check_memory(&s.space.arch(todo[0])?, cache.get(todo[0]))?;
        let mut pb = Progress::new(todo.len() as u64, "scoring", quiet);
        let mut writer = cache.writer(&s.selection)?;
        let known: HashMap<usize, Record> =
            todo.iter().filter_map(|i| cache.get(*i).map(|r| (*i, r.clone()))).collect();
        let (tx, rx) = mpsc::channel::<Result<Record>>();
        let stop = AtomicBool::new(false);
        let outcome: Result<()> = std::thread::scope(|scope| {
            let (todo, stop_ref, gate, known) = (&todo, &stop, &gate, &known);
            scope.spawn(move || {
                pool.install(|| {
                    todo.par_iter().for_each_with(tx, |tx, &i| {
                        if !stop_ref.load(Ordering::Relaxed) {
                            let r = guarded(|| score_index(s, i, gate, known.get(&i)))
                                .with_context(|| format!("scoring index {i}"));
                            let _ = tx.send(r);
                        }
                    })
                })
            });
            let result = (|| {
                for r in rx {
                    cache.append(r?, &mut writer)?;
                    pb.inc();
                    if crate::progress::cancelled() {
                        anyhow::bail!("{}", crate::progress::CANCELLED_MESSAGE);
                    }
                }
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            result
        });
        pb.finish();
        outcome?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = indices.iter().filter_map(|i| cache.get(*i).cloned()).collect();
    Ok((out, secs))
}

#[cfg(test)]
mod tests {
    use super::guarded;

    #[test]
    fn a_panic_in_a_network_is_an_error_and_an_allocation_failure_says_what_to_lower() {
        let torch = "called `Result::unwrap()` on an `Err` value: Torch(\"DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes. Error code 12\\nException raised from ...\")";
        let e = guarded(|| -> anyhow::Result<()> { panic!("{torch}") }).unwrap_err().to_string();
        assert_eq!(
            e,
            "out of memory: DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes. Error code 12 (a smaller --batch or --proxy-batch, or fewer --jobs, needs less)"
        );
        let e = guarded(|| -> anyhow::Result<()> { panic!("shape mismatch\nmore") }).unwrap_err().to_string();
        assert_eq!(e, "shape mismatch");
        assert_eq!(guarded(|| Ok(3)).unwrap(), 3);
    }
}
