//! Rank correlation between scores and benchmark accuracy over a sample of a
//! space (or all of it): a CSV of every scored network, a scatter plot and
//! Kendall / Spearman / Pearson.

use crate::benchmarks::GroundTruth;
use crate::proxies::Selection;
use crate::run::{score_many, Record, ScoreCache, Setting, Workers};
use crate::stats::{correlate, Correlation};
use anyhow::{bail, Context, Result};
use image::ImageEncoder;
use plotters::prelude::*;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One proxy's correlations.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyCorrelation {
    /// Networks compared.
    pub n: usize,
    /// Non-finite values among them.
    pub n_nonfinite: usize,
    /// Kendall's tau-b against the run dataset's accuracy.
    pub kendall: f64,
    /// Spearman's rho.
    pub spearman: f64,
    /// Pearson's r over finite values.
    pub pearson: f64,
    /// The same against every dataset of the benchmark.
    pub by_dataset: BTreeMap<String, Correlation>,
}

/// A correlation run's result. The top-level figures are the first proxy
/// asked for's; `proxies` has every one's.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationReport {
    /// Space.
    pub space: String,
    /// Dataset scored and correlated against.
    pub dataset: String,
    /// The proxy the top-level figures are of.
    pub proxy: String,
    /// Its correlations (`n`, `n_nonfinite`, `kendall`, `spearman`,
    /// `pearson`, `by_dataset` at the top level of the JSON).
    #[serde(flatten)]
    pub main: ProxyCorrelation,
    /// Wall seconds spent scoring in this run (scores already in the
    /// results folder cost nothing).
    pub seconds: f64,
    /// Seconds one worker spent building and scoring these networks, as
    /// recorded when each was scored (cached or not).
    pub worker_seconds: f64,
    /// The CSV written.
    pub csv: String,
    /// The plot written.
    pub plot: String,
    /// Every proxy's correlations, in the order asked for. Rank aggregations
    /// (`az`, `ensemble`, `consensus`, `vkdnw_agg`) are ranked over this run's candidates.
    pub proxies: BTreeMap<String, ProxyCorrelation>,
    /// What the aggregations that choose their members per run
    /// (`consensus`) chose over these candidates, a line each.
    pub chosen: Vec<String>,
}

/// The indices to correlate: `n` distinct ones drawn with ChaCha8 seeded by
/// `seed`, in index order, or all when `n` is `None`.
pub fn sample_indices(len: usize, n: Option<usize>, seed: u64) -> Result<Vec<usize>> {
    let mut idx = match n {
        None => (0..len).collect(),
        Some(n) if n < 2 || n > len => {
            bail!("--sample must be between 2 and the space's size {len}, got {n}")
        }
        Some(n) => sample(&mut ChaCha8Rng::seed_from_u64(seed), len, n).into_vec(),
    };
    idx.sort_unstable();
    Ok(idx)
}

/// Largest file of indices read (`--indices`, a shard's `indices.txt`).
pub const MAX_INDICES_BYTES: u64 = 256 << 20;

/// Reads a file of official indices (one per line; blank lines and `#`
/// comments skipped), sorted and without repeats; a bad or out-of-range line
/// is an error naming it.
pub fn read_indices(path: &Path, len: usize) -> Result<Vec<usize>> {
    let text = crate::files::read_text_capped(path, "index file", MAX_INDICES_BYTES)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text); // a UTF-8 byte-order mark, as some editors write
    let mut idx = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let v: usize = t.parse().map_err(|_| {
            anyhow::anyhow!("{} line {}: '{}' is not an index", path.display(), i + 1, crate::shown::shorten(t))
        })?;
        if v >= len {
            bail!("{} line {}: index {v} is out of range (the space has {len})", path.display(), i + 1);
        }
        idx.push(v);
    }
    idx.sort_unstable();
    idx.dedup();
    if idx.len() < 2 {
        bail!("{} holds {} index(es); a correlation needs at least 2", path.display(), idx.len());
    }
    Ok(idx)
}

