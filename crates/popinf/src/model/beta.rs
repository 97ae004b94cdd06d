//! The beta distribution on (0, 1): fractions, eccentricities.

use crate::error::Result;
use crate::math::special::{digamma, ln_beta};
use crate::model::population::{Family, ModelSettings, outside_support};

/// Beta(beta_a, beta_b) on (0, 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Beta;

impl Family for Beta {
    fn from_settings(_: &ModelSettings) -> Result<Self> {
        Ok(Beta)
    }
    fn param_names(&self) -> Vec<String> {
        vec!["beta_a".into(), "beta_b".into()]
    }
    fn n_params(&self) -> usize {
        2
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((0.0, 1.0))
    }
    fn valid(&self, theta: &[f64]) -> bool {
        theta[0] > 0.0 && theta[1] > 0.0
    }
    fn param_domains(&self) -> Vec<crate::model::prior::Support> {
        vec![crate::model::prior::Support::Positive; 2]
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if !(x > 0.0 && x < 1.0) {
            return outside_support(g);
        }
        let (lx, l1x) = (x.ln(), (-x).ln_1p());
        if let Some(g) = g {
            g[0] = lx;
            g[1] = l1x;
        }
        (theta[0] - 1.0) * lx + (theta[1] - 1.0) * l1x
    }
    fn integration_range(&self, _: &[f64]) -> (f64, f64, Vec<f64>) {
        (0.0, 1.0, vec![0.01, 0.1, 0.5, 0.9, 0.99])
    }
    /// Z = B(a, b), d ln B / d a = psi(a) - psi(a + b).
    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (a, b) = (theta[0], theta[1]);
        let d = digamma(a + b);
        grad[0] = digamma(a) - d;
        grad[1] = digamma(b) - d;
        ln_beta(a, b)
    }
}
