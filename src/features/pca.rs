//! Principal components of the text embedding, fitted on a fold's training texts (the gbdt
//! family's `text_components` inputs). Trees split one column at a time, so a few directions
//! of largest variance carry more than hundreds of raw embedding columns.

use crate::data::Matrix;

/// The centre and the leading unit directions of a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub mean: Vec<f64>,
    /// Row-major `k x dim`, by decreasing variance; each row has its largest-magnitude entry
    /// positive (eigenvectors have no sign of their own).
    pub components: Vec<f64>,
    pub k: usize,
}

/// Subspace iterations: enough for the leading directions of an embedding covariance to
/// settle far below f32 precision (checked against numpy's eigh in the tests).
const ITERATIONS: usize = 300;

impl Pca {
    /// The leading `k` (at most `dim`) principal directions of `rows` of `texts`.
    pub fn fit(texts: &Matrix, rows: &[usize], k: usize) -> Pca {
        let dim = texts.cols;
        let k = k.min(dim);
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0f64; dim];
        for &r in rows {
            for (m, &v) in mean.iter_mut().zip(texts.row(r)) {
                *m += v as f64 / n;
            }
        }
        let covariance = covariance(texts, rows, &mean);
        let components = leading_eigenvectors(&covariance, dim, k);
        Pca { mean, components, k }
    }

    /// The coordinates of each row along the components (`rows x k`).
    pub fn project(&self, texts: &Matrix) -> Matrix {
        let dim = self.mean.len();
        let mut out = Vec::with_capacity(texts.rows * self.k);
        let mut centred = vec![0.0f64; dim];
        for r in 0..texts.rows {
            for ((c, &v), m) in centred.iter_mut().zip(texts.row(r)).zip(&self.mean) {
                *c = v as f64 - m;
            }
            for component in self.components.chunks(dim.max(1)).take(self.k) {
                out.push(component.iter().zip(&centred).map(|(a, b)| a * b).sum::<f64>() as f32);
            }
        }
        Matrix::new(texts.rows, self.k, out)
    }
}

fn covariance(texts: &Matrix, rows: &[usize], mean: &[f64]) -> Vec<f64> {
    let dim = mean.len();
    let mut cov = vec![0.0f64; dim * dim];
    let mut centred = vec![0.0f64; dim];
    for &r in rows {
        for ((c, &v), m) in centred.iter_mut().zip(texts.row(r)).zip(mean) {
            *c = v as f64 - m;
        }
        for i in 0..dim {
            let ci = centred[i];
            let row = &mut cov[i * dim..(i + 1) * dim];
            for (slot, cj) in row[i..].iter_mut().zip(&centred[i..]) {
                *slot += ci * cj;
            }
        }
    }
    for i in 0..dim {
        for j in 0..i {
            cov[i * dim + j] = cov[j * dim + i];
        }
    }
    let n = rows.len().max(1) as f64;
    cov.iter_mut().for_each(|v| *v /= n);
    cov
}

/// Orthogonal (subspace) iteration on a symmetric positive semi-definite matrix, then a
/// Rayleigh-Ritz step so the directions come out sorted by their own variance.
fn leading_eigenvectors(matrix: &[f64], dim: usize, k: usize) -> Vec<f64> {
    if k == 0 {
        return Vec::new();
    }
    // A fixed start that is not orthogonal to any eigenvector in practice.
    let mut basis: Vec<f64> =
        (0..k * dim).map(|i| ((i * 2654435761usize) % 1009) as f64 / 1009.0 - 0.5).collect();
    orthonormalise(&mut basis, dim);
    let mut next = vec![0.0f64; k * dim];
    for _ in 0..ITERATIONS {
        multiply(matrix, &basis, &mut next, dim);
        std::mem::swap(&mut basis, &mut next);
        orthonormalise(&mut basis, dim);
    }
    // Rayleigh-Ritz: order the basis vectors by v' A v and rotate within the small subspace
    // by a Jacobi eigen-decomposition of the k x k projected matrix.
    multiply(matrix, &basis, &mut next, dim);
    let mut small = vec![0.0f64; k * k];
    for a in 0..k {
        for b in 0..k {
            small[a * k + b] = dot(&basis[a * dim..(a + 1) * dim], &next[b * dim..(b + 1) * dim]);
        }
    }
    let (values, vectors) = jacobi_eigen(small, k);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut out = vec![0.0f64; k * dim];
    for (slot, &e) in order.iter().enumerate() {
        let target = &mut out[slot * dim..(slot + 1) * dim];
        for a in 0..k {
            let weight = vectors[a * k + e];
            for (t, v) in target.iter_mut().zip(&basis[a * dim..(a + 1) * dim]) {
                *t += weight * v;
            }
        }
        let largest =
            target.iter().copied().fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if largest < 0.0 {
            target.iter_mut().for_each(|v| *v = -*v);
        }
    }
    out
}

fn multiply(matrix: &[f64], basis: &[f64], out: &mut [f64], dim: usize) {
    for (vector, result) in basis.chunks(dim).zip(out.chunks_mut(dim)) {
        for (i, slot) in result.iter_mut().enumerate() {
            *slot = dot(&matrix[i * dim..(i + 1) * dim], vector);
        }
    }
}

/// Modified Gram-Schmidt over the rows; a row that collapses (rank deficiency) becomes 0.
fn orthonormalise(basis: &mut [f64], dim: usize) {
    let k = basis.len() / dim;
    for a in 0..k {
        for b in 0..a {
            let (done, rest) = basis.split_at_mut(a * dim);
            let projection = dot(&done[b * dim..(b + 1) * dim], &rest[..dim]);
            for (v, u) in rest[..dim].iter_mut().zip(&done[b * dim..(b + 1) * dim]) {
                *v -= projection * u;
            }
        }
        let row = &mut basis[a * dim..(a + 1) * dim];
        let norm = dot(row, row).sqrt();
        let scale = if norm > 1e-300 { 1.0 / norm } else { 0.0 };
        row.iter_mut().for_each(|v| *v *= scale);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a small
/// symmetric matrix by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}
