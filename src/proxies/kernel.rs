//! The streamed RBF kernel: instead of holding the N x L matrix of captured
//! values, accumulate (layer by layer, in f64) the column-normalised rows'
//! squared norms and Gram matrix, which is all the kernel needs.

use tch::{Device, Kind, Tensor};

/// Flattens groups (`[n_g, ...]` each) into one `[N, L]` f64 matrix, rows in
/// group order.
pub fn rows_f64(outs: &[Tensor]) -> Tensor {
    let rows: Vec<Tensor> = outs.iter().map(|t| t.reshape([t.size()[0], -1])).collect();
    Tensor::cat(&rows, 0).to_kind(Kind::Double)
}

/// Min-max normalises every column over the rows, as the reference does:
/// `x_max[x_max == x_min] = 1; x_min[x_max == x_min] = 0`, so a constant column
/// becomes 0 (or stays 1 when its value is exactly 1).
pub fn normalize_columns(m: &Tensor) -> Tensor {
    let mn = m.amin([0i64].as_slice(), true);
    let mx = m.amax([0i64].as_slice(), true);
    let one = Tensor::ones_like(&mx);
    let mx = mx.where_self(&mx.ne_tensor(&mn), &one);
    let zero = Tensor::zeros_like(&mn);
    let mn = mn.where_self(&mx.ne_tensor(&mn), &zero);
    (m - &mn) / (&mx - &mn)
}

/// Running sums of the normalised rows: squared norms and the Gram matrix.
#[derive(Debug)]
pub struct KernelSums {
    n: usize,
    /// Values per row accumulated so far.
    pub len: i64,
    /// Whether any raw value was NaN or infinite.
    pub nonfinite: bool,
    rowsq: Vec<f64>,
    gram: Vec<f64>,
}

impl KernelSums {
    /// Empty sums for `n` rows.
    pub fn new(n: usize) -> Self {
        Self { n, len: 0, nonfinite: false, rowsq: vec![0.0; n], gram: vec![0.0; n * n] }
    }

    /// Adds the columns of one captured output (`[N, L]` once flattened).
    pub fn add(&mut self, outs: &[Tensor]) {
        let m = rows_f64(outs);
        let size = m.size();
        if size[0] as usize != self.n || size[1] == 0 {
            self.len += size.get(1).copied().unwrap_or(0);
            return;
        }
        if !bool::try_from(m.isfinite().all()).unwrap_or(false) {
            self.nonfinite = true;
        }
        let z = normalize_columns(&m);
        let rowsq = (&z * &z).sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
        let gram = z.matmul(&z.tr());
        let rowsq = Vec::<f64>::try_from(rowsq).unwrap_or_default();
        let gram = Vec::<f64>::try_from(gram.reshape([-1])).unwrap_or_default();
        for (a, b) in self.rowsq.iter_mut().zip(rowsq) {
            *a += b;
        }
        for (a, b) in self.gram.iter_mut().zip(gram) {
            *a += b;
        }
        self.len += size[1];
    }

    /// Squared row norms of the normalised matrix.
    pub fn rowsq(&self) -> &[f64] {
        &self.rowsq
    }

    /// Gram matrix of the normalised matrix, row-major N x N.
    pub fn gram(&self) -> &[f64] {
        &self.gram
    }

    /// The RBF kernel `exp(-gamma * (|a_i|^2 + |a_j|^2 - 2 a_i.a_j))`, row-major.
    pub fn kernel(&self, gamma: f64) -> Vec<f64> {
        let n = self.n;
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let d = self.rowsq[i] + self.rowsq[j] - 2.0 * self.gram[i * n + j];
                k[i * n + j] = (-gamma * d).exp();
            }
        }
        k
    }
}

/// `log|det M|` of a row-major n x n f64 matrix via libtorch's LU (LAPACK),
/// the reference's `torch.linalg.slogdet`; `-inf` when singular.
pub fn logabsdet(m: &[f64], n: usize) -> f64 {
    let t = Tensor::from_slice(m).reshape([n as i64, n as i64]).to_device(Device::Cpu);
    let (_sign, lad) = Tensor::linalg_slogdet(&t);
    let v = f64::try_from(lad).unwrap_or(f64::NAN);
    if v.is_nan() {
        f64::NEG_INFINITY
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_reference_semantics() {
        // columns: varying, constant 5, constant exactly 1
        let m = Tensor::from_slice(&[0.0f64, 5.0, 1.0, 2.0, 5.0, 1.0, 4.0, 5.0, 1.0]).reshape([3, 3]);
        let z = Vec::<f64>::try_from(normalize_columns(&m).reshape([-1])).unwrap();
        assert_eq!(z, vec![0.0, 0.0, 1.0, 0.5, 0.0, 1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn streamed_sums_equal_whole_matrix_and_hand_kernel() {
        // Two "layers" of a 2-row matrix; rows after normalisation:
        // layer 1 columns [0,1],[0,1] -> rows (0,0) and (1,1); layer 2 [3,3] -> 0.
        let mut s = KernelSums::new(2);
        s.add(&[Tensor::from_slice(&[0.0f32, 0.0]).reshape([1, 2]), Tensor::from_slice(&[1.0f32, 1.0]).reshape([1, 2])]);
        s.add(&[Tensor::from_slice(&[3.0f32]).reshape([1, 1]), Tensor::from_slice(&[3.0f32]).reshape([1, 1])]);
        assert_eq!(s.len, 3);
        assert_eq!(s.rowsq(), &[0.0, 2.0]);
        assert_eq!(s.gram(), &[0.0, 0.0, 0.0, 2.0]);
        let k = s.kernel(0.5);
        // distance 2, gamma 0.5 -> exp(-1)
        assert_eq!(k, vec![1.0, (-1.0f64).exp(), (-1.0f64).exp(), 1.0]);
        let want = (1.0 - (-2.0f64).exp()).ln();
        assert!((logabsdet(&k, 2) - want).abs() < 1e-15);
    }

    #[test]
    fn singular_kernel_is_neg_infinity() {
        assert_eq!(logabsdet(&[1.0; 9], 3), f64::NEG_INFINITY);
    }
}
