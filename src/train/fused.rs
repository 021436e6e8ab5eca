//! The full bilinear layer's weight update on the CPU, without its gradient in memory.
//!
//! dW[a, c*d_out + k] = sum_b m[b,a] t[b,c] g[b,k] for a batch of metrics m, texts t and the
//! loss gradient g of the layer's output. Built by autodiff, dW is a fresh 1.8 GB tensor on
//! every step, zeroed, copied once more by burn-flex, read by clipping and read again by Adam.
//! Here each text dimension c is one chunk: dW[:, c*d_out..(c+1)*d_out] = m^T diag(t[:,c]) g,
//! a 768 x 64 x 768 matrix product into a per-thread buffer, applied to the weight and its Adam
//! moments at once. Its norm, needed first for global clipping, comes from three b x b Gram
//! matrices: |dW|^2 = sum_{b,b'} (m_b.m_b')(t_b.t_b')(g_b.g_b').
//!
//! Each element is produced by one matrix product with a fixed summation order, so results do
//! not depend on the thread count. `tests/training.rs` checks the path against burn's autodiff
//! with the tensor-op Adam (itself checked against PyTorch).

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::optim::AdamCoeffs;
use crate::nn::kernels::dot_f64;

/// What the weight gradient is made of, on the host: row-major batch x dim matrices.
pub struct BilinearBatch {
    batch: usize,
    metric: Vec<f32>,
    text: Vec<f32>,
    grad: Vec<f32>,
    d_metric: usize,
    d_text: usize,
    d_out: usize,
}

fn host_matrix<B: Backend>(tensor: Tensor<B, 2>) -> (Vec<f32>, usize, usize) {
    let [rows, cols] = tensor.dims();
    (tensor.into_data().convert::<f32>().into_vec().expect("float data"), rows, cols)
}

impl BilinearBatch {
    pub fn new<B: Backend>(
        metric: Tensor<B, 2>,
        text: Tensor<B, 2>,
        output_grad: Tensor<B, 2>,
    ) -> Self {
        let (metric, batch, d_metric) = host_matrix(metric);
        let (text, _, d_text) = host_matrix(text);
        let (grad, _, d_out) = host_matrix(output_grad);
        BilinearBatch { batch, metric, text, grad, d_metric, d_text, d_out }
    }

    fn gram(&self, values: &[f32], dim: usize) -> Vec<f64> {
        let b = self.batch;
        let mut gram = vec![0.0f64; b * b];
        for i in 0..b {
            for j in 0..b {
                let (x, y) = (&values[i * dim..(i + 1) * dim], &values[j * dim..(j + 1) * dim]);
                gram[i * b + j] = dot_f64(x, y);
            }
        }
        gram
    }

    /// The squared Frobenius norm of the weight gradient, without building it.
    pub fn weight_grad_sum_sq(&self) -> f64 {
        let (m, t, g) = (
            self.gram(&self.metric, self.d_metric),
            self.gram(&self.text, self.d_text),
            self.gram(&self.grad, self.d_out),
        );
        m.iter().zip(&t).zip(&g).map(|((a, b), c)| a * b * c).sum()
    }

    /// Applies Adam to the weight (layout of [`crate::model::Bilinear`]: d_metric rows of
    /// d_text * d_out) with the gradient this batch implies.
    pub fn apply_adam(
        &self,
        weight: &mut [f32],
        first: &mut [f32],
        second: &mut [f32],
        coeffs: AdamCoeffs,
    ) {
        let (dm, dt, dout, b) = (self.d_metric, self.d_text, self.d_out, self.batch);
        let cols = dt * dout;
        assert!(
            weight.len() == dm * cols
                && first.len() == weight.len()
                && second.len() == weight.len(),
            "bilinear weight shape"
        );
        let shared = Shared {
            weight: weight.as_mut_ptr(),
            first: first.as_mut_ptr(),
            second: second.as_mut_ptr(),
        };
        (0..dt).into_par_iter().for_each_init(
            || (vec![0.0f32; b * dout], vec![0.0f32; dm * dout]),
            |(scaled_grad, chunk), c| {
                // diag(t[:, c]) g
                for row in 0..b {
                    let t = self.text[row * dt + c];
                    let (src, dst) = (
                        &self.grad[row * dout..(row + 1) * dout],
                        &mut scaled_grad[row * dout..(row + 1) * dout],
                    );
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = t * s);
                }
                // chunk (dm x dout) = m^T (dm x b) @ scaled_grad (b x dout)
                // SAFETY: the pointers cover the stated shapes; strides in elements.
                unsafe {
                    gemm::gemm(
                        dm,
                        dout,
                        b,
                        chunk.as_mut_ptr(),
                        1,
                        dout as isize,
                        false,
                        self.metric.as_ptr(),
                        dm as isize,
                        1,
                        scaled_grad.as_ptr(),
                        1,
                        dout as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for a in 0..dm {
                    let offset = a * cols + c * dout;
                    // SAFETY: chunk c owns columns c*dout..(c+1)*dout of every row; no two
                    // chunks overlap, so the mutable slices are disjoint across threads.
                    let (p, m, v) = unsafe { shared.row(offset, dout) };
                    coeffs.apply_all(p, &chunk[a * dout..(a + 1) * dout], m, v);
                }
            },
        );
    }
}

/// The weight and its moments, shared by the chunk workers (each writes its own columns).
struct Shared {
    weight: *mut f32,
    first: *mut f32,
    second: *mut f32,
}

unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Shared {
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, offset: usize, len: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
        // SAFETY: the caller gives each worker its own rows, inside the three buffers.
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.weight.add(offset), len),
                std::slice::from_raw_parts_mut(self.first.add(offset), len),
                std::slice::from_raw_parts_mut(self.second.add(offset), len),
            )
        }
    }
}
