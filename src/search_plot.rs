//! The plot of a guided search (`search.png`): the pick's test accuracy
//! (best so far by fitness) against networks scored, mean over trials with
//! a band of one standard deviation, one line per strategy; a dashed line
//! at the proxy's ceiling when it is known.

use crate::correlate::{register_font, save_png};
use crate::evolution::Curve;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

const COLOURS: [RGBColor; 3] = [RGBColor(90, 90, 90), RGBColor(200, 40, 30), RGBColor(30, 90, 200)];

/// Writes the plot of `curves` (`(strategy, curve)`) to `path` (PNG,
/// written atomically).
pub fn plot(path: &Path, curves: &[(&str, &Curve)], ceiling: Option<f64>, title: &str, y_label: &str) -> Result<()> {
    register_font();
    let (w, h) = (900u32, 600u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    let mut draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let x1 = curves.iter().flat_map(|c| c.1.networks.last().copied()).max().unwrap_or(1).max(2) as f64;
        let ys = curves
            .iter()
            .flat_map(|c| c.1.mean.iter().zip(&c.1.std).flat_map(|(m, s)| [m - s, m + s]))
            .chain(ceiling)
            .filter(|v| v.is_finite());
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(0.05);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x1, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("networks scored per trial")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(y_label)
            .draw()?;
        for (k, (name, c)) in curves.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let pts: Vec<(f64, f64, f64)> = c
                .networks
                .iter()
                .zip(c.mean.iter().zip(&c.std))
                .filter(|(_, (m, _))| m.is_finite())
                .map(|(n, (m, s))| (*n as f64, *m, *s))
                .collect();
            let mut band: Vec<(f64, f64)> = pts.iter().map(|(x, m, s)| (*x, m + s)).collect();
            band.extend(pts.iter().rev().map(|(x, m, s)| (*x, m - s)));
            chart.draw_series(std::iter::once(Polygon::new(band, colour.mix(0.15).filled())))?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    pts.iter().map(|(x, m, _)| (*x, *m)).collect::<Vec<_>>(),
                    colour.stroke_width(2),
                )))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        if let Some(c) = ceiling.filter(|c| c.is_finite()) {
            let dashes: Vec<f64> = (0..60).map(|i| i as f64 * x1 / 60.0).collect();
            chart
                .draw_series(dashes.chunks(2).map(|p| {
                    PathElement::new(vec![(p[0], c), (p.get(1).copied().unwrap_or(p[0]), c)], BLACK.stroke_width(1))
                }))?
                .label("the proxy's own best over the space (ceiling)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
    save_png(path, &buf, (w, h))
}
