//! Rank and linear correlations between scores and ground truth. Written by
//! hand (no maintained Rust crate offers Kendall's tau-b with ties): tau-b is
//! Knight's O(n log n) algorithm, Spearman is Pearson on average ranks.

use serde::Serialize;
use std::cmp::Ordering;

/// Correlations of scores against accuracies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Correlation {
    /// Pairs compared.
    pub n: usize,
    /// Scores that were not finite: ranked lowest for Kendall and Spearman,
    /// left out of Pearson.
    pub n_nonfinite: usize,
    /// Kendall's tau-b.
    pub kendall: f64,
    /// Spearman's rho.
    pub spearman: f64,
    /// Pearson's r over finite scores.
    pub pearson: f64,
}

/// Correlates `scores` with `truth` (same length).
pub fn correlate(scores: &[f64], truth: &[f64]) -> Correlation {
    // Non-finite scores (never NaN after this) rank lowest, tied.
    let ranked: Vec<f64> = scores.iter().map(|s| if s.is_finite() { *s } else { f64::NEG_INFINITY }).collect();
    let finite: Vec<(f64, f64)> =
        scores.iter().zip(truth).filter(|(s, _)| s.is_finite()).map(|(s, t)| (*s, *t)).collect();
    let (fs, ft): (Vec<f64>, Vec<f64>) = finite.into_iter().unzip();
    Correlation {
        n: scores.len(),
        n_nonfinite: scores.len() - fs.len(),
        kendall: kendall_tau_b(&ranked, truth),
        spearman: pearson(&average_ranks(&ranked), &average_ranks(truth)),
        pearson: pearson(&fs, &ft),
    }
}

/// A correlation rounded past +-1 by floating point, brought back into
/// [-1, 1] (NaN stays NaN).
fn clamp_unit(r: f64) -> f64 {
    if r.is_nan() {
        r
    } else {
        r.clamp(-1.0, 1.0)
    }
}

/// Pearson's r, within [-1, 1]; NaN when either side is constant or empty.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.is_empty() {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    clamp_unit(sxy / (sxx * syy).sqrt())
}

/// Ranks from 1, ties sharing their average rank.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|a, b| x[*a].total_cmp(&x[*b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            ranks[*k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pairs tied within runs of equal values of a sorted sequence.
fn tied_pairs<T: PartialEq>(sorted: impl Iterator<Item = T>) -> u64 {
    let mut total = 0u64;
    let mut run = 0u64;
    let mut prev: Option<T> = None;
    for v in sorted {
        if prev.as_ref() == Some(&v) {
            run += 1;
        } else {
            total += run * (run + 1) / 2;
            run = 0;
        }
        prev = Some(v);
    }
    total + run * (run + 1) / 2
}

/// Kendall's tau-b (Knight 1966), O(n log n), within [-1, 1].
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|a, b| x[*a].total_cmp(&x[*b]).then(y[*a].total_cmp(&y[*b])));
    let n0 = (n as u64) * (n as u64 - 1) / 2;
    let n1 = tied_pairs(idx.iter().map(|i| x[*i].to_bits()));
    let n3 = tied_pairs(idx.iter().map(|i| (x[*i].to_bits(), y[*i].to_bits())));
    // Count discordant pairs as inversions of y in x-order (merge sort).
    let mut ys: Vec<f64> = idx.iter().map(|i| y[*i]).collect();
    let mut buf = ys.clone();
    let swaps = merge_count(&mut ys, &mut buf);
    let n2 = tied_pairs(ys.iter().map(|v| v.to_bits()));
    let concordant_minus_discordant = n0 as f64 - n1 as f64 - n2 as f64 + n3 as f64 - 2.0 * swaps as f64;
    clamp_unit(concordant_minus_discordant / (((n0 - n1) as f64) * ((n0 - n2) as f64)).sqrt())
}

fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut swaps = merge_count(&mut v[..mid], &mut buf[..mid]) + merge_count(&mut v[mid..], &mut buf[mid..]);
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j].total_cmp(&v[i]) == Ordering::Less {
            buf[k] = v[j];
            swaps += (mid - i) as u64;
            j += 1;
        } else {
            buf[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buf[..n]);
    swaps
}

/// Mean and population standard deviation (numpy's `std`).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kendall_naive(x: &[f64], y: &[f64]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let (a, b) = (
                    (x[i] - x[j]).signum() * (x[i] != x[j]) as i32 as f64,
                    (y[i] - y[j]).signum() * (y[i] != y[j]) as i32 as f64,
                );
                if a == 0.0 && b == 0.0 {
                } else if a == 0.0 {
                    tx += 1.0;
                } else if b == 0.0 {
                    ty += 1.0;
                } else if a == b {
                    c += 1.0;
                } else {
                    d += 1.0;
                }
            }
        }
        (c - d) / ((c + d + tx) * (c + d + ty)).sqrt()
    }

    #[test]
    fn kendall_matches_known_values_and_naive_with_ties() {
        // scipy.stats.kendalltau([1,2,3,4,5],[3,1,2,5,4]) = 0.4
        assert!((kendall_tau_b(&[1., 2., 3., 4., 5.], &[3., 1., 2., 5., 4.]) - 0.4).abs() < 1e-12);
        // scipy: kendalltau([1,1,2,3],[1,2,2,3]) = 0.8
        assert!((kendall_tau_b(&[1., 1., 2., 3.], &[1., 2., 2., 3.]) - 0.8).abs() < 1e-12);
        let x: Vec<f64> = (0..300).map(|i| ((i * 37) % 23) as f64).collect();
        let y: Vec<f64> = (0..300).map(|i| ((i * 11) % 17) as f64 + (i % 3) as f64).collect();
        assert!((kendall_tau_b(&x, &y) - kendall_naive(&x, &y)).abs() < 1e-12);
    }

    #[test]
    fn correlations_stay_within_one() {
        // unclamped, these three points give -1.0000000000000002 and 1.0000000000000002
        assert_eq!(pearson(&[0.01, 0.01, 0.1], &[-0.03, -0.03, -0.7000000000000001]), -1.0);
        assert_eq!(pearson(&[0.3, 0.01, 0.01], &[-0.03, -0.07, -0.07]), 1.0);
        let c = correlate(&[0.01, 0.01, 0.1], &[-0.03, -0.03, -0.7000000000000001]);
        for r in [c.kendall, c.spearman, c.pearson] {
            assert!((-1.0..=1.0).contains(&r), "{c:?}");
        }
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn spearman_pearson_and_nonfinite() {
        // scipy.stats.spearmanr([1,2,3,4,5],[5,6,7,8,7]) = 0.8207826816681233
        let c = correlate(&[1., 2., 3., 4., 5.], &[5., 6., 7., 8., 7.]);
        assert!((c.spearman - 0.8207826816681233).abs() < 1e-12);
        // numpy corrcoef = 0.8320502943378437
        assert!((c.pearson - 0.8320502943378437).abs() < 1e-12);
        let c = correlate(&[f64::NEG_INFINITY, 2., 3., f64::NAN], &[1., 2., 3., 0.]);
        assert_eq!(c.n_nonfinite, 2);
        // -inf and NaN tie at the bottom: x = [lo, 2, 3, lo], y = [1, 2, 3, 0]
        assert!((c.kendall - kendall_naive(&[-1., 2., 3., -1.], &[1., 2., 3., 0.])).abs() < 1e-12);
        assert!((c.pearson - 1.0).abs() < 1e-12);
        assert_eq!(average_ranks(&[3., 1., 3.]), vec![2.5, 1.0, 2.5]);
        assert_eq!(mean_std(&[1., 3.]), (2.0, 1.0));
    }
}
