//! The streamed RBF kernel: instead of holding the N x L matrix of captured
//! values, accumulate (layer by layer, in f64) the column-normalised rows'
//! squared norms and Gram matrix, which is all the kernel needs.

use tch::{Device, Kind, Tensor};

/// A captured `[N, ...]` output as an `[N, L]` f64 matrix.
pub fn rows_f64(out: &Tensor) -> Tensor {
    out.reshape([out.size()[0], -1]).to_kind(Kind::Double)
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

/// A captured `[N, ...]` output as N rows of L f32 values, without a copy
/// when it already is a contiguous CPU float tensor (the largest outputs are
/// hundreds of MB). Calls `f` with the values, N and L.
pub fn with_rows_f32<R>(out: &Tensor, f: impl FnOnce(&[f32], usize, usize) -> R) -> R {
    let t = out.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
    let numel = t.numel();
    let data: &[f32] = if numel == 0 {
        &[]
    } else {
        // SAFETY: `t` is a contiguous CPU float32 tensor of `numel` values
        // that owns (or shares) its storage and outlives `data`.
        unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, numel) }
    };
    let rows = t.size().first().copied().unwrap_or(1).max(0) as usize;
    f(data, rows, numel.checked_div(rows).unwrap_or(0))
}

/// Running sums of the normalised rows: squared norms and the Gram matrix.
#[derive(Debug)]
pub struct KernelSums {
    n: usize,
    /// Values per row accumulated so far.
    pub len: i64,
    rowsq: Vec<f64>,
    gram: Vec<f64>,
    /// What the last outputs added, by storage identity (address, shape,
    /// strides), for [`KernelSums::add_again`]; no tensor is kept alive.
    recent: Vec<(Identity, Contribution)>,
}

/// Lanes of the column loop's accumulators (lets the compiler vectorise;
/// `accumulate3_body` spells out four).
const LANES: usize = 4;

impl KernelSums {
    /// Empty sums for `n` rows.
    pub fn new(n: usize) -> Self {
        Self { n, len: 0, rowsq: vec![0.0; n], gram: vec![0.0; n * n], recent: Vec::new() }
    }

    /// Whether some sum is NaN or infinite (a raw value was).
    pub fn nonfinite(&self) -> bool {
        self.gram.iter().any(|v| !v.is_finite())
    }

    /// Adds the columns of one captured output (`[N, L]` once flattened):
    /// each column is min-max normalised over the rows (a constant column
    /// becomes 0, or stays 1 when it is exactly 1, as in the reference), then
    /// its products are added to the Gram sums in f64.
    ///
    /// On the CPU the columns stream through SIMD sums (no f64 copy of the
    /// output is made); on another device the same sums are computed there
    /// with tensor ops in f64, and only the N x N sums come back.
    pub fn add(&mut self, out: &Tensor) {
        let n = self.n;
        let c = if out.device() == Device::Cpu {
            with_rows_f32(out, |data, rows, len| {
                let mut c = Contribution { len: len as i64, rowsq: vec![0.0; n], gram: vec![0.0; n * n] };
                if rows == n && len > 0 {
                    accumulate(data, len, &mut c);
                }
                c
            })
        } else {
            contribution_by_tensors(out, n)
        };
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push((identity(out), c.clone()));
        self.apply(&c);
    }

    /// Adds an output already added and still alive (a shared ReLU reported
    /// again): its columns are the same, so its contribution is reused.
    pub fn add_again(&mut self, out: &Tensor) {
        let id = identity(out);
        match self.recent.iter().rev().find(|(prev, _)| *prev == id) {
            Some((_, c)) => {
                let c = c.clone();
                self.apply(&c);
            }
            None => self.add(out),
        }
    }

    fn apply(&mut self, c: &Contribution) {
        self.len += c.len;
        for (a, b) in self.rowsq.iter_mut().zip(&c.rowsq) {
            *a += b;
        }
        for (a, b) in self.gram.iter_mut().zip(&c.gram) {
            *a += b;
        }
    }
}

/// One output's contribution computed with tensor ops on its own device, in
/// f64: the columns min-max normalised, then the Gram matrix and its
/// diagonal (the squared row norms). The device path of [`KernelSums::add`].
fn contribution_by_tensors(out: &Tensor, n: usize) -> Contribution {
    let _guard = tch::no_grad_guard();
    let rows = out.size().first().copied().unwrap_or(0);
    let m = rows_f64(out);
    let len = m.size().get(1).copied().unwrap_or(0);
    if rows != n as i64 || len == 0 {
        return Contribution { len, rowsq: vec![0.0; n], gram: vec![0.0; n * n] };
    }
    let m = normalize_columns(&m);
    let gram = m.mm(&m.tr()).to_device(Device::Cpu);
    let rowsq = Vec::<f64>::try_from(gram.diagonal(0, 0, 1).contiguous()).unwrap_or_else(|_| vec![f64::NAN; n]);
    let gram = Vec::<f64>::try_from(gram.reshape([-1])).unwrap_or_else(|_| vec![f64::NAN; n * n]);
    Contribution { len, rowsq, gram }
}

