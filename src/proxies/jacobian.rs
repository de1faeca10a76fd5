//! Proxies from the Jacobian of the summed outputs with respect to the input
//! images (PyTorch's default init, train-mode BatchNorm on 64 labelled
//! images): `jacob_cov` (Mellor et al. 2020 / zero-cost-nas) and `epe_nas`
//! (Lopes et al. 2021 / NASLib).

use super::{Measure, Needs, Probe, Proxy};
use crate::nets::Init;
use crate::nets::{BnStats, NoProbe};
use anyhow::Result;
use tch::{Kind, Tensor};

const K: f64 = 1e-5;

/// Rows of d(sum of outputs)/dx, `[N, C*H*W]` float64: computed once per
/// network and shared between jacob_cov and epe_nas (the same init, batch
/// and BatchNorm mode) through the probe's shared values.
fn jacobian(p: &Probe) -> Result<Tensor> {
    const KEY: &str = "jacobian";
    let (n, values) = (p.x.size()[0], p.x.numel());
    if let Some(j) = p.shared.borrow().get(KEY).filter(|j| j.len() == values) {
        return Ok(Tensor::from_slice(j).reshape([n, -1]).to_device(p.x.device()));
    }
    let j = jacobian_now(p)?;
    p.shared.borrow_mut().insert(KEY, Vec::<f64>::try_from(j.reshape([-1]).to_device(tch::Device::Cpu))?);
    Ok(j)
}

fn jacobian_now(p: &Probe) -> Result<Tensor> {
    let net = (p.build)(Init::Default)?;
    let x = p.x.detach().set_requires_grad(true);
    let out = net.forward(&x, BnStats::Batch, &mut NoProbe)?.sum(Kind::Float);
    let g = super::backward(&[out], std::slice::from_ref(&x), false)?;
    let g = g.into_iter().next().flatten().unwrap_or_else(|| x.zeros_like());
    Ok(g.to_kind(Kind::Double).reshape([x.size()[0], -1]))
}

/// `np.corrcoef` of the rows of `j` (NaN for a constant row).
pub fn corrcoef(j: &Tensor) -> Tensor {
    let c = j - j.mean_dim([1i64].as_slice(), true, Kind::Double);
    let cov = c.mm(&c.tr());
    let d = cov.diagonal(0, 0, 1).sqrt();
    cov / d.outer(&d)
}

/// `-sum(log(v + k) + 1 / (v + k))` over the eigenvalues v of the rows'
/// correlation matrix.
pub fn jacob_cov_score(j: &Tensor) -> f64 {
    let corr = corrcoef(j);
    if bool::try_from(corr.isnan().any()).unwrap_or(true) {
        return f64::NEG_INFINITY;
    }
    let v = corr.linalg_eigvalsh("L");
    super::nan_as_lowest(-((&v + K).log() + (&v + K).reciprocal()).sum(Kind::Double).double_value(&[]))
}

/// jacob_cov.
#[derive(Debug, Clone, Copy)]
pub struct JacobCov;

impl Proxy for JacobCov {
    fn memory_per_input_value(&self) -> u64 {
        2300
    }
    fn name(&self) -> &'static str {
        "jacob_cov"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: false, classifier: false }
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let j = jacobian(p)?;
        let mut m = Measure::value(jacob_cov_score(&j));
        if m.value == f64::NEG_INFINITY {
            m.note = Some(degenerate(&j).into());
        }
        Ok(m)
    }
}

/// Why a Jacobian gives no correlation: all zero (the output ignores the
/// input: an all-`none` cell, or a zero-initialised classifier such as
/// torchvision's ViT head, where every gradient-based proxy reads zeros), or
/// a constant row.
fn degenerate(j: &Tensor) -> &'static str {
    if j.abs().max().double_value(&[]) == 0.0 {
        "the Jacobian is all zero: the output does not depend on the input (an all-none cell, or a zero-initialised classifier such as torchvision's ViT head)"
    } else {
        "a row of the Jacobian is constant: its correlation is undefined"
    }
}

/// EPE-NAS: per class, s_c = sum of log(|corr| + k) over the class rows'
/// correlation matrix; score = sum |s_c| (up to 100 classes), else the mean
/// pairwise |s_c - s_c'| over classes with at least two images, each s_c
/// divided by its class size.
#[derive(Debug, Clone, Copy)]
pub struct EpeNas;