/// Scores the sample, writes `correlate.csv` and `correlate.png` into `out`.
pub fn run(
    s: &Setting,
    truth: &dyn GroundTruth,
    indices: &[usize],
    workers: Workers,
    cache: &mut ScoreCache,
    out: &Path,
    quiet: bool,
) -> Result<CorrelationReport> {
    truth.require(indices, s.dataset)?;
    let (records, secs) = score_many(s, indices, workers, cache, quiet)?;
    let values = proxy_values(&s.selection, &records);
    let chosen = s.selection.explain(records.len(), |p, i| records[i].value(p));
    if !quiet {
        for line in &chosen {
            eprintln!("note: {line}");
        }
        for (name, v) in same_for_all(&values) {
            eprintln!(
                "note: {name} gives all {} networks the same value ({v}): it ranks none of them, its correlations are NaN",
                records.len()
            );
        }
    }
    let csv_path = out.join("correlate.csv");
    write_csv(&csv_path, &records, &values, &s.selection, truth)?;
    let mut proxies = BTreeMap::new();
    for (name, v) in &values {
        let mut by_dataset = BTreeMap::new();
        for d in truth.datasets() {
            let (sc, acc): (Vec<f64>, Vec<f64>) =
                records.iter().zip(v).filter_map(|(r, x)| truth.accuracy(r.index, *d).map(|a| (*x, a))).unzip();
            by_dataset.insert(d.key().to_string(), correlate(&sc, &acc));
        }
        let main = by_dataset
            .get(s.dataset.key())
            .copied()
            .with_context(|| format!("the benchmark has no {} accuracies", s.dataset.cli_name()))?;
        proxies.insert(
            name.to_string(),
            ProxyCorrelation {
                n: main.n,
                n_nonfinite: main.n_nonfinite,
                kendall: main.kendall,
                spearman: main.spearman,
                pearson: main.pearson,
                by_dataset,
            },
        );
    }
    let (first, first_values) = values.first().context("no proxy asked for")?;
    let main = proxies[*first].clone();
    let plot_path = out.join("correlate.png");
    if values.len() == 1 {
        let pts: Vec<(f64, f64)> = records
            .iter()
            .zip(first_values)
            .filter(|(_, x)| x.is_finite())
            .filter_map(|(r, x)| truth.accuracy(r.index, s.dataset).map(|a| (*x, a)))
            .collect();
        let title = format!(
            "{} on {}: Kendall {:.3}, Spearman {:.3} (n = {}, {} non-finite not shown)",
            s.space.name(),
            s.dataset,
            main.kendall,
            main.spearman,
            main.n,
            main.n_nonfinite
        );
        scatter(&plot_path, &pts, &title, &format!("{first} score"), &truth.label(s.dataset))?;
    } else {
        let bars: Vec<(String, f64, f64)> =
            values.iter().map(|(n, _)| (n.to_string(), proxies[*n].kendall, proxies[*n].spearman)).collect();
        let title = format!(
            "{} on {}: rank correlation with {} (n = {})",
            s.space.name(),
            s.dataset,
            truth.label(s.dataset),
            main.n
        );
        compare(&plot_path, &bars, &title)?;
    }
    Ok(CorrelationReport {
        space: s.space.name().into(),
        dataset: s.dataset.key().into(),
        proxy: first.to_string(),
        main,
        seconds: secs,
        worker_seconds: records.iter().map(|r| r.seconds(&s.selection)).sum(),
        csv: csv_path.display().to_string(),
        plot: plot_path.display().to_string(),
        proxies,
        chosen,
    })
}

/// Correlates one scoring pass against several ground truths (TransNAS'
/// seven tasks): each task's files go to `out/<task>/`.
pub fn run_tasks(
    s: &Setting,
    truths: &[(&str, &dyn GroundTruth)],
    indices: &[usize],
    workers: Workers,
    cache: &mut ScoreCache,
    out: &Path,
    quiet: bool,
) -> Result<BTreeMap<String, CorrelationReport>> {
    let mut all = BTreeMap::new();
    for (i, (task, truth)) in truths.iter().enumerate() {
        let dir = out.join(task);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // the first task scores (and notes); the others read the same scores
        all.insert(task.to_string(), run(s, *truth, indices, workers, cache, &dir, quiet || i > 0)?);
    }
    Ok(all)
}