/// Storage identity of a tensor: valid while the tensor is alive.
type Identity = (usize, Vec<i64>, Vec<i64>);

fn identity(t: &Tensor) -> Identity {
    (t.data_ptr() as usize, t.size(), t.stride())
}

/// What one captured output adds to the sums.
#[derive(Debug, Clone)]
struct Contribution {
    len: i64,
    rowsq: Vec<f64>,
    gram: Vec<f64>,
}

/// Contributions remembered (a cell's node ReLUs are reported once per
/// block reading them, with other outputs in between).
const RECENT: usize = 16;

fn accumulate(data: &[f32], len: usize, out: &mut Contribution) {
    let n = out.rowsq.len();
    if n == 3 {
        return accumulate3(data, len, out);
    }
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
    let mut acc = vec![[0f64; LANES]; pairs.len()];
    let mut z = vec![[0f64; LANES]; n];
    let mut j0 = 0;
    while j0 < len {
        let width = LANES.min(len - j0);
        for l in 0..LANES {
            if l >= width {
                for zi in z.iter_mut() {
                    zi[l] = 0.0;
                }
                continue;
            }
            let col = j0 + l;
            let (mut mn, mut mx) = (f64::INFINITY, f64::NEG_INFINITY);
            for i in 0..n {
                let v = f64::from(data[i * len + col]);
                z[i][l] = v;
                mn = if v < mn || v.is_nan() { v } else { mn };
                mx = if v > mx || v.is_nan() { v } else { mx };
            }
            let (lo, hi) = if mx == mn { (if mn == 1.0 { 0.0 } else { mn }, 1.0) } else { (mn, mx) };
            let scale = hi - lo;
            for zi in z.iter_mut() {
                zi[l] = (zi[l] - lo) / scale;
            }
        }
        for (a, &(i, j)) in acc.iter_mut().zip(&pairs) {
            for l in 0..LANES {
                a[l] += z[i][l] * z[j][l];
            }
        }
        j0 += LANES;
    }
    for (a, &(i, j)) in acc.iter().zip(&pairs) {
        let s: f64 = a.iter().sum();
        out.gram[i * n + j] += s;
        if i != j {
            out.gram[j * n + i] += s;
        } else {
            out.rowsq[i] += s;
        }
    }
}

/// The default N = 3, written so that the compiler vectorises it: four
/// columns at a time, each lane with its own partial sums; compiled for AVX2
/// too and picked at run time (no FMA, so both paths give the same bits).
fn accumulate3(data: &[f32], len: usize, out: &mut Contribution) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { accumulate3_avx2(data, len, out) };
    }
    accumulate3_body(data, len, out)
}

/// [`accumulate3_body`] in AVX2 intrinsics, lane for lane the same
/// operations in the same order (no FMA): the compiler's own vectorisation
/// of the body varies with the crate around it (measured with callgrind).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn accumulate3_avx2(data: &[f32], len: usize, out: &mut Contribution) {
    use std::arch::x86_64::*;
    let (r0, rest) = data.split_at(len);
    let (r1, r2) = rest.split_at(len);
    let (one, zero) = (_mm256_set1_pd(1.0), _mm256_setzero_pd());
    let mut acc = [zero; 6];
    let chunks = len / LANES;
    for k in 0..chunks {
        let j = k * LANES;
        // SAFETY: j + LANES <= len for each of the three rows
        let (a, b, c) = unsafe {
            (
                _mm256_cvtps_pd(_mm_loadu_ps(r0.as_ptr().add(j))),
                _mm256_cvtps_pd(_mm_loadu_ps(r1.as_ptr().add(j))),
                _mm256_cvtps_pd(_mm_loadu_ps(r2.as_ptr().add(j))),
            )
        };
        let mn = _mm256_min_pd(_mm256_min_pd(a, b), c);
        let mx = _mm256_max_pd(_mm256_max_pd(a, b), c);
        let hi = _mm256_blendv_pd(mx, one, _mm256_cmp_pd::<_CMP_EQ_OQ>(mx, mn));
        let lo = _mm256_blendv_pd(mn, zero, _mm256_cmp_pd::<_CMP_EQ_OQ>(hi, mn));
        let inv = _mm256_div_pd(one, _mm256_sub_pd(hi, lo));
        let (x, y, w) = (
            _mm256_mul_pd(_mm256_sub_pd(a, lo), inv),
            _mm256_mul_pd(_mm256_sub_pd(b, lo), inv),
            _mm256_mul_pd(_mm256_sub_pd(c, lo), inv),
        );
        acc[0] = _mm256_add_pd(acc[0], _mm256_mul_pd(x, x));
        acc[1] = _mm256_add_pd(acc[1], _mm256_mul_pd(y, y));
        acc[2] = _mm256_add_pd(acc[2], _mm256_mul_pd(w, w));
        acc[3] = _mm256_add_pd(acc[3], _mm256_mul_pd(x, y));
        acc[4] = _mm256_add_pd(acc[4], _mm256_mul_pd(x, w));
        acc[5] = _mm256_add_pd(acc[5], _mm256_mul_pd(y, w));
    }
    let mut lanes = [[0f64; LANES]; 6];
    for (l, a) in lanes.iter_mut().zip(&acc) {
        // SAFETY: an unaligned store of four f64 into a [f64; 4]
        unsafe { _mm256_storeu_pd(l.as_mut_ptr(), *a) };
    }
    finish3(lanes, &r0[chunks * LANES..], &r1[chunks * LANES..], &r2[chunks * LANES..], out);
}

