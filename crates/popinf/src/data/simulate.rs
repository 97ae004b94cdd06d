//! The notebook's toy universe, seeded and deterministic.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::catalog::{Measurements, SampleCatalog};
use crate::error::Result;
use crate::invalid;

/// Settings of the Gaussian toy: mu_i ~ N(theta_mu, theta_sigma),
/// x_i = mu_i + alpha * eps_i, and `n_samp` posterior samples per object
/// from N(x_i, alpha) (the posterior under a flat interim prior).
#[derive(Debug, Clone, PartialEq)]
pub struct ToySettings {
    pub n_obj: usize,
    pub n_samp: usize,
    pub alpha: f64,
    pub theta_mu: f64,
    pub theta_sigma: f64,
    pub seed: u64,
}

impl Default for ToySettings {
    /// The notebook's values.
    fn default() -> Self {
        Self {
            n_obj: 1000,
            n_samp: 100,
            alpha: 1.0,
            theta_mu: 0.0,
            theta_sigma: 1.0,
            seed: 42,
        }
    }
}

/// What the toy universe produced.
#[derive(Debug, Clone)]
pub struct ToyData {
    /// The true value of every object (unobservable in real life).
    pub mu_true: Vec<f64>,
    /// The noisy measurement x_i with its error alpha.
    pub measurements: Measurements,
    /// Each object's posterior samples, ln interim prior = 0 (flat).
    pub catalog: SampleCatalog,
}

/// Derives independent stream seeds from one user seed (SplitMix64), so
/// that, e.g., the simulation and each sampler get unrelated random numbers.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn simulate_gaussian_toy(s: &ToySettings) -> Result<ToyData> {
    if s.n_obj == 0 {
        return invalid!("n-obj must be at least 1, got 0");
    }
    if s.n_samp == 0 {
        return invalid!("n-samp must be at least 1, got 0");
    }
    if !(s.alpha.is_finite() && s.alpha > 0.0) {
        return invalid!(
            "alpha (the measurement noise) must be finite and positive, got {}",
            s.alpha
        );
    }
    if !s.theta_mu.is_finite() {
        return invalid!("theta_mu must be finite, got {}", s.theta_mu);
    }
    if !(s.theta_sigma.is_finite() && s.theta_sigma > 0.0) {
        return invalid!("theta_sigma must be finite and positive, got {}", s.theta_sigma);
    }
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(s.seed, 1));
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    // Same order as the notebook: all mu, then all noise, then samples.
    let mu_true: Vec<f64> = (0..s.n_obj)
        .map(|_| s.theta_mu + s.theta_sigma * normal())
        .collect();
    let x: Vec<f64> = mu_true.iter().map(|mu| mu + s.alpha * normal()).collect();
    let mut values = Vec::with_capacity(s.n_obj * s.n_samp);
    for &xi in &x {
        values.extend((0..s.n_samp).map(|_| xi + s.alpha * normal()));
    }
    let offsets = (0..=s.n_obj).map(|i| i * s.n_samp).collect();
    let catalog = SampleCatalog::with_flat_prior(1, values, 0.0, offsets)?;
    let measurements = Measurements::new(x, vec![s.alpha; s.n_obj])?;
    Ok(ToyData {
        mu_true,
        measurements,
        catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_distributed_as_specified() {
        let s = ToySettings {
            n_obj: 20_000,
            n_samp: 10,
            alpha: 0.5,
            theta_mu: 2.0,
            theta_sigma: 1.5,
            seed: 3,
        };
        let a = simulate_gaussian_toy(&s).unwrap();
        let b = simulate_gaussian_toy(&s).unwrap();
        assert_eq!(a.catalog, b.catalog);
        let n = s.n_obj as f64;
        let (m, sd) = crate::math::stats::mean_sd(&a.mu_true);
        // Standard errors: 1.5/sqrt(2e4) = 0.011 for the mean, ~0.008 for sd.
        assert!((m - 2.0).abs() < 0.045 && (sd - 1.5).abs() < 0.035, "{m} {sd}");
        // x - mu ~ N(0, alpha); samples - x ~ N(0, alpha).
        let noise: Vec<f64> = a
            .measurements
            .x()
            .iter()
            .zip(&a.mu_true)
            .map(|(x, mu)| x - mu)
            .collect();
        let (nm, nsd) = crate::math::stats::mean_sd(&noise);
        assert!(
            nm.abs() < 4.0 * 0.5 / n.sqrt() && (nsd - 0.5).abs() < 0.02,
            "{nm} {nsd}"
        );
        let obj = a.catalog.object(7);
        assert_eq!(obj.n_samples(), 10);
        assert!((0..10).all(|j| obj.ln_prior(j) == 0.0));
        assert_eq!(a.catalog.flat_ln_prior(), Some(0.0));
        assert!(
            simulate_gaussian_toy(&ToySettings {
                n_samp: 0,
                ..s.clone()
            })
            .is_err()
        );
        assert!(simulate_gaussian_toy(&ToySettings { alpha: -1.0, ..s }).is_err());
    }
}
