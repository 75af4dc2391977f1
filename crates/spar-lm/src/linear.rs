//! A linear layer whose weight is either a dense tensor (trainable or frozen) or a quantised
//! GGUF tensor, with an optional bias (Qwen2's q/k/v projections) and optionally a LoRA
//! adapter on top.

use candle_core::{quantized::QMatMul, Module, Result, Tensor};
use std::sync::Arc;

/// The weight of a [`Linear`] layer, shape `(out_features, in_features)`.
#[derive(Debug, Clone)]
pub enum Weight {
    /// A dense tensor (a `Var`'s tensor when the layer trains).
    Dense(Tensor),
    /// A quantised matrix (inference only: no gradient flows into it, but one flows through it
    /// into its input, so LoRA adapters on top still train).
    Quantized(Arc<QMatMul>),
}

/// A LoRA adapter `scale * B A` (Hu et al. 2021, eq. 3) added to a frozen weight.
#[derive(Debug, Clone)]
pub struct LoraPair {
    /// `A`, shape `(rank, in_features)`.
    pub a: Tensor,
    /// `B`, shape `(out_features, rank)`, zero at initialisation.
    pub b: Tensor,
    /// `alpha / rank`.
    pub scale: f64,
}

/// `y = x W^T (+ b) (+ scale x A^T B^T)`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub(crate) weight: Weight,
    pub(crate) bias: Option<Tensor>,
    pub(crate) lora: Option<LoraPair>,
}

impl Linear {
    /// A layer with a dense weight `(out, in)`.
    pub fn dense(weight: Tensor) -> Linear {
        Linear {
            weight: Weight::Dense(weight),
            bias: None,
            lora: None,
        }
    }

    /// The same layer with `bias` (shape `(out_features,)`) added to its output.
    pub fn with_bias(mut self, bias: Tensor) -> Linear {
        self.bias = Some(bias);
        self
    }

    /// The bias, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The same layer with every tensor detached from the autograd graph (storage shared, so
    /// later updates of the variables show through): for forward passes that need no gradient.
    pub fn detached(&self) -> Linear {
        Linear {
            weight: match &self.weight {
                Weight::Dense(t) => Weight::Dense(t.detach()),
                Weight::Quantized(q) => Weight::Quantized(q.clone()),
            },
            bias: self.bias.as_ref().map(Tensor::detach),
            lora: self.lora.as_ref().map(|p| LoraPair {
                a: p.a.detach(),
                b: p.b.detach(),
                scale: p.scale,
            }),
        }
    }

    /// A layer with a quantised weight.
    pub fn quantized(weight: Arc<QMatMul>) -> Linear {
        Linear {
            weight: Weight::Quantized(weight),
            bias: None,
            lora: None,
        }
    }

    /// The weight.
    pub fn weight(&self) -> &Weight {
        &self.weight
    }

    /// `(out_features, in_features)`.
    pub fn shape(&self) -> Result<(usize, usize)> {
        match &self.weight {
            Weight::Dense(w) => w.dims2(),
            Weight::Quantized(q) => match q.as_ref() {
                QMatMul::QTensor(t) => t.shape().dims2(),
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => t.dims2(),
            },
        }
    }

    /// The LoRA adapter, if any.
    pub fn lora(&self) -> Option<&LoraPair> {
        self.lora.as_ref()
    }

    /// Applies the layer to `xs` of shape `(..., in_features)`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let base = match &self.weight {
            Weight::Dense(w) => matmul_t(xs, w)?,
            Weight::Quantized(q) => q.forward(&xs.contiguous()?)?,
        };
        let base = match &self.bias {
            None => base,
            Some(b) => base.broadcast_add(b)?,
        };
        match &self.lora {
            None => Ok(base),
            Some(l) => base + (matmul_t(&matmul_t(xs, &l.a)?, &l.b)? * l.scale)?,
        }
    }
}

/// `xs W^T` for `xs` of any rank, as one 2-D matrix product.
pub(crate) fn matmul_t(xs: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = xs.dims();
    let inner = dims[dims.len() - 1];
    let rows = xs.elem_count() / inner.max(1);
    let out = xs.reshape((rows, inner))?.matmul(&w.t()?)?;
    let mut shape = dims.to_vec();
    *shape.last_mut().expect("rank >= 1") = w.dim(0)?;
    out.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_bias_is_added_to_every_row() {
        // W = [[1, 2], [3, 4]], b = [10, -1]; x = [1, 1] -> [3 + 10, 7 - 1] = [13, 6],
        // x = [2, 0] -> [2 + 10, 6 - 1] = [12, 5].
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev).unwrap();
        let layer = Linear::dense(w).with_bias(Tensor::new(&[10f32, -1.], &dev).unwrap());
        let x = Tensor::new(&[[[1f32, 1.], [2., 0.]]], &dev).unwrap();
        let y: Vec<Vec<f32>> = layer
            .forward(&x)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(y, [[13., 6.], [12., 5.]]);
        assert!(layer.detached().bias().is_some());
    }
}
