//! The full hierarchical (latent-variable) model of the notebook's PyMC
//! cell: parameters (theta_mu, theta_sigma, mu_1..mu_N) for objects with
//! Gaussian measurements x_i ~ N(mu_i, sigma_i) and a Gaussian population
//! mu_i ~ N(theta_mu, theta_sigma).
//!
//! Non-centred by default: the sampler sees z_i with mu_i = theta_mu +
//! theta_sigma z_i, z_i ~ N(0, 1), which removes the funnel between
//! theta_sigma and the mu_i when the data constrain the mu_i weakly.

use crate::data::catalog::Measurements;
use crate::error::Result;
use crate::inference::posterior::{LogDensity, SampleableModel};
use crate::invalid;
use crate::model::prior::{Hyperprior, Transformed};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// How the latent values are parametrised for the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parametrisation {
    /// Sample z_i; mu_i = theta_mu + theta_sigma z_i.
    NonCentred,
    /// Sample mu_i directly.
    Centred,
}

pub struct LatentGaussianModel<'m> {
    measurements: &'m Measurements,
    prior_mu: Hyperprior,
    prior_sigma: Hyperprior,
    parametrisation: Parametrisation,
    /// 1 / sigma_i^2, and the constant sum_i (-ln sigma_i - ln sqrt(2 pi)).
    inv_var: Vec<f64>,
    ln_norm: f64,
}

impl<'m> LatentGaussianModel<'m> {
    pub fn new(
        measurements: &'m Measurements,
        prior_mu: Hyperprior,
        prior_sigma: Hyperprior,
        parametrisation: Parametrisation,
    ) -> Result<Self> {
        prior_mu.validate()?;
        prior_sigma.validate()?;
        if matches!(prior_sigma.support(), crate::model::prior::Support::Real) {
            return invalid!("theta_sigma needs a prior on positive values, got {prior_sigma}");
        }
        let inv_var = measurements.sigma().iter().map(|s| 1.0 / (s * s)).collect();
        let ln_norm = measurements.sigma().iter().map(|s| -s.ln() - HALF_LN_2PI).sum();
        Ok(Self {
            measurements,
            prior_mu,
            prior_sigma,
            parametrisation,
            inv_var,
            ln_norm,
        })
    }

    pub fn n_obj(&self) -> usize {
        self.measurements.n_obj()
    }

    fn hyper(&self, u: &[f64]) -> (Transformed, Transformed) {
        (
            self.prior_mu.support().from_unconstrained(u[0]),
            self.prior_sigma.support().from_unconstrained(u[1]),
        )
    }
}

impl LogDensity for LatentGaussianModel<'_> {
    fn dim(&self) -> usize {
        2 + self.n_obj()
    }

    fn ln_density(&self, u: &[f64]) -> f64 {
        let mut grad = vec![0.0; u.len()];
        self.ln_density_grad(u, &mut grad)
    }

    fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        let (tm, ts) = self.hyper(u);
        let (m, s) = (tm.value, ts.value);
        let (lp_m, dlp_m) = self.prior_mu.ln_pdf_grad(m);
        let (lp_s, dlp_s) = self.prior_sigma.ln_pdf_grad(s);
        let mut ln_p = lp_m + lp_s + tm.ln_jacobian + ts.ln_jacobian + self.ln_norm;
        // d ln p / d theta_mu and d theta_sigma, accumulated over objects.
        let (mut g_m, mut g_s) = (0.0, 0.0);
        let x = self.measurements.x();
        let (latent, grad_latent) = (&u[2..], &mut grad[2..]);
        match self.parametrisation {
            Parametrisation::NonCentred => {
                for i in 0..x.len() {
                    let z = latent[i];
                    let mu = m + s * z;
                    // r = d ln N(x | mu, sigma) / d mu
                    let r = (x[i] - mu) * self.inv_var[i];
                    ln_p += -0.5 * z * z - HALF_LN_2PI - 0.5 * (x[i] - mu) * r;
                    grad_latent[i] = -z + s * r;
                    g_m += r;
                    g_s += r * z;
                }
            }
            Parametrisation::Centred => {
                let inv_s = 1.0 / s;
                let inv_s2 = inv_s * inv_s;
                let n = x.len() as f64;
                ln_p -= n * (s.ln() + HALF_LN_2PI);
                for i in 0..x.len() {
                    let mu = latent[i];
                    let d = mu - m;
                    let r = (x[i] - mu) * self.inv_var[i];
                    ln_p += -0.5 * d * d * inv_s2 - 0.5 * (x[i] - mu) * r;
                    grad_latent[i] = -d * inv_s2 + r;
                    g_m += d * inv_s2;
                    g_s += d * d * inv_s2 * inv_s;
                }
                g_s -= n * inv_s;
            }
        }
        grad[0] = (g_m + dlp_m) * tm.jacobian + tm.d_ln_jacobian;
        grad[1] = (g_s + dlp_s) * ts.jacobian + ts.d_ln_jacobian;
        ln_p
    }
}