/// One column of three rows min-max normalised as the reference does:
/// `x_max[x_max == x_min] = 1; x_min[x_max == x_min] = 0`.
#[inline(always)]
fn column(a: f32, b: f32, c: f32) -> [f64; 3] {
    let (a, b, c) = (f64::from(a), f64::from(b), f64::from(c));
    let mn = a.min(b).min(c);
    let mx = a.max(b).max(c);
    let hi = if mx == mn { 1.0 } else { mx };
    let lo = if hi == mn { 0.0 } else { mn };
    let inv = 1.0 / (hi - lo);
    [(a - lo) * inv, (b - lo) * inv, (c - lo) * inv]
}

#[inline(always)]
fn accumulate3_body(data: &[f32], len: usize, out: &mut Contribution) {
    let (r0, rest) = data.split_at(len);
    let (r1, r2) = rest.split_at(len);
    // s00 s11 s22 s01 s02 s12, each in LANES partial sums
    let mut acc = [[0f64; LANES]; 6];
    let chunks = len / LANES;
    for k in 0..chunks {
        let j = k * LANES;
        let (a, b, c) = (&r0[j..j + LANES], &r1[j..j + LANES], &r2[j..j + LANES]);
        add3(
            &mut acc,
            [column(a[0], b[0], c[0]), column(a[1], b[1], c[1]), column(a[2], b[2], c[2]), column(a[3], b[3], c[3])],
        );
    }
    let tail = chunks * LANES;
    finish3(acc, &r0[tail..], &r1[tail..], &r2[tail..], out);
}

/// Adds four normalised columns' products to the lanes' partial sums.
#[inline(always)]
fn add3(acc: &mut [[f64; LANES]; 6], z: [[f64; 3]; LANES]) {
    for l in 0..LANES {
        let [x, y, w] = z[l];
        acc[0][l] += x * x;
        acc[1][l] += y * y;
        acc[2][l] += w * w;
        acc[3][l] += x * y;
        acc[4][l] += x * w;
        acc[5][l] += y * w;
    }
}

/// Adds the last (fewer than four) columns, sums the lanes and adds them to
/// `out`: the same for both paths.
#[inline(always)]
fn finish3(mut acc: [[f64; LANES]; 6], r0: &[f32], r1: &[f32], r2: &[f32], out: &mut Contribution) {
    let mut z = [[0f64; 3]; LANES];
    for (l, zl) in z.iter_mut().enumerate().take(r0.len()) {
        *zl = column(r0[l], r1[l], r2[l]);
    }
    add3(&mut acc, z);
    let s: Vec<f64> = acc.iter().map(|a| a.iter().sum()).collect();
    for (i, v) in s[..3].iter().enumerate() {
        out.rowsq[i] += v;
        out.gram[i * 4] += v;
    }
    for (&(i, j), v) in [(0, 1), (0, 2), (1, 2)].iter().zip(&s[3..]) {
        out.gram[i * 3 + j] += v;
        out.gram[j * 3 + i] += v;
    }
}

impl KernelSums {
    /// Squared row norms of the normalised matrix.
    pub fn rowsq(&self) -> &[f64] {
        &self.rowsq
    }

    /// Gram matrix of the normalised matrix, row-major N x N.
    pub fn gram(&self) -> &[f64] {
        &self.gram
    }

