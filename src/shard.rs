//! Sharded runs: one scoring run split over N processes or machines (the
//! tasks of an array job), each scoring its share of the run's networks into
//! its own folder; [`crate::merge`] puts the shards back together.
//!
//! The assignment: the run's candidates (every network the command would
//! score: a correlation's sample, the union of a search's trial samples, a
//! benchmark's networks), sorted and without repeats; shard K of N takes
//! those at positions K, K+N, K+2N, ... Shards differ in size by one at most
//! and each takes networks from across the whole index range. Since every
//! network is built with its own seed (`seed * 1000000 + index`), a score
//! does not depend on the shard that computes it: merged shards equal the
//! unsharded run bit for bit.
//!
//! Shard K of N of a run whose results folder is `OUT` writes only inside
//! `OUT/shard-K-of-N/`: `run.json` (the run's settings and this shard's
//! record), `indices.txt` (its share) and `scores.csv`. A shard killed and
//! rerun resumes there like any run.

use crate::files::write_atomic;
use crate::run::{score_many, ScoreCache, Setting, Workers};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Shard `k` of `n` (`0 <= k < n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub k: usize,
    /// The number of shards.
    pub n: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// Parses `--shard K/N` or `--shard auto` (with `--shards N`), reading
    /// the array-job engine's variables through `env`:
    ///
    /// * Slurm array job: K = (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`)
    ///   / `SLURM_ARRAY_TASK_STEP`, N = `SLURM_ARRAY_TASK_COUNT`; with
    ///   `--shards N`, K = `SLURM_ARRAY_TASK_ID` (arrays numbered from 0, so
    ///   that one task resubmitted alone, `--array=2`, is still shard 2).
    /// * Kubernetes Indexed Job: K = `JOB_COMPLETION_INDEX`, N = `--shards`.
    pub fn parse(spec: &str, shards: Option<usize>, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        if spec != "auto" {
            if shards.is_some() {
                bail!("--shards goes with --shard auto (--shard K/N gives the number of shards itself)");
            }
            let bad = || anyhow::anyhow!("--shard '{spec}': expected K/N (shard K of N, from 0, e.g. 0/4) or auto");
            let (k, n) = spec.split_once('/').ok_or_else(bad)?;
            let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
            return Self::new(k, n).with_context(|| format!("--shard '{spec}'"));
        }
        if shards == Some(0) {
            bail!("--shards must be at least 1");
        }
        let num = |var: &str| -> Result<Option<usize>> {
            match env(var) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| anyhow::anyhow!("{var} is '{v}', not a number")),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            if let Some(n) = shards {
                return Self::new(id, n).with_context(|| {
                    format!(
                        "SLURM_ARRAY_TASK_ID is {id} with --shards {n}: number the array from 0 (--array=0-{})",
                        n - 1
                    )
                });
            }
            let n = num("SLURM_ARRAY_TASK_COUNT")?
                .context("SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: give --shards N")?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let off = id.checked_sub(min).filter(|o| o % step == 0).with_context(|| {
                format!("SLURM_ARRAY_TASK_ID {id} is not in the array's range from {min} by {step}: submit --array=0-{}, or give --shards N", n.saturating_sub(1))
            })?;
            return Self::new(off / step, n).with_context(|| {
                format!("SLURM_ARRAY_TASK_ID {id} of an array of {n} from {min}: submit a range, --array=0-{}, or give --shards N", n.saturating_sub(1))
            });
        }
        if let Some(k) = num("JOB_COMPLETION_INDEX")? {
            let n = shards.context(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards: give --shards N (the Job's completions)",
            )?;
            return Self::new(k, n).with_context(|| format!("JOB_COMPLETION_INDEX is {k} with --shards {n}"));
        }
        bail!(
            "--shard auto: no array-job index in the environment (SLURM_ARRAY_TASK_ID of a Slurm array job, JOB_COMPLETION_INDEX of a Kubernetes Indexed Job); give --shard K/N"
        )
    }

    /// Shard `k` of `n`, checked.
    pub fn new(k: usize, n: usize) -> Result<Self> {
        if n == 0 {
            bail!("the number of shards must be at least 1");
        }
        if k >= n {
            bail!("shard {k} of {n} does not exist (shards are numbered 0 to {})", n - 1);
        }
        Ok(Self { k, n })
    }

    /// This shard's share of `candidates`: sorted and without repeats, those
    /// at positions k, k + n, k + 2n, ...
    pub fn select(&self, candidates: &[usize]) -> Vec<usize> {
        let mut all = candidates.to_vec();
        all.sort_unstable();
        all.dedup();
        all.into_iter().skip(self.k).step_by(self.n).collect()
    }

    /// The shard's folder in the run's results folder: `shard-K-of-N`.
    pub fn folder(&self) -> String {
        format!("shard-{}-of-{}", self.k, self.n)
    }
}

