//! Seeded random numbers for weight initialisation.

use rand::Rng;

/// `n` draws from a normal distribution with mean 0 and standard deviation `std`
/// (Box-Muller transform on the generator's uniform draws).
pub fn normal_vec(rng: &mut impl Rng, n: usize, std: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // in (0, 1]
        let u2: f64 = rng.gen::<f64>();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let angle = 2.0 * std::f64::consts::PI * u2;
        out.push((r * angle.cos()) as f32);
        out.push((r * angle.sin()) as f32);
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn normal_draws_have_the_requested_moments() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let xs = normal_vec(&mut rng, 100_000, 2.0);
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        // Standard error of the mean is 2/sqrt(1e5) = 0.0063; of the variance about 0.018.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 4.0).abs() < 0.1, "variance {var}");
    }
}
