//! Gaussian mixtures with stick-breaking weights: w_1 = frac_1,
//! w_k = frac_k prod_{j<k} (1 - frac_j), w_K = prod_{j<K} (1 - frac_j).

use crate::error::Result;
use crate::invalid;
use crate::model::population::{Family, Feature, HALF_LN_2PI, KernelForm, MAX_TERMS, ModelSettings};

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
    fn param_domains(&self) -> Vec<crate::model::prior::Support> {
        use crate::model::prior::Support;
        let k = self.k;
        let mut d = vec![Support::Real; k];
        d.extend(vec![Support::Positive; k]);
        d.extend(vec![Support::Interval(0.0, 1.0); k - 1]);
        d
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

    /// Up to [`MAX_TERMS`] components: the fused kernel's.
    fn kernel_feature(&self) -> Option<Feature> {
        (self.k <= MAX_TERMS).then_some(Feature::Square)
    }

    /// Term c: ln w_c - ln sigma_c - ln(2 pi)/2 - (d - delta_c)^2 / (2
    /// sigma_c^2), d = x - x0, delta_c = mu_c - x0, with x0 the components'
    /// mean (so that no delta is larger than half their spread: the
    /// exponents' rounding is ~2^-52 |c1 d|). d/dmu_c = (d - delta_c) /
    /// sigma_c^2, d/dsigma_c = -1/sigma_c + (d - delta_c)^2 / sigma_c^3; d ln
    /// w_c / dfrac_j = 1/frac_j for c = j, -1/(1 - frac_j) for c > j.
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        let k = self.k;
        if k > MAX_TERMS {
            return false;
        }
        let (mus, rest) = theta.split_at(k);
        let (sigmas, fracs) = rest.split_at(k);
        form.feature = Feature::Square;
        form.terms = k;
        form.x0 = mus.iter().sum::<f64>() / k as f64;
        let mut stick = 0.0;
        for c in 0..k {
            let ln_w = stick + if c + 1 < k { fracs[c].ln() } else { 0.0 };
            if c + 1 < k {
                stick += (-fracs[c]).ln_1p();
            }
            let (delta, s) = (mus[c] - form.x0, sigmas[c]);
            let inv_var = 1.0 / (s * s);
            form.c[c] = [
                ln_w - s.ln() - HALF_LN_2PI - 0.5 * delta * delta * inv_var,
                delta * inv_var,
                -0.5 * inv_var,
            ];
            for e in form.e.iter_mut().take(self.n_params()) {
                e[c] = [0.0; 3];
            }
            form.e[c][c] = [-delta * inv_var, inv_var, 0.0];
            let inv_s3 = inv_var / s;
            form.e[k + c][c] = [-1.0 / s + delta * delta * inv_s3, -2.0 * delta * inv_s3, inv_s3];
            for (j, &f) in fracs.iter().enumerate() {
                form.e[2 * k + j][c][0] = match c.cmp(&j) {
                    std::cmp::Ordering::Equal => 1.0 / f,
                    std::cmp::Ordering::Greater => -1.0 / (1.0 - f),
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-component kernel form is ln f and its gradient; more
    /// components have none.
    #[test]
    fn kernel_form_is_ln_f_and_its_gradient() {
        let m = Mixture { k: 2 };
        for theta in [
            [-0.5, 0.5, 0.8, 0.8, 0.5],
            [-3.0, 2.5, 0.2, 1.4, 0.1],
            [1.0, 1.1, 2.0, 0.05, 0.97],
        ] {
            crate::model::population::check_kernel_form(&m, &theta, &[-4.0, -0.5, 0.0, 0.7, 1.05, 3.0]);
        }
        assert_eq!(Mixture { k: 3 }.kernel_feature(), None);
    }
}