/// The proxies that give every network (two or more) the same value, with
/// that value: they rank nothing (e.g. EPE-NAS when no class has two
/// images in the batch).
pub fn same_for_all(values: &[(&'static str, Vec<f64>)]) -> Vec<(&'static str, f64)> {
    values
        .iter()
        .filter(|(_, v)| v.len() > 1 && v.iter().all(|x| x.to_bits() == v[0].to_bits()))
        .map(|(name, v)| (*name, v[0]))
        .collect()
}

/// Every asked-for proxy's value on each record (aggregations ranked over
/// these records).
pub fn proxy_values(sel: &Selection, records: &[Record]) -> Vec<(&'static str, Vec<f64>)> {
    sel.values(records.len(), |p, i| records[i].value(p))
}

fn write_csv(
    path: &Path,
    records: &[Record],
    values: &[(&'static str, Vec<f64>)],
    sel: &Selection,
    truth: &dyn GroundTruth,
) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["index".into(), "arch".into()];
    let mut parts: Vec<String> = Vec::new();
    for (name, _) in values {
        match sel.proxy(name) {
            Some(p) => {
                let c = p.columns();
                header.push(c.value);
                parts.extend(c.parts.iter().cloned());
                header.extend(c.parts);
            }
            None => header.push(name.to_string()),
        }
    }
    header.extend(truth.datasets().iter().map(|d| d.key().to_string()));
    w.write_record(&header)?;
    for (i, r) in records.iter().enumerate() {
        let mut row = vec![r.index.to_string(), r.arch.clone()];
        for (name, v) in values {
            row.push(v[i].to_string());
            if let Some(p) = sel.proxy(name) {
                row.extend(p.columns().parts.iter().map(|c| r.get(c).map(|x| x.to_string()).unwrap_or_default()));
            }
        }
        row.extend(
            truth.datasets().iter().map(|d| truth.accuracy(r.index, *d).map(|a| a.to_string()).unwrap_or_default()),
        );
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    crate::files::write_atomic(path, &bytes)
}

/// Registers the embedded DejaVu Sans as plotters' "sans-serif" (once).
pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../data/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
}

/// Writes a PNG scatter plot of (score, accuracy) points.
pub fn scatter(path: &Path, pts: &[(f64, f64)], title: &str, x_label: &str, y_label: &str) -> Result<()> {
    register_font();
    let mut buf = vec![0u8; 900 * 650 * 3];
    let mut draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buf, (900, 650)).into_drawing_area();
        root.fill(&WHITE)?;
        let (x0, x1) = bounds(pts.iter().map(|p| p.0));
        let (y0, y1) = bounds(pts.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
        chart.draw_series(pts.iter().map(|(x, y)| Circle::new((*x, *y), 2, BLUE.mix(0.35).filled())))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
    save_png(path, &buf, (900, 650))
}

/// Encodes an RGB buffer as PNG and writes it into place atomically (no
/// cut-off image is ever left behind; an I/O error names the file).
pub(crate) fn save_png(path: &Path, rgb: &[u8], (w, h): (u32, u32)) -> Result<()> {
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| anyhow::anyhow!("cannot encode {}: {e}", path.display()))?;
    crate::files::write_atomic(path, &png)
}

/// Writes a PNG bar chart of each proxy's Kendall tau (dark) and Spearman
/// rho (light).
pub fn compare(path: &Path, bars: &[(String, f64, f64)], title: &str) -> Result<()> {
    register_font();
    let h = 120 + 34 * bars.len() as u32;
    let mut buf = vec![0u8; 900 * h as usize * 3];
    let mut draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buf, (900, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let lo = bars.iter().flat_map(|b| [b.1, b.2]).filter(|v| v.is_finite()).fold(0.0f64, f64::min);
        let n = bars.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(150)
            .build_cartesian_2d(lo.min(0.0) - 0.02..1.0, (0..n).into_segmented())?;
        chart
            .configure_mesh()
            .x_desc("Kendall tau (dark), Spearman rho (light)")
            .y_labels(bars.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    bars.get(*i as usize).map(|b| b.0.clone()).unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .draw()?;
        for (i, (_, k, sp)) in bars.iter().enumerate() {
            let i = i as i32;
            let (k, sp) = (if k.is_finite() { *k } else { 0.0 }, if sp.is_finite() { *sp } else { 0.0 });
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, SegmentValue::Exact(i)), (sp, SegmentValue::Exact(i + 1))],
                BLUE.mix(0.25).filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, SegmentValue::Exact(i)), (k, SegmentValue::Exact(i + 1))],
                BLUE.mix(0.8).filled(),
            )))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
    save_png(path, &buf, (900, h))
}

fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.03).max(1e-9);
    (lo - pad, hi + pad)
}
