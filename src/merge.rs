//! `rbflex merge`: the shards of a sharded run ([`crate::shard`]) put back
//! together into the run's results folder, as the unsharded run would have
//! left it: `scores.csv` with every shard's networks and `run.json` with the
//! run's settings (no shard). The ordinary command rerun on that folder finds
//! every network scored and computes nothing again.
//!
//! Before anything is written it checks that every shard ran with the same
//! settings and the same candidate list (naming the field that differs),
//! that no shard is missing or twice, that each shard's `indices.txt` is its
//! share, that a network scored in two places has the same values, and that
//! every network of every share is scored; otherwise it stops with an error
//! naming the shard and changes nothing. It only reads the shard folders
//! (merging while a shard still runs is harmless: it reports what is
//! missing).

use crate::files::write_atomic;
use crate::proxies;
use crate::run::folder::{check_arch, check_init_seed, RESULT_FILES};
use crate::run::scores_file::{merge, parse_scores, scores_text};
use crate::run::{unsharded_header, Record, RunLock, MAX_RUN_JSON};
use crate::shard::{self, ShardRecord};
use crate::shown::shorten as sh;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// What a merge did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The run's results folder written.
    pub out: String,
    /// The command the shards split.
    pub command: String,
    /// How its candidates were chosen.
    pub candidates: String,
    /// Candidates of the whole run.
    pub networks: usize,
    /// The number of shards.
    pub shards: usize,
    /// The shard folders merged.
    pub merged: Vec<String>,
    /// Candidates with every proxy's value in the merged `scores.csv`.
    pub scored: usize,
    /// Shards with no folder (`--allow-missing` only).
    pub missing_shards: Vec<usize>,
    /// Networks of the merged shards' shares not scored (`--allow-missing`
    /// only).
    pub missing: Vec<usize>,
    /// Rows written to `scores.csv`.
    pub rows: usize,
}

impl fmt::Display for MergeReport {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(
            f,
            "merged {} of {} shard(s) of {} {} ({} networks, {} scored) into {}/scores.csv and run.json",
            self.merged.len(),
            self.shards,
            self.command,
            self.candidates,
            self.networks,
            self.scored,
            self.out
        )?;
        if !self.missing_shards.is_empty() || !self.missing.is_empty() {
            let shards: Vec<String> = self.missing_shards.iter().map(|k| format!("{k}/{}", self.shards)).collect();
            writeln!(
                f,
                "missing: shard(s) {}; {} network(s) of the merged shards{}",
                if shards.is_empty() { "none".into() } else { shards.join(", ") },
                self.missing.len(),
                if self.missing.is_empty() { String::new() } else { format!(" ({})", examples(&self.missing)) }
            )?;
            writeln!(f, "the same {} without --shard, --out {}, scores what is missing", self.command, self.out)
        } else {
            writeln!(f, "the same {} without --shard, --out {}, finds every network scored", self.command, self.out)
        }
    }
}

/// One shard folder, read.
struct ShardDir {
    dir: PathBuf,
    record: ShardRecord,
    /// `run.json` without the shard record.
    header: Value,
    /// `run.json`'s text.
    text: String,
}

/// Merges the shard folders `dirs` (default: every `out/shard-K-of-N`) into
/// `out`. With `allow_missing`, missing shards and networks are reported
/// instead of refused.
pub fn run(out: &Path, dirs: &[PathBuf], allow_missing: bool) -> Result<MergeReport> {
    run_with(out, dirs, allow_missing, None)
}

/// [`run`] for shards of a space made at run time (a Python user's): `space`
/// checks the rows' architectures instead of the catalog's entry named in
/// `run.json`.
pub fn run_with(
    out: &Path,
    dirs: &[PathBuf],
    allow_missing: bool,
    space: Option<crate::catalog::Shared<dyn crate::spaces::Space>>,
) -> Result<MergeReport> {
    // the lock first: no run or other merge writes the folder while it is read and written
    let created = !out.exists();
    if out.exists() && !out.is_dir() {
        bail!("--out {} is a file, not a folder", out.display());
    }
    let lock_file = out.join(".lock");
    let had_lock = std::fs::symlink_metadata(&lock_file).is_ok();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let lock = RunLock::take(out)?;
    let merged = merge_locked(out, dirs, allow_missing, space);
    if merged.is_err() {
        // a refused merge leaves nothing behind
        drop(lock);
        if !had_lock {
            let _ = std::fs::remove_file(&lock_file);
        }
        if created {
            let _ = std::fs::remove_dir(out);
        }
    }
    merged
}

