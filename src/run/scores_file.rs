//! `scores.csv`: one row per pass over a network, one column per proxy
//! value, part and time; a torn last line (an interrupted append) is
//! recovered, any other bad line is an error naming it.

use super::score::Record;
use crate::files::write_atomic;
use crate::shown::shorten;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const KEYS: [&str; 3] = ["index", "arch", "init_seed"];

/// Largest `scores.csv` read (a million networks with every proxy's columns
/// is well under it); a device, FIFO or larger file is refused.
pub const MAX_SCORES_BYTES: u64 = 4 << 30;

/// A record's cells under `columns` (empty where unknown).
pub(crate) fn row(columns: &[String], r: &Record) -> Vec<String> {
    let mut v = vec![r.index.to_string(), r.arch.clone(), r.init_seed.to_string()];
    v.extend(columns.iter().map(|c| r.values.get(c).map(|x| x.to_string()).unwrap_or_default()));
    v
}

/// A whole `scores.csv`: the header, then `rows` (in the order given)
/// under `columns`.
pub(crate) fn scores_text<'a>(columns: &[String], rows: impl IntoIterator<Item = &'a Record>) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(KEYS.iter().map(|s| s.to_string()).chain(columns.iter().cloned()))?;
    for r in rows {
        w.write_record(row(columns, r))?;
    }
    w.into_inner().context("cannot buffer scores.csv")
}

/// What a `scores.csv` holds: its value columns, its rows merged by index,
/// and, when its last line is torn (an interrupted write), that line's
/// number and the text without it.
pub(crate) struct ScoresFile {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: BTreeMap<usize, Record>,
    pub(crate) torn: Option<(usize, String)>,
}

/// Parses `scores.csv` without changing it; each parsed row must pass
/// `check`. Any bad line but a torn last one is an error naming it.
pub(crate) fn parse_scores(path: &Path, check: &dyn Fn(&Record) -> Result<()>) -> Result<ScoresFile> {
    let text = crate::files::read_text_capped(path, "scores file", MAX_SCORES_BYTES)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut file = ScoresFile { columns: Vec::new(), rows: BTreeMap::new(), torn: None };
    let Some(first) = lines.first() else { return Ok(file) };
    let header: Vec<String> = first.split(',').map(String::from).collect();
    if header.len() < 4 || header[..3] != KEYS {
        bail!("{}: header is not 'index,arch,init_seed,...': not an rbflex scores file", path.display());
    }
    file.columns = header[3..].to_vec();
    let mut good = format!("{first}\n");
    let n = lines.len();
    for (i, line) in lines.iter().enumerate().skip(1) {
        match parse_row(line, &file.columns) {
            Ok(r) => {
                check(&r).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?;
                good.push_str(line);
                good.push('\n');
                match file.rows.get_mut(&r.index) {
                    None => {
                        file.rows.insert(r.index, r);
                    }
                    Some(old) => {
                        merge(old, r).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))?
                    }
                }
            }
            Err(_) if i + 1 == n => file.torn = Some((i + 1, std::mem::take(&mut good))),
            Err(e) => bail!("{} line {}: {e}", path.display(), i + 1),
        }
    }
    Ok(file)
}

/// Reads `scores.csv` of a results folder: its value columns and the merged
/// rows. A torn last line (an interrupted write) is dropped from the file
/// and recomputed later.
pub(crate) fn read_scores(
    path: &Path,
    check: &dyn Fn(&Record) -> Result<()>,
) -> Result<(Vec<String>, BTreeMap<usize, Record>)> {
    let file = parse_scores(path, check)?;
    if let Some((line, kept)) = &file.torn {
        eprintln!("warning: {}: dropping a torn last line {line}; it will be recomputed", path.display());
        write_atomic(path, kept.as_bytes())?;
    }
    Ok((file.columns, file.rows))
}

fn parse_row(line: &str, columns: &[String]) -> Result<Record> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(line.as_bytes());
    let rec = rdr.records().next().context("empty record")??;
    if rec.len() != columns.len() + 3 {
        bail!("{} fields, the header has {}", rec.len(), columns.len() + 3);
    }
    let index = rec[0].parse().with_context(|| format!("index '{}' is not a number", shorten(&rec[0])))?;
    let init_seed = rec[2].parse().with_context(|| format!("init_seed '{}' is not a number", shorten(&rec[2])))?;
    let mut values = BTreeMap::new();
    for (c, cell) in columns.iter().zip(rec.iter().skip(3)) {
        if !cell.is_empty() {
            let v: f64 = cell.parse().with_context(|| format!("{} '{}' is not a number", shorten(c), shorten(cell)))?;
            if v.is_nan() || v == f64::INFINITY {
                bail!("{} is {}: scores are numbers or -inf", shorten(c), shorten(cell));
            }
            values.insert(c.clone(), v);
        }
    }
    Ok(Record { index, arch: rec[1].to_string(), init_seed, values })
}

/// Merges a later row of the same index into `old`; the same column with
/// another value (or another arch or init seed) is an error.
pub(crate) fn merge(old: &mut Record, new: Record) -> Result<()> {
    if old.arch != new.arch || old.init_seed != new.init_seed {
        bail!("index {} appears with two architectures or init seeds", new.index);
    }
    for (c, v) in new.values {
        match old.values.get(&c) {
            Some(w) if w.to_bits() != v.to_bits() && !c.ends_with("seconds") => {
                bail!("index {} has two values of {c}: {w} and {v}", new.index)
            }
            _ => {
                old.values.insert(c, v);
            }
        }
    }
    Ok(())
}
