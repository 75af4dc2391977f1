//! Differentiable building blocks: RMSNorm, softmax over the last dimension and rotary
//! embeddings.
//!
//! candle's fused `softmax_last_dim`, `rms_norm` and `rope` kernels have no backward: the
//! gradient silently stops at them (`docs/candle.md`). Each op here has two
//! implementations with the same result:
//!
//! * on CPU with `f32` tensors, a fused kernel written as a candle `CustomOp` **with** a
//!   hand-written backward (the tests check each backward against finite differences);
//! * everywhere else (CUDA, other dtypes), a composition of differentiable candle ops.
//!
//! [`use_fused`] says which one runs; the tests check that the two agree.

use candle_core::{
    backprop::GradStore, bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result,
    Shape, Storage, Tensor, D,
};
use rayon::prelude::*;

/// Rows below this many elements in total run on one thread (rayon's overhead dominates).
const PARALLEL_MIN: usize = 1 << 14;

/// Whether the fused CPU kernels apply to `xs` (CPU device, `f32`).
pub fn use_fused(xs: &Tensor) -> bool {
    xs.device().is_cpu() && xs.dtype() == DType::F32
}

/// Runs `f` on the contiguous `f32` data of `t` (copying only if `t` is not contiguous).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("spar-lm op: tensor is not contiguous")
    };
    match &*storage {
        Storage::Cpu(CpuStorage::F32(data)) => Ok(f(&data[start..end])),
        _ => bail!("spar-lm op: expected an f32 CPU tensor"),
    }
}

/// The contiguous `f32` slice of a custom op's CPU input.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        bail!("{op}: input is not contiguous")
    };
    match s {
        CpuStorage::F32(data) => Ok(&data[start..end]),
        _ => bail!("{op}: expected an f32 tensor"),
    }
}