/// EPE-NAS from the Jacobian rows and their labels.
pub fn epe_score(j: &Tensor, labels: &[i64], classes: i64) -> f64 {
    let mut s = Vec::new();
    let mut seen: Vec<i64> = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for c in seen {
        let rows: Vec<i64> = labels.iter().enumerate().filter(|(_, l)| **l == c).map(|(i, _)| i as i64).collect();
        if rows.len() < 2 {
            if classes <= 100 {
                s.push((1.0 + K).ln());
            }
            continue;
        }
        let corr = corrcoef(&j.index_select(0, &Tensor::from_slice(&rows).to_device(j.device())));
        let mut v = (corr.abs() + K).log().sum(Kind::Double).double_value(&[]);
        if classes > 100 {
            v /= rows.len() as f64;
        }
        s.push(v);
    }
    let v = if classes <= 100 {
        s.iter().map(|x| x.abs()).sum()
    } else if s.is_empty() {
        0.0
    } else {
        s.iter().map(|a| s.iter().map(|b| (a - b).abs()).sum::<f64>()).sum::<f64>() / s.len() as f64
    };
    super::nan_as_lowest(v)
}

impl Proxy for EpeNas {
    fn memory_per_input_value(&self) -> u64 {
        2300
    }
    fn name(&self) -> &'static str {
        "epe_nas"
    }
    fn needs(&self) -> Needs {
        Needs { batch: Some(64), labels: true, classifier: true }
    }
    fn score(&self, p: &Probe) -> Result<Measure> {
        let labels = Vec::<i64>::try_from(p.labels()?)?;
        Ok(Measure::value(epe_score(&jacobian(p)?, &labels, p.classes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacob_cov_of_uncorrelated_rows_is_minus_n() {
        // orthogonal zero-mean rows: correlation I, eigenvalues 1:
        // -sum(log(1 + k) + 1/(1 + k)) ~ -n
        let j = Tensor::from_slice(&[1.0f64, -1., 1., -1., 1., 1., -1., -1.]).view([2, 4]);
        let want = -2.0 * ((1.0 + K).ln() + 1.0 / (1.0 + K));
        assert!((jacob_cov_score(&j) - want).abs() < 1e-12);
        // a constant row has no correlation: -inf
        let c = Tensor::from_slice(&[1.0f64, 1., 1., 1., 1., 2., 3., 4.]).view([2, 4]);
        assert_eq!(jacob_cov_score(&c), f64::NEG_INFINITY);
        assert_eq!(degenerate(&c), "a row of the Jacobian is constant: its correlation is undefined");
        // an output that ignores its input (a zero-initialised classifier)
        assert!(degenerate(&Tensor::zeros([2, 4], (Kind::Double, tch::Device::Cpu)))
            .starts_with("the Jacobian is all zero: the output does not depend on the input"));
    }

    #[test]
    fn epe_sums_class_log_correlations() {
        // class 0: two identical rows (|corr| all 1); class 1: one row
        let j = Tensor::from_slice(&[1.0f64, 2., 3., 1., 2., 3., 5., 1., 0.]).view([3, 3]);
        let v = epe_score(&j, &[0, 0, 1], 10);
        let want = 4.0 * (1.0 + K).ln() + (1.0 + K).ln();
        assert!((v - want).abs() < 1e-12, "{v}");
        // over 100 classes: each class's sum divided by its rows, classes of
        // one row skipped, then the mean pairwise |s_a - s_b|. Class 0: two
        // identical rows, s_0 = 4 ln(1 + k) / 2; class 1: rows (1, 2, 3) and
        // (1, 3, 2), correlation 0.5, s_1 = (2 ln(1 + k) + 2 ln(0.5 + k)) / 2
        let j = Tensor::from_slice(&[1.0f64, 2., 3., 1., 2., 3., 1., 2., 3., 1., 3., 2., 7., 0., 1.]).view([5, 3]);
        let (s0, s1) = (2.0 * (1.0 + K).ln(), (1.0 + K).ln() + (0.5 + K).ln());
        let v = epe_score(&j, &[0, 0, 1, 1, 2], 120);
        assert!((v - (s0 - s1).abs()).abs() < 1e-12, "{v}");
    }

    #[test]
    fn jacobian_of_a_linear_classifier_is_its_weights_column_sums() {
        use crate::proxies::test_nets::{close, one_linear};
        // d(sum of logits)/dx = sum over k of W[k][:] = (1 + 3, -2 + 0.5) for
        // every input; identical rows correlate 1 everywhere: eigenvalues
        // (3, 0, 0), so jacob_cov = -(ln(3 + k) + 1/(3 + k) + 2 (ln k + 1/k))
        let x = Tensor::from_slice(&[0.5f32, -1., 2., 3., 0., 0.]).view([3, 2]);
        let shared = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let p = crate::proxies::test_nets::probe(&one_linear, &x, None, &shared);
        let j = Vec::<f64>::try_from(jacobian_now(&p).unwrap().reshape([-1])).unwrap();
        assert_eq!(j, [4.0, -1.5].repeat(3));
        let want = -((3.0 + K).ln() + 1.0 / (3.0 + K) + 2.0 * (K.ln() + 1.0 / K));
        close(JacobCov.score(&p).unwrap().value, want);
    }
}