    /// Whether two rows are identical (zero distance), which makes every
    /// kernel over them singular.
    pub fn identical_rows(&self) -> bool {
        let n = self.n;
        (0..n).any(|i| (i + 1..n).any(|j| self.rowsq[i] + self.rowsq[j] - 2.0 * self.gram[i * n + j] == 0.0))
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
    super::nan_as_lowest(f64::try_from(lad).unwrap_or(f64::NAN))
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
    fn hand_loop_equals_tensor_normalisation() {
        for rows in [2, 3, 5] {
            check_hand_loop(rows);
        }
    }

    fn check_hand_loop(rows: i64) {
        let m = Tensor::randn([rows, 1001], (Kind::Float, Device::Cpu));
        let _ = m.narrow(1, 7, 1).fill_(1.0);
        let _ = m.narrow(1, 9, 1).fill_(-2.5);
        let z = normalize_columns(&m.to_kind(Kind::Double));
        let gram = Vec::<f64>::try_from(z.matmul(&z.tr()).reshape([-1])).unwrap();
        let mut s = KernelSums::new(rows as usize);
        s.add(&m.shallow_clone());
        for (a, b) in s.gram().iter().zip(&gram) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
        assert!(!s.nonfinite());
        // the device path (tensor ops), run here on the CPU, gives the same sums
        let c = contribution_by_tensors(&m, rows as usize);
        assert_eq!(c.len, 1001);
        for (a, b) in c.gram.iter().zip(s.gram()) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
        for (a, b) in c.rowsq.iter().zip(s.rowsq()) {
            assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
        }
        let _ = m.narrow(1, 3, 1).fill_(f64::NAN);
        let mut s = KernelSums::new(rows as usize);
        s.add(&m);
        assert!(s.nonfinite());
    }

    #[test]
    fn streamed_sums_equal_whole_matrix_and_hand_kernel() {
        // Two "layers" of a 2-row matrix; rows after normalisation:
        // layer 1 columns [0,1],[0,1] -> rows (0,0) and (1,1); layer 2 [3,3] -> 0.
        let mut s = KernelSums::new(2);
        s.add(&Tensor::from_slice(&[0.0f32, 0.0, 1.0, 1.0]).reshape([2, 2]));
        s.add(&Tensor::from_slice(&[3.0f32, 3.0]).reshape([2, 1]));
        // the same tensor again adds the same again (served from the cache)
        let again = Tensor::from_slice(&[3.0f32, 3.0]).reshape([2, 1]);
        s.add(&again);
        s.add_again(&again);
        assert_eq!(s.len, 5);
        assert_eq!(s.rowsq(), &[0.0, 2.0]);
        assert_eq!(s.gram(), &[0.0, 0.0, 0.0, 2.0]);
        let k = s.kernel(0.5);
        // distance 2, gamma 0.5 -> exp(-1)
        assert_eq!(k, vec![1.0, (-1.0f64).exp(), (-1.0f64).exp(), 1.0]);
        let want = (1.0 - (-2.0f64).exp()).ln();
        assert!((logabsdet(&k, 2) - want).abs() < 1e-15);
    }

    #[test]
    fn identical_rows_are_told_from_a_tiny_gamma() {
        let mut s = KernelSums::new(3);
        s.add(&Tensor::from_slice(&[0.0f32, 1.0, 1.0, 0.0, 2.0, 5.0]).reshape([3, 2]));
        assert!(!s.identical_rows());
        // distinct rows, but a gamma so small that every entry is exp(-0) = 1
        assert_eq!(logabsdet(&s.kernel(1e-300), 3), f64::NEG_INFINITY);
        let mut same = KernelSums::new(2);
        same.add(&Tensor::from_slice(&[3.0f32, 3.0]).reshape([2, 1]));
        assert!(same.identical_rows());
    }

    #[test]
    fn avx2_and_portable_three_row_sums_are_bit_identical() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            for len in [1usize, 4, 7, 1001] {
                let m = Tensor::randn([3, len as i64], (Kind::Float, Device::Cpu));
                let _ = m.narrow(1, 0, 1).fill_(1.0); // a constant column of ones
                let data = Vec::<f32>::try_from(m.reshape([-1])).unwrap();
                let fresh = || Contribution { len: len as i64, rowsq: vec![0.0; 3], gram: vec![0.0; 9] };
                let (mut a, mut b) = (fresh(), fresh());
                accumulate3_body(&data, len, &mut a);
                // SAFETY: AVX2 is available (checked above)
                unsafe { accumulate3_avx2(&data, len, &mut b) };
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a.gram), bits(&b.gram), "len {len}");
                assert_eq!(bits(&a.rowsq), bits(&b.rowsq), "len {len}");
            }
            return;
        }
        eprintln!("skipped: this CPU has no AVX2, so only the portable path runs");
    }

    #[test]
    fn singular_kernel_is_neg_infinity() {
        assert_eq!(logabsdet(&[1.0; 9], 3), f64::NEG_INFINITY);
    }
}