/// Applies `f(row_in, row_out)` to every row of length `width`, in parallel when large.
fn map_rows(input: &[f32], width: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; input.len()];
    if input.len() >= PARALLEL_MIN {
        out.par_chunks_mut(width)
            .zip(input.par_chunks(width))
            .for_each(|(o, i)| f(i, o));
    } else {
        out.chunks_mut(width)
            .zip(input.chunks(width))
            .for_each(|(o, i)| f(i, o));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

/// RMSNorm over the last dimension: `y = x / sqrt(mean(x^2) + eps) * weight`
/// (Zhang and Sennrich 2019, eq. 4), differentiable in both `xs` and `weight`.
pub fn rms_norm(xs: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    if use_fused(xs) && weight.dtype() == DType::F32 {
        xs.contiguous()?
            .apply_op2(&weight.contiguous()?, RmsNormOp { eps: eps as f32 })
    } else {
        rms_norm_composed(xs, weight, eps)
    }
}

/// RMSNorm from differentiable candle ops (the reference for the fused kernel).
pub fn rms_norm_composed(xs: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let mean_sq = xs.sqr()?.mean_keepdim(D::Minus1)?;
    xs.broadcast_div(&(mean_sq + eps)?.sqrt()?)?
        .broadcast_mul(weight)
}

struct RmsNormOp {
    eps: f32,
}

impl RmsNormOp {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let mean_sq = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        1.0 / (mean_sq + self.eps).sqrt()
    }
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "spar-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = slice(s1, l1, self.name())?;
        let weight = slice(s2, l2, self.name())?;
        let width = weight.len();
        if l1.dims().last() != Some(&width) {
            bail!("rms_norm: weight {width} vs input {:?}", l1.dims())
        }
        let out = map_rows(xs, width, |x, y| {
            let r = self.inv_rms(x);
            for ((y, x), w) in y.iter_mut().zip(x).zip(weight) {
                *y = x * r * w;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// With `r = 1/rms(x)` and `xhat = x r`: `dw = sum_rows(dy * xhat)` and
    /// `dx = r * (dy w - xhat * mean(dy w xhat))`.
    fn bwd(
        &self,
        xs: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let width = weight.dim(0)?;
        let (dx, dw) = with_f32(xs, |x| {
            with_f32(weight, |w| {
                with_f32(grad, |dy| {
                    let rows = x.len() / width;
                    let chunk = rows.div_ceil(rayon::current_num_threads().max(1)).max(1);
                    let mut dx = vec![0f32; x.len()];
                    let partial: Vec<Vec<f32>> = dx
                        .par_chunks_mut(chunk * width)
                        .enumerate()
                        .map(|(c, dx)| {
                            let mut dw = vec![0f32; width];
                            let base = c * chunk * width;
                            for (i, dx) in dx.chunks_mut(width).enumerate() {
                                let at = base + i * width;
                                let (x, dy) = (&x[at..at + width], &dy[at..at + width]);
                                let r = self.inv_rms(x);
                                let mut dot = 0f32;
                                for k in 0..width {
                                    let xhat = x[k] * r;
                                    dw[k] += dy[k] * xhat;
                                    dot += dy[k] * w[k] * xhat;
                                }
                                let mean = dot / width as f32;
                                for k in 0..width {
                                    dx[k] = r * (dy[k] * w[k] - x[k] * r * mean);
                                }
                            }
                            dw
                        })
                        .collect();
                    let mut dw = vec![0f32; width];
                    for p in partial {
                        dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                    }
                    (dx, dw)
                })
            })
        })???;
        let dx = Tensor::from_vec(dx, xs.shape(), xs.device())?;
        let dw = Tensor::from_vec(dw, width, xs.device())?;
        Ok((Some(dx), Some(dw)))
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax

/// Softmax over the last dimension, differentiable.
pub fn softmax_last(xs: &Tensor) -> Result<Tensor> {
    if use_fused(xs) {
        xs.contiguous()?.apply_op1(SoftmaxOp)
    } else {
        candle_nn::ops::softmax(xs, D::Minus1)
    }
}

struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "spar-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let xs = slice(s, l, self.name())?;
        let width = *l.dims().last().unwrap_or(&1);
        let out = map_rows(xs, width, |x, y| {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (y, x) in y.iter_mut().zip(x) {
                *y = (x - max).exp();
                sum += *y;
            }
            let inv = 1.0 / sum;
            y.iter_mut().for_each(|y| *y *= inv);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    /// `dx = y * (dy - sum(dy * y))` per row.
    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let width = res.dim(D::Minus1)?;
        let dx = with_f32(res, |y| {
            with_f32(grad, |dy| {
                let mut dx = vec![0f32; y.len()];
                let kernel = |(dx, (y, dy)): (&mut [f32], (&[f32], &[f32]))| {
                    let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
                    for k in 0..dx.len() {
                        dx[k] = y[k] * (dy[k] - dot);
                    }
                };
                if y.len() >= PARALLEL_MIN {
                    dx.par_chunks_mut(width)
                        .zip(y.par_chunks(width).zip(dy.par_chunks(width)))
                        .for_each(kernel);
                } else {
                    dx.chunks_mut(width)
                        .zip(y.chunks(width).zip(dy.chunks(width)))
                        .for_each(kernel);
                }
                dx
            })
        })??;
        Ok(Some(Tensor::from_vec(dx, res.shape(), res.device())?))
    }
}

// ---------------------------------------------------------------------------------------------
// Rotary embeddings

/// How a head's dimensions are paired for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeKind {
    /// Hugging Face Llama: dimension `i` pairs with `i + head_dim/2` (`rotate_half`).
    Half,
    /// GGUF / llama.cpp weights: dimension `2i` pairs with `2i + 1`.
    Interleaved,
}

/// Rotates `xs` of shape `(batch, seq, heads, head_dim)` by the angles whose cosines and sines
/// are `cos`, `sin`, of shape `(seq, head_dim/2)` (same positions for every sequence) or
/// `(batch, seq, head_dim/2)` (a position per sequence). Differentiable in `xs`; RoFormer
/// (Su et al. 2021, eq. 34).
pub fn rope(xs: &Tensor, cos: &Tensor, sin: &Tensor, kind: RopeKind) -> Result<Tensor> {
    if use_fused(xs) && cos.dtype() == DType::F32 {
        xs.contiguous()?.apply_op3(
            &cos.contiguous()?,
            &sin.contiguous()?,
            RopeOp {
                kind,
                inverse: false,
            },
        )
    } else {
        rope_composed(xs, cos, sin, kind)
    }
}

/// Rotary embeddings from differentiable candle ops (the reference for the fused kernel).
pub fn rope_composed(xs: &Tensor, cos: &Tensor, sin: &Tensor, kind: RopeKind) -> Result<Tensor> {
    let (b_sz, seq_len, heads, head_dim) = xs.dims4()?;
    // (batch or 1, seq, 1, head_dim/2) so they broadcast over heads.
    let expand = |t: &Tensor| -> Result<Tensor> {
        match t.rank() {
            2 => t.unsqueeze(0)?.unsqueeze(2),
            _ => t.unsqueeze(2),
        }
    };
    let (cos, sin) = (expand(cos)?, expand(sin)?);
    let half = head_dim / 2;
    match kind {
        RopeKind::Half => {
            let x1 = xs.narrow(D::Minus1, 0, half)?;
            let x2 = xs.narrow(D::Minus1, half, half)?;
            let y1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
            let y2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
            Tensor::cat(&[y1, y2], D::Minus1)
        }
        RopeKind::Interleaved => {
            let pairs = xs.reshape((b_sz, seq_len, heads, half, 2))?;
            let x1 = pairs.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
            let x2 = pairs.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
            let y1 = (x1.broadcast_mul(&cos)? - x2.broadcast_mul(&sin)?)?;
            let y2 = (x2.broadcast_mul(&cos)? + x1.broadcast_mul(&sin)?)?;
            Tensor::stack(&[y1, y2], D::Minus1)?.reshape((b_sz, seq_len, heads, head_dim))
        }
    }
}

struct RopeOp {
    kind: RopeKind,
    /// Rotate by the negative angle (the transpose of the rotation: the backward pass).
    inverse: bool,
}

impl CustomOp3 for RopeOp {
    fn name(&self) -> &'static str {
        "spar-rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let xs = slice(s1, l1, self.name())?;
        let cos = slice(s2, l2, self.name())?;
        let sin = slice(s3, l3, self.name())?;
        let &[b_sz, seq_len, heads, head_dim] = l1.dims() else {
            bail!(
                "rope: expected (batch, seq, heads, head_dim), got {:?}",
                l1.dims()
            )
        };
        let half = head_dim / 2;
        let per_sequence = match l2.dims() {
            [s, h] if *s == seq_len && *h == half => false,
            [b, s, h] if *b == b_sz && *s == seq_len && *h == half => true,
            d => bail!("rope: cos/sin {d:?} do not fit input {:?}", l1.dims()),
        };
        let sign = if self.inverse { -1f32 } else { 1f32 };
        let kind = self.kind;
        let mut out = vec![0f32; xs.len()];
        let row = heads * head_dim;
        let kernel = |(pos, (y, x)): (usize, (&mut [f32], &[f32]))| {
            // `pos` indexes (batch, seq) rows.
            let table = if per_sequence { pos } else { pos % seq_len } * half;
            let (c, s) = (&cos[table..table + half], &sin[table..table + half]);
            for (y, x) in y.chunks_mut(head_dim).zip(x.chunks(head_dim)) {
                for i in 0..half {
                    let (a, b) = match kind {
                        RopeKind::Half => (i, i + half),
                        RopeKind::Interleaved => (2 * i, 2 * i + 1),
                    };
                    let (ci, si) = (c[i], sign * s[i]);
                    y[a] = x[a] * ci - x[b] * si;
                    y[b] = x[b] * ci + x[a] * si;
                }
            }
        };
        if xs.len() >= PARALLEL_MIN {
            out.par_chunks_mut(row)
                .zip(xs.par_chunks(row))
                .enumerate()
                .for_each(kernel);
        } else {
            out.chunks_mut(row)
                .zip(xs.chunks(row))
                .enumerate()
                .for_each(kernel);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let inverse = RopeOp {
            kind: self.kind,
            inverse: !self.inverse,
        };
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &inverse)?;
        Ok((Some(dx), None, None))
    }
}

/// The gradient of `t` in `grads`, or an error naming it if it has none.
pub fn grad_of<'a>(grads: &'a GradStore, t: &Tensor, name: &str) -> Result<&'a Tensor> {
    match grads.get(t) {
        Some(g) => Ok(g),
        None => bail!("no gradient reached {name}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    pub(crate) fn randn(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Checks the analytic gradient of `loss(x) = sum(f(x) * probe)` against central finite
    /// differences (in f64 arithmetic on f32 data) at every coordinate of `x`.
    pub(crate) fn check_gradient(x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
        let probe = randn(f(x).unwrap().dims(), 99);
        let loss = |x: &Tensor| -> f64 {
            let y = f(x).unwrap().to_dtype(DType::F64).unwrap();
            let p = probe.to_dtype(DType::F64).unwrap();
            (y * p)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let var = Var::from_tensor(x).unwrap();
        let y = f(var.as_tensor()).unwrap();
        let grads = (y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        let analytic: Vec<f32> = grad_of(&grads, var.as_tensor(), "x")
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let h = 1e-2f32;
        let mut worst = 0f64;
        for i in 0..base.len() {
            let mut plus = base.clone();
            plus[i] += h;
            let mut minus = base.clone();
            minus[i] -= h;
            let plus = Tensor::from_vec(plus, x.shape(), x.device()).unwrap();
            let minus = Tensor::from_vec(minus, x.shape(), x.device()).unwrap();
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
            let err = (numeric - analytic[i] as f64).abs() / (1.0 + numeric.abs());
            worst = worst.max(err);
        }
        assert!(worst < 2e-3, "gradient check: worst relative error {worst}");
    }

    #[test]
    fn rms_norm_fused_matches_composed_and_hand_value() {
        // One row [3, 4]: mean square 12.5, so y = [3, 4] / sqrt(12.5 + 0) * [1, 2].
        let x = Tensor::new(&[[3f32, 4.0]], &Device::Cpu).unwrap();
        let w = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = rms_norm(&x, &w, 0.0).unwrap().to_vec2().unwrap();
        let r = 12.5f32.sqrt();
        assert!((y[0][0] - 3.0 / r).abs() < 1e-6 && (y[0][1] - 8.0 / r).abs() < 1e-6);

        let x = randn(&[3, 5, 16], 1);
        let w = randn(&[16], 2);
        let fused = rms_norm(&x, &w, 1e-5).unwrap();
        let composed = rms_norm_composed(&x, &w, 1e-5).unwrap();
        assert!(max_abs_diff(&fused, &composed) < 1e-5);
    }

    #[test]
    fn rms_norm_gradients_match_finite_differences() {
        let x = randn(&[2, 3, 8], 3);
        let w = randn(&[8], 4);
        check_gradient(&x, |x| rms_norm(x, &w, 1e-5));
        check_gradient(&w, |w| rms_norm(&x, w, 1e-5));
    }

    #[test]
    fn softmax_fused_matches_composed_and_gradient_check() {
        // softmax([0, ln 3]) = [1/4, 3/4].
        let x = Tensor::new(&[[0f32, 3f32.ln()]], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = softmax_last(&x).unwrap().to_vec2().unwrap();
        assert!((y[0][0] - 0.25).abs() < 1e-6 && (y[0][1] - 0.75).abs() < 1e-6);

        let x = randn(&[2, 4, 7], 5);
        let composed = candle_nn::ops::softmax(&x, D::Minus1).unwrap();
        assert!(max_abs_diff(&softmax_last(&x).unwrap(), &composed) < 1e-6);
        check_gradient(&x, softmax_last);
    }

    #[test]
    fn rope_fused_matches_composed_and_gradient_check() {
        for kind in [RopeKind::Half, RopeKind::Interleaved] {
            let x = randn(&[2, 3, 2, 8], 6);
            let angles = randn(&[3, 4], 7);
            let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
            let fused = rope(&x, &cos, &sin, kind).unwrap();
            let composed = rope_composed(&x, &cos, &sin, kind).unwrap();
            assert!(max_abs_diff(&fused, &composed) < 1e-6, "{kind:?}");
            check_gradient(&x, |x| rope(x, &cos, &sin, kind));

            // Per-sequence positions.
            let angles = randn(&[2, 3, 4], 8);
            let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
            let fused = rope(&x, &cos, &sin, kind).unwrap();
            let composed = rope_composed(&x, &cos, &sin, kind).unwrap();
            assert!(
                max_abs_diff(&fused, &composed) < 1e-6,
                "{kind:?} per sequence"
            );
            check_gradient(&x, |x| rope(x, &cos, &sin, kind));
        }
        // Hand case: head_dim 2 rotated by 90 degrees maps (1, 0) to (0, 1).
        let x = Tensor::new(&[1f32, 0.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 2))
            .unwrap();
        let cos = Tensor::new(&[[0f32]], &Device::Cpu).unwrap();
        let sin = Tensor::new(&[[1f32]], &Device::Cpu).unwrap();
        let y: Vec<f32> = rope(&x, &cos, &sin, RopeKind::Half)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, vec![0.0, 1.0]);
    }
}