fn merge_locked(
    out: &Path,
    dirs: &[PathBuf],
    allow_missing: bool,
    space: Option<crate::catalog::Shared<dyn crate::spaces::Space>>,
) -> Result<MergeReport> {
    crate::files::refuse_links(out, &RESULT_FILES)?;
    let dirs = if dirs.is_empty() { shard::folders_in(out)? } else { dirs.to_vec() };
    if dirs.is_empty() {
        bail!(
            "{} holds no shard folders (shard-K-of-N, as --shard K/N --out {} writes); name them after --out",
            out.display(),
            out.display()
        );
    }
    let shards = dirs.iter().map(|d| read_shard(d)).collect::<Result<Vec<_>>>()?;
    let first = &shards[0];
    for s in &shards[1..] {
        same_run(first, s)?;
    }
    let n = first.record.of;
    let mut by_k: BTreeMap<usize, &ShardDir> = BTreeMap::new();
    for s in &shards {
        if let Some(other) = by_k.insert(s.record.shard, s) {
            bail!(
                "two folders hold shard {}: {} and {}; merge one of them",
                s.record.shard(),
                other.dir.display(),
                s.dir.display()
            );
        }
    }
    let missing_shards: Vec<usize> = (0..n).filter(|k| !by_k.contains_key(k)).collect();
    if !missing_shards.is_empty() && !allow_missing {
        let names: Vec<String> = missing_shards.iter().map(|k| format!("{k}/{n}")).collect();
        bail!(
            "{} {} of {} {} missing: no {} among the folders merged ({}); run {} (or merge with --allow-missing)",
            if names.len() == 1 { "shard" } else { "shards" },
            names.join(", "),
            first.record.command,
            if names.len() == 1 { "is" } else { "are" },
            missing_shards.iter().map(|k| shard::Shard { k: *k, n }.folder()).collect::<Vec<_>>().join(", "),
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            if names.len() == 1 { "it" } else { "them" }
        );
    }

    // each shard's share, checked against its record and the candidate list
    let mut shares: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (k, s) in &by_k {
        let path = s.dir.join(shard::INDICES);
        let share = shard::read_share(&path)?;
        if shard::digest(&share) != s.record.share_digest {
            bail!(
                "{} is not shard {}'s share of {} {} (it does not match {}): the file was changed; rerun the shard",
                path.display(),
                s.record.shard(),
                s.record.command,
                s.record.candidates,
                s.dir.join("run.json").display()
            );
        }
        shares.insert(*k, share);
    }
    if missing_shards.is_empty() {
        let mut all: Vec<usize> = shares.values().flatten().copied().collect();
        all.sort_unstable();
        let apart = shares.iter().any(|(k, share)| shard::Shard { k: *k, n }.select(&all) != *share);
        if apart || shard::digest(&all) != first.record.digest {
            bail!(
                "the shards' shares ({}) do not make up the candidates of {} {}: the folders were changed; rerun the shards",
                dirs.iter().map(|d| d.join(shard::INDICES).display().to_string()).collect::<Vec<_>>().join(", "),
                first.record.command,
                first.record.candidates
            );
        }
    }

    // every score, each network's rows merged across files
    let mut rows: BTreeMap<usize, (Record, PathBuf)> = BTreeMap::new();
    let mut columns: Vec<String> = Vec::new();
    let existing = existing_run(out, first)?;
    let mut sources: Vec<PathBuf> = by_k.values().map(|s| s.dir.join("scores.csv")).collect();
    if existing {
        sources.insert(0, out.join("scores.csv"));
    }
    let check = match space {
        Some(space) => RowCheck::with(first, space)?,
        None => RowCheck::of(first)?,
    };
    let known = all_columns(first)?;
    let share_sets: BTreeMap<usize, BTreeSet<usize>> =
        shares.iter().map(|(k, v)| (*k, v.iter().copied().collect())).collect();
    for path in &sources {
        let share = by_k.iter().find(|(_, s)| s.dir.join("scores.csv") == *path).and_then(|(k, _)| share_sets.get(k));
        let (cols, recs) = read_scores(path, &|r| check.row(r, share))?;
        // a column no proxy of the run writes: the header was edited (a
        // run's own folder refuses it, so a merge may not pass it on)
        if let Some(c) = cols.iter().find(|c| !known.contains(*c)) {
            bail!(
                "{} has a column '{}' that no proxy of the run writes: the file was edited; rerun that shard into a fresh folder",
                path.display(),
                crate::shown::shorten(c)
            );
        }
        for c in cols {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        for (i, r) in recs {
            match rows.get_mut(&i) {
                None => {
                    rows.insert(i, (r, path.clone()));
                }
                Some((old, from)) => merge(old, r)
                    .map_err(|e| anyhow::anyhow!("{} and {} disagree: {e}", from.display(), path.display()))?,
            }
        }
    }

    // completeness: every proxy's value for every network of every share
    let values = value_columns(first)?;
    let complete = |i: &usize| rows.get(i).is_some_and(|(r, _)| values.iter().all(|c| r.get(c).is_some()));
    let mut missing = Vec::new();
    let mut lacking = Vec::new();
    for (k, share) in &shares {
        let miss: Vec<usize> = share.iter().copied().filter(|i| !complete(i)).collect();
        if !miss.is_empty() {
            lacking.push(format!(
                "shard {k}/{n} ({}) lacks {} of its {} networks ({})",
                by_k[k].dir.display(),
                miss.len(),
                share.len(),
                examples(&miss)
            ));
        }
        missing.extend(miss);
    }
    if !lacking.is_empty() && !allow_missing {
        bail!("{}: rerun it (it resumes where it stopped), then merge again", lacking.join("; "));
    }
    missing.sort_unstable();
    let scored = shares.values().flatten().filter(|i| complete(i)).count();

    // write: the run's header first, so that the folder is a valid run at
    // every moment (settings with fewer or all scores); a rerun completes it
    if !existing {
        write_atomic(&out.join("run.json"), unsharded_header(&first.text)?.as_bytes())?;
    }
    write_atomic(&out.join("scores.csv"), &scores_text(&columns, rows.values().map(|(r, _)| r))?)?;
    Ok(MergeReport {
        out: out.display().to_string(),
        command: first.record.command.clone(),
        candidates: first.record.candidates.clone(),
        networks: first.record.networks,
        shards: n,
        merged: by_k.values().map(|s| s.dir.display().to_string()).collect(),
        scored,
        missing_shards,
        missing,
        rows: rows.len(),
    })
}

/// The first few of `v`, for a message.
fn examples(v: &[usize]) -> String {
    let mut s: Vec<String> = v.iter().take(8).map(|i| i.to_string()).collect();
    if v.len() > 8 {
        s.push("...".into());
    }
    s.join(", ")
}

/// Reads a shard folder's `run.json`.
fn read_shard(dir: &Path) -> Result<ShardDir> {
    let path = dir.join("run.json");
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    let text = crate::files::read_text_capped(&path, "run file", MAX_RUN_JSON)
        .with_context(|| format!("{} is not a shard folder: cannot read {}", dir.display(), path.display()))?;
    let mut header: Value = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    let shard = header
        .as_object_mut()
        .with_context(|| format!("{} is corrupt: not a JSON object", path.display()))?
        .remove("shard")
        .with_context(|| {
            format!("{} records no shard: {} is not a folder that --shard wrote", path.display(), dir.display())
        })?;
    let record: ShardRecord =
        serde_json::from_value(shard).with_context(|| format!("{} is corrupt: its shard record", path.display()))?;
    shard::Shard::new(record.shard, record.of).with_context(|| format!("{} is corrupt", path.display()))?;
    unsharded_header(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    Ok(ShardDir { dir: dir.to_path_buf(), record, header, text })
}

/// Checks that shard `b` is of the same run as `a`, naming what differs.
fn same_run(a: &ShardDir, b: &ShardDir) -> Result<()> {
    let (ra, rb) = (&a.record, &b.record);
    let mut diff: Option<String> = None;
    if ra.of != rb.of {
        diff = Some(format!("the number of shards is {} there, {} here", ra.of, rb.of));
    } else if ra.command != rb.command {
        diff = Some(format!("the command is {} there, {} here", sh(&ra.command), sh(&rb.command)));
    } else if let Some(d) = first_cause(header_diff(&a.header, &b.header)) {
        diff = Some(d);
    } else if ra.networks != rb.networks || ra.candidates != rb.candidates {
        diff = Some(format!(
            "the candidates are {} ({} networks) there, {} ({} networks) here",
            sh(&ra.candidates),
            ra.networks,
            sh(&rb.candidates),
            rb.networks
        ));
    } else if ra.digest != rb.digest {
        diff = Some(format!(
            "the candidate lists of {} differ (digest {} there, {} here): the indices file was changed between shards",
            sh(&ra.candidates),
            sh(&ra.digest),
            sh(&rb.digest)
        ));
    }
    match diff {
        None => Ok(()),
        Some(d) => bail!(
            "shards {} and {} are of different runs: {d} (see their run.json); merge shards of one run",
            a.dir.display(),
            b.dir.display()
        ),
    }
}

/// The difference that explains the others: `images` (a description that
/// names the batch and image seed) only when nothing else differs.
fn first_cause(diffs: Vec<String>) -> Option<String> {
    let derived = |d: &String| d.starts_with("images is ");
    diffs.iter().find(|d| !derived(d)).or(diffs.first()).cloned()
}

/// The fields in which two `run.json` headers differ, as `FIELD is A there,
/// B here` (each proxy's settings compared on their own).
fn header_diff(a: &Value, b: &Value) -> Vec<String> {
    let none = Value::String("absent".into());
    let keys = |v: &Value| -> Vec<String> { v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default() };
    let mut names = keys(a);
    names.extend(keys(b).into_iter().filter(|k| a.get(k).is_none()));
    let mut out = Vec::new();
    for k in names {
        let (va, vb) = (a.get(&k).unwrap_or(&none), b.get(&k).unwrap_or(&none));
        if va == vb {
            continue;
        }
        if k == "proxies" {
            let mut ps = keys(va);
            ps.extend(keys(vb).into_iter().filter(|p| va.get(p).is_none()));
            for p in ps {
                let (pa, pb) = (va.get(&p).unwrap_or(&none), vb.get(&p).unwrap_or(&none));
                if pa != pb {
                    out.push(format!(
                        "proxy {} is {} there, {} here",
                        sh(&p),
                        sh(&pa.to_string()),
                        sh(&pb.to_string())
                    ));
                }
            }
        } else {
            out.push(format!("{} is {} there, {} here", sh(&k), sh(&va.to_string()), sh(&vb.to_string())));
        }
    }
    out
}

/// Whether `out` already holds the run (a `run.json` of the same settings:
/// an earlier merge, or a partial unsharded run); refuses another run's.
fn existing_run(out: &Path, first: &ShardDir) -> Result<bool> {
    let path = out.join("run.json");
    if !path.exists() {
        if out.join("scores.csv").exists() {
            bail!("{} holds a scores.csv but no run.json; merge into another --out", out.display());
        }
        return Ok(false);
    }
    let text = crate::files::read_text_capped(&path, "run file", MAX_RUN_JSON)?;
    let canonical = unsharded_header(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    let mut header: Value = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?;
    if header.as_object_mut().and_then(|o| o.remove("shard")).is_some() {
        bail!("{} is itself a shard folder; merge into the run's folder (the shards' --out)", out.display());
    }
    if canonical != unsharded_header(&first.text)? {
        let d = header_diff(&header, &first.header);
        bail!(
            "{} holds another run: {} (there: {}; here: the shards); merge into another --out",
            out.display(),
            d.first().map_or("its settings differ", String::as_str),
            path.display()
        );
    }
    Ok(true)
}

/// Every proxy the run records settings for.
fn run_proxies(s: &ShardDir) -> Result<Vec<std::sync::Arc<dyn proxies::Proxy>>> {
    let opts = proxies::Options { gammas: proxies::rbflex::Gammas::default(), batch: None, channels_last: false };
    let names: Vec<String> =
        s.header.get("proxies").and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
    names
        .iter()
        .map(|n| proxies::by_name(n, &opts).with_context(|| format!("{} is corrupt", s.dir.join("run.json").display())))
        .collect()
}

/// The value column of every proxy the run records.
fn value_columns(s: &ShardDir) -> Result<Vec<String>> {
    Ok(run_proxies(s)?.iter().map(|p| p.columns().value).collect())
}

/// Every `scores.csv` column of every proxy the run records (values,
/// parts, seconds).
fn all_columns(s: &ShardDir) -> Result<Vec<String>> {
    Ok(run_proxies(s)?.iter().flat_map(|p| p.columns().names()).collect())
}

/// Reads a `scores.csv` without changing it: its value columns and its
/// rows, merged by index (none when the file is absent). A torn last line
/// (a shard killed while writing) is left out: that network counts as
/// missing.
fn read_scores(path: &Path, check: &dyn Fn(&Record) -> Result<()>) -> Result<(Vec<String>, BTreeMap<usize, Record>)> {
    if !path.exists() {
        return Ok((Vec::new(), BTreeMap::new()));
    }
    let file = parse_scores(path, check)?;
    Ok((file.columns, file.rows))
}

/// The checks a run's cache makes of its rows, for the rows merge reads: the
/// run's init seed, an index of the space (a shard's rows: of its share) and
/// the space's arch for it (where the space can be opened from its name
/// alone: not for an NDS space read from a user's file).
struct RowCheck {
    seed: u64,
    space: Option<crate::catalog::Shared<dyn crate::spaces::Space>>,
}

impl RowCheck {
    fn of(first: &ShardDir) -> Result<Self> {
        let corrupt = || format!("{} is corrupt", first.dir.join("run.json").display());
        let seed = first.header.get("seed").and_then(Value::as_u64).with_context(corrupt)?;
        let name = first.header.get("space").and_then(Value::as_str).with_context(corrupt)?;
        let entry = crate::catalog::entry(name).with_context(corrupt)?;
        let space = if entry.archs_from_benchmark() { None } else { Some(crate::catalog::space(name)?) };
        Ok(Self { seed, space })
    }

    fn with(first: &ShardDir, space: crate::catalog::Shared<dyn crate::spaces::Space>) -> Result<Self> {
        let corrupt = || format!("{} is corrupt", first.dir.join("run.json").display());
        let seed = first.header.get("seed").and_then(Value::as_u64).with_context(corrupt)?;
        let name = first.header.get("space").and_then(Value::as_str).with_context(corrupt)?;
        if name != space.name() {
            bail!("{} is a run over space {name}, not {}", first.dir.display(), space.name());
        }
        Ok(Self { seed, space: Some(space) })
    }

    fn row(&self, r: &Record, share: Option<&BTreeSet<usize>>) -> Result<()> {
        if let Some(share) = share {
            if !share.contains(&r.index) {
                bail!("index {} is not a network of this shard's share", r.index);
            }
        }
        if let Some(space) = &self.space {
            check_arch(&**space, r)?;
        }
        check_init_seed(self.seed, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_is_named_on_one_line_whatever_the_file_holds() {
        // found by the merge fuzz: a proxy's name in run.json edited to hold a newline
        let a = serde_json::json!({"proxies": {"s\nflow": {"batch": 2}}, "seed": 1});
        let b = serde_json::json!({"proxies": {}, "seed": "1\r"});
        assert_eq!(
            header_diff(&a, &b),
            vec![r#"proxy s\nflow is {"batch":2} there, "absent" here"#, r#"seed is 1 there, "1\r" here"#]
        );
    }
}
