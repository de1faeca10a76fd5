//! Rank correlation between scores and benchmark accuracy over a sample of a
//! space (or all of it): a CSV of every scored network, a scatter plot and
//! Kendall / Spearman / Pearson.

use crate::benchmarks::GroundTruth;
use crate::eval::{score_many, Record, ScoreCache, Setting, Workers};
use crate::stats::{correlate, Correlation};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A correlation run's result.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationReport {
    /// Space.
    pub space: String,
    /// Dataset scored and correlated against.
    pub dataset: String,
    /// Networks compared.
    pub n: usize,
    /// Non-finite scores among them.
    pub n_nonfinite: usize,
    /// Kendall's tau-b against `dataset`'s accuracy.
    pub kendall: f64,
    /// Spearman's rho.
    pub spearman: f64,
    /// Pearson's r over finite scores.
    pub pearson: f64,
    /// The same against every dataset of the benchmark.
    pub by_dataset: BTreeMap<String, Correlation>,
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
    let (records, secs) = score_many(s, indices, workers, cache, quiet)?;
    let csv_path = out.join("correlate.csv");
    write_csv(&csv_path, &records, truth)?;
    let mut by_dataset = BTreeMap::new();
    for d in truth.datasets() {
        let (sc, acc): (Vec<f64>, Vec<f64>) =
            records.iter().filter_map(|r| truth.accuracy(r.index, *d).map(|a| (r.score, a))).unzip();
        by_dataset.insert(d.key().to_string(), correlate(&sc, &acc));
    }
    let main = by_dataset
        .get(s.dataset.key())
        .copied()
        .with_context(|| format!("the benchmark has no {} accuracies", s.dataset))?;
    let plot_path = out.join("correlate.png");
    let pts: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| r.score.is_finite())
        .filter_map(|r| truth.accuracy(r.index, s.dataset).map(|a| (r.score, a)))
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
    scatter(&plot_path, &pts, &title, &truth.label(s.dataset))?;
    Ok(CorrelationReport {
        space: s.space.name().into(),
        dataset: s.dataset.key().into(),
        n: main.n,
        n_nonfinite: main.n_nonfinite,
        kendall: main.kendall,
        spearman: main.spearman,
        pearson: main.pearson,
        by_dataset,
        seconds: secs,
        worker_seconds: records.iter().map(|r| r.seconds).sum(),
        csv: csv_path.display().to_string(),
        plot: plot_path.display().to_string(),
    })
}

fn write_csv(path: &Path, records: &[Record], truth: &dyn GroundTruth) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header: Vec<String> =
        ["index", "arch", "score", "logdet_k", "logdet_q"].iter().map(|s| s.to_string()).collect();
    header.extend(truth.datasets().iter().map(|d| d.key().to_string()));
    w.write_record(&header)?;
    for r in records {
        let mut row = vec![
            r.index.to_string(),
            r.arch.clone(),
            r.score.to_string(),
            r.logdet_k.to_string(),
            r.logdet_q.to_string(),
        ];
        row.extend(
            truth.datasets().iter().map(|d| truth.accuracy(r.index, *d).map(|a| a.to_string()).unwrap_or_default()),
        );
        w.write_record(&row)?;
    }
    w.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../data/DejaVuSans.ttf");
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, font);
    });
}

/// Writes a PNG scatter plot of (score, accuracy) points.
pub fn scatter(path: &Path, pts: &[(f64, f64)], title: &str, y_label: &str) -> Result<()> {
    register_font();
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (900, 650)).into_drawing_area();
        root.fill(&WHITE)?;
        let (x0, x1) = bounds(pts.iter().map(|p| p.0));
        let (y0, y1) = bounds(pts.iter().map(|p| p.1));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart.configure_mesh().x_desc("RBFleX score").y_desc(y_label).draw()?;
        chart.draw_series(pts.iter().map(|(x, y)| Circle::new((*x, *y), 2, BLUE.mix(0.35).filled())))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))
}

fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.03).max(1e-9);
    (lo - pad, hi + pad)
}