impl SampleableModel for LatentGaussianModel<'_> {
    fn param_names(&self) -> Vec<String> {
        let mut names = vec!["theta_mu".to_string(), "theta_sigma".to_string()];
        names.extend((0..self.n_obj()).map(|i| format!("mu[{i}]")));
        names
    }

    /// Hyperparameters, then every object's mu_i (in both parametrisations).
    fn to_natural(&self, u: &[f64], out: &mut [f64]) {
        let (tm, ts) = self.hyper(u);
        out[0] = tm.value;
        out[1] = ts.value;
        for (o, &v) in out[2..].iter_mut().zip(&u[2..]) {
            *o = match self.parametrisation {
                Parametrisation::NonCentred => tm.value + ts.value * v,
                Parametrisation::Centred => v,
            };
        }
    }

    /// Prior centres for theta; z_i = 0, or mu_i = x_i when centred.
    fn initial_point(&self) -> Vec<f64> {
        let mut u = vec![0.0; self.dim()];
        if self.parametrisation == Parametrisation::Centred {
            u[2..].copy_from_slice(self.measurements.x());
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_gradient(parametrisation: Parametrisation) {
        let meas = Measurements::new(vec![0.3, -1.2, 2.0, 0.7], vec![0.5, 1.0, 2.0, 0.1]).unwrap();
        let model = LatentGaussianModel::new(
            &meas,
            Hyperprior::Normal { mu: 0.0, sd: 3.0 },
            Hyperprior::HalfCauchy { scale: 1.0 },
            parametrisation,
        )
        .unwrap();
        let u = [0.2, -0.4, 0.5, -1.1, 0.3, 2.0];
        let mut g = [0.0; 6];
        let v = model.ln_density_grad(&u, &mut g);
        for k in 0..6 {
            let h = 1e-6;
            let (mut a, mut b) = (u, u);
            a[k] += h;
            b[k] -= h;
            let fd = (model.ln_density(&a) - model.ln_density(&b)) / (2.0 * h);
            assert!(
                (g[k] - fd).abs() < 1e-5 * fd.abs().max(1.0),
                "{parametrisation:?} k={k}: {} vs {fd}",
                g[k]
            );
        }
        assert!(v.is_finite());
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_gradient(Parametrisation::NonCentred);
        check_gradient(Parametrisation::Centred);
    }

    /// Both parametrisations are the same distribution: at corresponding
    /// points their densities differ by exactly the Jacobian of
    /// mu = theta_mu + theta_sigma z, which is N ln theta_sigma.
    #[test]
    fn parametrisations_differ_by_the_jacobian() {
        let meas = Measurements::new(vec![0.3, -1.2, 2.0], vec![0.5, 1.0, 2.0]).unwrap();
        let prior_mu = Hyperprior::Uniform {
            lower: -5.0,
            upper: 5.0,
        };
        let prior_sigma = Hyperprior::Uniform {
            lower: 0.0,
            upper: 2.0,
        };
        let nc = LatentGaussianModel::new(&meas, prior_mu, prior_sigma, Parametrisation::NonCentred).unwrap();
        let c = LatentGaussianModel::new(&meas, prior_mu, prior_sigma, Parametrisation::Centred).unwrap();
        let u_nc = [0.3, -0.2, 0.4, -1.0, 1.5];
        let mut natural = [0.0; 5];
        nc.to_natural(&u_nc, &mut natural);
        let mut u_c = u_nc;
        u_c[2..].copy_from_slice(&natural[2..]);
        let s = natural[1];
        let diff = nc.ln_density(&u_nc) - c.ln_density(&u_c);
        assert!((diff - 3.0 * s.ln()).abs() < 1e-12, "{diff} vs {}", 3.0 * s.ln());
    }
}