/// What a sharded run splits: the command and its candidates.
pub struct Plan {
    /// `correlate` or `search`.
    pub command: &'static str,
    /// How the candidates were chosen (`--sample 600`, `--all`,
    /// `--trials 10 --networks 1000`, ...).
    pub candidates: String,
    /// The candidates (any order; repeats count once).
    pub indices: Vec<usize>,
}

/// A shard as its `run.json` records it (`shard`): every field but `shard`
/// is the same in all shards of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    /// This shard, from 0.
    pub shard: usize,
    /// The number of shards.
    pub of: usize,
    /// The command whose candidates are split.
    pub command: String,
    /// How they were chosen.
    pub candidates: String,
    /// How many there are.
    pub networks: usize,
    /// FNV-1a 64 of the sorted candidate list (see [`digest`]).
    pub digest: String,
    /// The same of this shard's share (`indices.txt`).
    pub share_digest: String,
    /// The assignment rule, in words.
    pub assignment: String,
}

impl ShardRecord {
    /// The record of shard `shard` of `plan`.
    pub fn new(shard: Shard, plan: &Plan) -> Self {
        let mut all = plan.indices.clone();
        all.sort_unstable();
        all.dedup();
        Self {
            shard: shard.k,
            of: shard.n,
            command: plan.command.into(),
            candidates: plan.candidates.clone(),
            networks: all.len(),
            digest: digest(&all),
            share_digest: digest(&shard.select(&all)),
            assignment: ASSIGNMENT.into(),
        }
    }

    /// The shard it records.
    pub fn shard(&self) -> Shard {
        Shard { k: self.shard, n: self.of }
    }
}

/// The assignment rule as `run.json` states it.
pub const ASSIGNMENT: &str = "the candidates sorted by index; shard K of N takes positions K, K+N, K+2N, ...";

/// FNV-1a 64 of a sorted index list written as `i,i,...`: identifies a
/// candidate list in `run.json` without listing it.
pub fn digest(sorted: &[usize]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, i) in sorted.iter().enumerate() {
        let text = if n == 0 { i.to_string() } else { format!(",{i}") };
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}")
}

/// What a shard's run did.
#[derive(Debug, Clone, Serialize)]
pub struct ShardReport {
    /// `K/N`.
    pub shard: String,
    /// The command split.
    pub command: String,
    /// How its candidates were chosen.
    pub candidates: String,
    /// Candidates of the whole run.
    pub networks: usize,
    /// This shard's share.
    pub assigned: usize,
    /// Of them, scored in this run (the others were in the folder already).
    pub scored: usize,
    /// Wall seconds spent scoring in this run.
    pub seconds: f64,
    /// The shard's folder.
    pub folder: String,
    /// The run's results folder (where `rbflex merge --out` puts the whole).
    pub out: String,
}

impl fmt::Display for ShardReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let before = self.assigned - self.scored;
        writeln!(
            f,
            "shard {} of {} {} ({} networks): {} assigned, {} scored in this run ({:.1} s wall){}; scores in {}",
            self.shard,
            self.command,
            self.candidates,
            self.networks,
            self.assigned,
            self.scored,
            self.seconds,
            if before > 0 { format!(", {before} already there") } else { String::new() },
            self.folder
        )?;
        writeln!(
            f,
            "when every shard is done: rbflex merge --out {}, then the same {} without --shard (it scores nothing again)",
            self.out, self.command
        )
    }
}

