//! Gaussian mixtures with stick-breaking weights: w_1 = frac_1,
//! w_k = frac_k prod_{j<k} (1 - frac_j), w_K = prod_{j<K} (1 - frac_j).

use crate::error::Result;
use crate::invalid;
use crate::model::population::{Family, HALF_LN_2PI, ModelSettings};

/// K Gaussians (mu_k, sigma_k) with stick-breaking weights (frac_k).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mixture {
    pub k: usize,
}

impl Family for Mixture {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        Ok(Mixture {
            k: settings.components.unwrap_or(2),
        })
    }
    fn param_names(&self) -> Vec<String> {
        let k = self.k;
        (1..=k)
            .map(|i| format!("mu_{i}"))
            .chain((1..=k).map(|i| format!("sigma_{i}")))
            .chain((1..k).map(|i| format!("frac_{i}")))
            .collect()
    }
    fn n_params(&self) -> usize {
        3 * self.k - 1
    }
    fn validate(&self) -> Result<()> {
        if !(1..=10).contains(&self.k) {
            return invalid!("a mixture needs 1 to 10 components, got {}", self.k);
        }
        Ok(())
    }
    fn valid(&self, theta: &[f64]) -> bool {
        let k = self.k;
        theta[k..2 * k].iter().all(|&s| s > 0.0) && theta[2 * k..].iter().all(|&f| f > 0.0 && f < 1.0)
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        let k = self.k;
        let (mus, rest) = theta.split_at(k);
        let (sigmas, fracs) = rest.split_at(k);
        // ln w_k by stick breaking.
        let mut ln_w = [0.0f64; 16];
        let mut stick = 0.0;
        for c in 0..k {
            ln_w[c] = stick + if c + 1 < k { fracs[c].ln() } else { 0.0 };
            if c + 1 < k {
                stick += (-fracs[c]).ln_1p();
            }
        }
        let mut terms = [0.0f64; 16];
        let mut zs = [0.0f64; 16];
        let mut m = f64::NEG_INFINITY;
        for c in 0..k {
            let z = (x - mus[c]) / sigmas[c];
            zs[c] = z;
            terms[c] = ln_w[c] - 0.5 * z * z - sigmas[c].ln() - HALF_LN_2PI;
            m = m.max(terms[c]);
        }
        let total: f64 = terms[..k].iter().map(|t| (t - m).exp()).sum();
        if let Some(g) = g {
            let mut tail = 0.0;
            for c in (0..k).rev() {
                let r = (terms[c] - m).exp() / total;
                g[c] = r * zs[c] / sigmas[c];
                g[k + c] = r * (zs[c] * zs[c] - 1.0) / sigmas[c];
                if c + 1 < k {
                    g[2 * k + c] = r / fracs[c] - tail / (1.0 - fracs[c]);
                }
                tail += r;
            }
        }
        m + total.ln()
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        let k = self.k;
        let lo = (0..k)
            .map(|c| theta[c] - 12.0 * theta[k + c])
            .fold(f64::INFINITY, f64::min);
        let hi = (0..k)
            .map(|c| theta[c] + 12.0 * theta[k + c])
            .fold(f64::NEG_INFINITY, f64::max);
        (lo, hi, theta[..k].to_vec())
    }
    fn ln_norm_grad(&self, _: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        0.0
    }
}
