//! Preference losses on sequence log-probabilities: [`Dpo`], [`Ipo`].

use candle_core::Tensor;

use super::*;

/// Statistics of one preference-loss evaluation (no gradient).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairStats {
    /// The loss (mean over pairs).
    pub loss: f64,
    /// Mean implicit reward margin: `beta * h` for [`Dpo`] (the implicit reward
    /// `beta log(pi / pi_ref)` of Rafailov et al. 2023, eq. 5), `h` for [`Ipo`], with
    /// `h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))`.
    pub margin: f64,
    /// Fraction of pairs whose margin is positive (the chosen answer is preferred).
    pub accuracy: f64,
    /// Number of pairs.
    pub pairs: usize,
}

/// A loss on preference pairs from sequence log-probabilities ([`sequence_logp`]).
pub trait PairLoss: std::fmt::Debug {
    /// The mean loss over `P` pairs (differentiable in `chosen` and `rejected`, each `(P,)`:
    /// the policy's log-probabilities of the preferred and the dispreferred answers) given
    /// the reference's `ref_chosen` and `ref_rejected` (no gradient), and its statistics.
    fn loss(
        &self,
        chosen: &Tensor,
        rejected: &Tensor,
        ref_chosen: &Tensor,
        ref_rejected: &Tensor,
    ) -> Result<(Tensor, PairStats)>;
    /// A short name for logs (`dpo`, `ipo`).
    fn name(&self) -> &'static str;
}

/// `h = (chosen - ref_chosen) - (rejected - ref_rejected)`, differentiable in the policy's
/// log-probabilities, after checking that all four are `(P,)` with `P > 0`.
fn log_ratio_gap(
    name: &str,
    chosen: &Tensor,
    rejected: &Tensor,
    ref_chosen: &Tensor,
    ref_rejected: &Tensor,
) -> Result<Tensor> {
    let p = chosen.dims1().map_err(|_| {
        invalid(format!(
            "{name}: chosen must be (P,) sequence log-probabilities, got {:?}",
            chosen.dims()
        ))
    })?;
    for (what, t) in [
        ("rejected", rejected),
        ("ref_chosen", ref_chosen),
        ("ref_rejected", ref_rejected),
    ] {
        if t.dims() != [p] {
            return Err(invalid(format!(
                "{name}: {what} has shape {:?}, chosen has ({p},)",
                t.dims()
            )));
        }
    }
    if p == 0 {
        return Err(invalid(format!("{name}: no pairs")));
    }
    let dtype = chosen.dtype();
    let ref_chosen = ref_chosen.detach().to_dtype(dtype)?;
    let ref_rejected = ref_rejected.detach().to_dtype(dtype)?;
    let rejected = rejected.to_dtype(dtype)?;
    Ok(((chosen - ref_chosen)? - (rejected - ref_rejected)?)?)
}

/// `softplus(x) = log(1 + e^x) = relu(x) + log(1 + e^{-|x|})`, stable for any `x`, from
/// differentiable ops. relu's and abs' gradients at 0 are both taken from the right (1 and
/// +1), which gives the exact `softplus'(0) = 1/2` (a `maximum(x, 0)` would split the tie and
/// give 0).
fn softplus(x: &Tensor) -> Result<Tensor> {
    let tail = (x.abs()?.neg()?.exp()? + 1.0)?.log()?;
    Ok((x.relu()? + tail)?)
}

fn pair_stats(loss: &Tensor, margin: &Tensor) -> Result<PairStats> {
    let margin = margin.detach();
    let p = margin.dims1()?;
    Ok(PairStats {
        loss: value(loss)?,
        margin: value(&margin.mean_all()?)?,
        accuracy: value(&margin.gt(0.0)?.to_dtype(DType::F64)?.mean_all()?)?,
        pairs: p,
    })
}

/// DPO (Rafailov et al. 2023, eq. 7):
/// `L = -log sigmoid(beta h)`, `h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) -
/// log pi_ref(y_l))`, averaged over pairs; `-log sigmoid(x) = softplus(-x)` computed stably.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dpo {
    /// `beta`, the strength of the implicit KL regularisation (0.1 in the paper).
    pub beta: f64,
}

impl PairLoss for Dpo {
    fn loss(
        &self,
        chosen: &Tensor,
        rejected: &Tensor,
        ref_chosen: &Tensor,
        ref_rejected: &Tensor,
    ) -> Result<(Tensor, PairStats)> {
        let h = log_ratio_gap(self.name(), chosen, rejected, ref_chosen, ref_rejected)?;
        let margin = (h * self.beta)?;
        // -log sigmoid(beta h) = softplus(-beta h) (DPO eq. 7).
        let loss = softplus(&margin.neg()?)?.mean_all()?;
        let stats = pair_stats(&loss, &margin)?;
        Ok((loss, stats))
    }

    fn name(&self) -> &'static str {
        "dpo"
    }
}

/// IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
/// Preferences", eq. 17): `L = (h - 1/(2 tau))^2` with `h` as in [`Dpo`], averaged over
/// pairs: a regression of the log-ratio gap onto `1/(2 tau)` that, unlike DPO, does not
/// push it to infinity on deterministic preferences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ipo {
    /// `tau`, the regularisation (the target gap is `1/(2 tau)`).
    pub tau: f64,
}

impl PairLoss for Ipo {
    fn loss(
        &self,
        chosen: &Tensor,
        rejected: &Tensor,
        ref_chosen: &Tensor,
        ref_rejected: &Tensor,
    ) -> Result<(Tensor, PairStats)> {
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(invalid(format!(
                "ipo: tau must be positive, got {}",
                self.tau
            )));
        }
        let h = log_ratio_gap(self.name(), chosen, rejected, ref_chosen, ref_rejected)?;
        // (h - 1/(2 tau))^2 (IPO eq. 17).
        let loss = (&h - 1.0 / (2.0 * self.tau))?.sqr()?.mean_all()?;
        let stats = pair_stats(&loss, &h)?;
        Ok((loss, stats))
    }

    fn name(&self) -> &'static str {
        "ipo"
    }
}