/// Scores shard `shard` of `plan` into `out/shard-K-of-N/` (resuming what
/// is there) and records it in that folder's `run.json`.
pub fn run(
    s: &mut Setting,
    plan: &Plan,
    shard: Shard,
    out: &Path,
    workers: Workers,
    quiet: bool,
) -> Result<ShardReport> {
    let (record, share, dir, mut cache) = open(s, plan, shard, out)?;
    let known = |i: &usize| {
        cache.get(*i).is_some_and(|r| s.selection.proxies.iter().all(|p| r.get(&p.columns().value).is_some()))
    };
    let before = share.iter().filter(|i| known(i)).count();
    let (_, seconds) = score_many(s, &share, workers, &mut cache, quiet)?;
    Ok(ShardReport {
        shard: shard.to_string(),
        command: plan.command.into(),
        candidates: plan.candidates.clone(),
        networks: record.networks,
        assigned: share.len(),
        scored: share.len() - before,
        seconds,
        folder: dir.display().to_string(),
        out: out.display().to_string(),
    })
}

/// Opens shard `shard` of `plan` in `out/shard-K-of-N/` (its record set in
/// `s`, `indices.txt` written): its record, share, folder and scores so far.
pub fn open(
    s: &mut Setting,
    plan: &Plan,
    shard: Shard,
    out: &Path,
) -> Result<(ShardRecord, Vec<usize>, PathBuf, ScoreCache)> {
    let record = ShardRecord::new(shard, plan);
    let share = shard.select(&plan.indices);
    let dir = out.join(shard.folder());
    s.shard = Some(serde_json::to_value(&record)?);
    let cache = ScoreCache::open(&dir, s)?;
    write_atomic(&dir.join(INDICES), indices_text(&record, &share).as_bytes())?;
    Ok((record, share, dir, cache))
}

/// The file in a shard's folder listing its share.
pub const INDICES: &str = "indices.txt";

fn indices_text(r: &ShardRecord, share: &[usize]) -> String {
    let mut t = format!(
        "# shard {}/{} of {} {} ({} networks): its share, one index a line ({})\n",
        r.shard, r.of, r.command, r.candidates, r.networks, r.assignment
    );
    for i in share {
        t.push_str(&format!("{i}\n"));
    }
    t
}

/// Reads a shard's `indices.txt` (`#` comments and blank lines skipped).
pub fn read_share(path: &Path) -> Result<Vec<usize>> {
    let text = crate::files::read_text_capped(path, "shard indices file", crate::correlate::MAX_INDICES_BYTES)?;
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if !t.is_empty() {
            v.push(t.parse().map_err(|_| {
                anyhow::anyhow!("{} line {}: '{}' is not an index", path.display(), n + 1, crate::shown::shorten(t))
            })?);
        }
    }
    Ok(v)
}

/// The shard folders `rbflex merge --out OUT` takes when given none:
/// `OUT/shard-K-of-N`, in order of K.
pub fn folders_in(out: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
    let mut found: Vec<((usize, usize), PathBuf)> = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("cannot read {}", out.display()))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(kn) = parse_folder(&name).filter(|_| e.path().is_dir()) {
            found.push(((kn.1, kn.0), e.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// `shard-K-of-N` -> (K, N).
fn parse_folder(name: &str) -> Option<(usize, usize)> {
    let (k, n) = name.strip_prefix("shard-")?.split_once("-of-")?;
    Some((k.parse().ok()?, n.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(spec: &str, shards: Option<usize>, vars: &[(&str, &str)]) -> Result<Shard> {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Shard::parse(spec, shards, &|k: &str| env.get(k).cloned())
    }

    fn err(spec: &str, shards: Option<usize>, vars: &[(&str, &str)]) -> String {
        format!("{:#}", parse(spec, shards, vars).expect_err("an error"))
    }

    #[test]
    fn a_shards_indices_file_with_a_carriage_return_is_a_one_line_error() {
        // found by the merge fuzz (tests/fuzz.rs merge_shards)
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("indices.txt");
        std::fs::write(&p, "5\nsh\rard\n").unwrap();
        let e = read_share(&p).unwrap_err().to_string();
        assert_eq!(e, format!("{} line 2: 'sh\\rard' is not an index", p.display()));
    }

    #[test]
    fn explicit_shards_parse_and_are_checked() {
        assert_eq!(parse("1/4", None, &[]).unwrap(), Shard { k: 1, n: 4 });
        assert_eq!(parse("0/1", None, &[]).unwrap(), Shard { k: 0, n: 1 });
        assert_eq!(err("4/4", None, &[]), "--shard '4/4': shard 4 of 4 does not exist (shards are numbered 0 to 3)");
        assert_eq!(err("0/0", None, &[]), "--shard '0/0': the number of shards must be at least 1");
        for bad in ["x", "1", "1/", "-1/4", "1/4/2", "a/b"] {
            assert_eq!(
                err(bad, None, &[]),
                format!("--shard '{bad}': expected K/N (shard K of N, from 0, e.g. 0/4) or auto")
            );
        }
        assert!(err("1/4", Some(4), &[]).starts_with("--shards goes with --shard auto"));
    }

    #[test]
    fn auto_reads_slurm_and_kubernetes() {
        fn slurm<'a>(id: &'a str, count: &'a str, min: &'a str) -> Vec<(&'static str, &'a str)> {
            vec![("SLURM_ARRAY_TASK_ID", id), ("SLURM_ARRAY_TASK_COUNT", count), ("SLURM_ARRAY_TASK_MIN", min)]
        }
        assert_eq!(parse("auto", None, &slurm("2", "4", "0")).unwrap(), Shard { k: 2, n: 4 });
        assert_eq!(parse("auto", None, &slurm("4", "4", "1")).unwrap(), Shard { k: 3, n: 4 });
        // a resubmitted task (its own array of one) keeps its number with --shards
        assert_eq!(parse("auto", Some(4), &slurm("2", "1", "2")).unwrap(), Shard { k: 2, n: 4 });
        let mut stepped = slurm("6", "4", "0");
        stepped.push(("SLURM_ARRAY_TASK_STEP", "2"));
        assert_eq!(parse("auto", None, &stepped).unwrap(), Shard { k: 3, n: 4 });
        assert_eq!(
            err("auto", None, &slurm("7", "3", "1")),
            "SLURM_ARRAY_TASK_ID 7 of an array of 3 from 1: submit a range, --array=0-2, or give --shards N: shard 6 of 3 does not exist (shards are numbered 0 to 2)"
        );
        assert_eq!(
            err("auto", Some(4), &slurm("4", "4", "1")),
            "SLURM_ARRAY_TASK_ID is 4 with --shards 4: number the array from 0 (--array=0-3): shard 4 of 4 does not exist (shards are numbered 0 to 3)"
        );
        assert_eq!(err("auto", None, &[("SLURM_ARRAY_TASK_ID", "x")]), "SLURM_ARRAY_TASK_ID is 'x', not a number");
        assert_eq!(
            err("auto", None, &[("SLURM_ARRAY_TASK_ID", "1")]),
            "SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: give --shards N"
        );
        assert_eq!(parse("auto", Some(3), &[("JOB_COMPLETION_INDEX", "2")]).unwrap(), Shard { k: 2, n: 3 });
        assert!(err("auto", None, &[("JOB_COMPLETION_INDEX", "2")])
            .starts_with("JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of shards"));
        assert_eq!(
            err("auto", Some(3), &[("JOB_COMPLETION_INDEX", "3")]),
            "JOB_COMPLETION_INDEX is 3 with --shards 3: shard 3 of 3 does not exist (shards are numbered 0 to 2)"
        );
        assert!(err("auto", None, &[]).starts_with("--shard auto: no array-job index in the environment"));
        assert_eq!(err("auto", Some(0), &[]), "--shards must be at least 1");
    }

    #[test]
    fn shares_partition_the_sorted_candidates() {
        let cands = vec![9, 3, 3, 7, 1, 12, 4];
        let shares: Vec<Vec<usize>> = (0..3).map(|k| Shard { k, n: 3 }.select(&cands)).collect();
        assert_eq!(shares, vec![vec![1, 7], vec![3, 9], vec![4, 12]]);
        let plan = Plan { command: "correlate", candidates: "--sample 6".into(), indices: cands };
        for (k, share) in shares.iter().enumerate() {
            let r = ShardRecord::new(Shard { k, n: 3 }, &plan);
            assert_eq!((r.networks, r.share_digest.clone()), (6, digest(share)));
        }
        assert_eq!(Shard { k: 5, n: 8 }.select(&[1, 2]), Vec::<usize>::new());
        assert_eq!(digest(&[]), "fnv1a64:cbf29ce484222325");
        assert_ne!(digest(&[1, 23]), digest(&[12, 3]));
        assert_eq!(parse_folder("shard-2-of-4"), Some((2, 4)));
        assert_eq!(parse_folder("shard-2-of-"), None);
    }
}
