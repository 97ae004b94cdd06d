//! The Gaussian family: the notebook's N(theta_mu, theta_sigma), the same
//! truncated to [lo, hi], and the log-normal.

use crate::error::Result;
use crate::model::population::{Family, Feature, HALF_LN_2PI, KernelForm, ModelSettings, outside_support};
use crate::model::prior::Support;

/// The notebook's population: mu ~ N(theta_mu, theta_sigma) on the real
/// line. ln p is a quadratic in mu, so the likelihood runs its fused kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gaussian;

/// N(theta_mu, theta_sigma) restricted to [lo, hi].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruncatedNormal {
    pub lo: f64,
    pub hi: f64,
}

/// ln x ~ N(theta_mu, theta_sigma), x > 0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogNormal;

fn mu_sigma() -> Vec<String> {
    vec!["theta_mu".into(), "theta_sigma".into()]
}

/// ln N(x; m, s) and its gradient in (m, s).
#[inline(always)]
fn ln_normal(theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
    let (m, s) = (theta[0], theta[1]);
    let z = (x - m) / s;
    if let Some(g) = g {
        g[0] = z / s;
        g[1] = (z * z - 1.0) / s;
    }
    -0.5 * z * z - s.ln() - HALF_LN_2PI
}

impl Family for Gaussian {
    fn from_settings(_: &ModelSettings) -> Result<Self> {
        Ok(Gaussian)
    }
    fn param_names(&self) -> Vec<String> {
        mu_sigma()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn valid(&self, theta: &[f64]) -> bool {
        theta[1] > 0.0
    }
    fn param_domains(&self) -> Vec<Support> {
        vec![Support::Real, Support::Positive]
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        ln_normal(theta, x, g)
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        let (m, s) = (theta[0], theta[1]);
        (m - 12.0 * s, m + 12.0 * s, vec![m])
    }
    fn ln_norm_grad(&self, _: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        0.0
    }

    // inline(always): so the likelihood's AVX2 copy vectorises the model too.
    #[inline(always)]
    fn ln_f_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: Option<&mut [f64]>) {
        let (m, s) = (theta[0], theta[1]);
        // Same operations with and without the gradient, so both give
        // identical bits.
        let inv_s = 1.0 / s;
        let inv_var = inv_s * inv_s;
        let ln_norm = -s.ln() - HALF_LN_2PI;
        let Some(grad) = grad else {
            for (out, &x) in ln_p.iter_mut().zip(mu) {
                let d = x - m;
                *out = ln_norm - 0.5 * (d * d * inv_var);
            }
            return;
        };
        let n = ln_p.len();
        let (g_mu, rest) = grad.split_at_mut(n);
        let g_sigma = &mut rest[..n];
        for j in 0..n {
            let d = mu[j] - m;
            let z2 = d * d * inv_var;
            ln_p[j] = ln_norm - 0.5 * z2;
            g_mu[j] = d * inv_var;
            g_sigma[j] = (z2 - 1.0) * inv_s;
        }
    }

    fn kernel_feature(&self) -> Option<Feature> {
        Some(Feature::Square)
    }

    /// Centred on theta_mu: ln p = -ln sigma - ln(2 pi)/2 - d^2 / (2 sigma^2);
    /// d/d theta_mu = d / sigma^2, d/d theta_sigma = -1/sigma + d^2 / sigma^3.
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        let (m, s) = (theta[0], theta[1]);
        let inv_s = 1.0 / s;
        let inv_var = inv_s * inv_s;
        form.feature = Feature::Square;
        form.terms = 1;
        form.x0 = m;
        form.c[0] = [-s.ln() - HALF_LN_2PI, 0.0, -0.5 * inv_var];
        form.e[0][0] = [0.0, inv_var, 0.0];
        form.e[1][0] = [-inv_s, 0.0, inv_var * inv_s];
        true
    }
}

impl Family for TruncatedNormal {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        let (lo, hi) = settings.support()?;
        Ok(TruncatedNormal { lo, hi })
    }
    fn param_names(&self) -> Vec<String> {
        mu_sigma()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn validate(&self) -> Result<()> {
        crate::model::population::check_bounds(self.lo, self.hi)
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi))
    }
    fn valid(&self, theta: &[f64]) -> bool {
        theta[1] > 0.0
    }
    fn param_domains(&self) -> Vec<Support> {
        vec![Support::Real, Support::Positive]
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if !(x >= self.lo && x <= self.hi) {
            return outside_support(g);
        }
        ln_normal(theta, x, g)
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        let (m, s) = (theta[0], theta[1]);
        ((m - 12.0 * s).max(self.lo), (m + 12.0 * s).min(self.hi), vec![m])
    }
}

impl Family for LogNormal {
    fn from_settings(_: &ModelSettings) -> Result<Self> {
        Ok(LogNormal)
    }
    fn param_names(&self) -> Vec<String> {
        mu_sigma()
    }
    fn n_params(&self) -> usize {
        2
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((0.0, f64::INFINITY))
    }
    fn valid(&self, theta: &[f64]) -> bool {
        theta[1] > 0.0
    }
    fn param_domains(&self) -> Vec<Support> {
        vec![Support::Real, Support::Positive]
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if x.is_nan() || x <= 0.0 {
            return outside_support(g);
        }
        let y = x.ln();
        let (m, s) = (theta[0], theta[1]);
        let z = (y - m) / s;
        if let Some(g) = g {
            g[0] = z / s;
            g[1] = (z * z - 1.0) / s;
        }
        -y - 0.5 * z * z - s.ln() - HALF_LN_2PI
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        let (m, s) = (theta[0], theta[1]);
        let breaks = (-11..=11).map(|k| (m + k as f64 * s).exp()).collect();
        ((m - 12.0 * s).exp(), (m + 12.0 * s).exp(), breaks)
    }
    fn ln_norm_grad(&self, _: &[f64], grad: &mut [f64]) -> f64 {
        grad.fill(0.0);
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::population::PopulationModel;

    #[test]
    fn gaussian_matches_closed_form_and_finite_differences() {
        let theta = [0.3, 1.7];
        let mu = [-2.0, 0.0, 0.3, 4.5];
        let mut ln_p = [0.0; 4];
        let mut grad = [0.0; 8];
        Gaussian.ln_pdf_grad_batch(&theta, &mu, &mut ln_p, &mut grad);
        let mut ln_p_value = [0.0; 4];
        Gaussian.ln_pdf_batch(&theta, &mu, &mut ln_p_value);
        for j in 0..4 {
            let z: f64 = (mu[j] - theta[0]) / theta[1];
            let want = -0.5 * z * z - theta[1].ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
            assert!((ln_p[j] - want).abs() < 1e-14);
            assert_eq!(ln_p[j], ln_p_value[j]);
            for k in 0..2 {
                let h = 1e-6;
                let (mut tp, mut tm) = (theta, theta);
                tp[k] += h;
                tm[k] -= h;
                let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
                Gaussian.ln_pdf_batch(&tp, &mu, &mut a);
                Gaussian.ln_pdf_batch(&tm, &mu, &mut b);
                let fd = (a[j] - b[j]) / (2.0 * h);
                assert!((grad[k * 4 + j] - fd).abs() < 1e-8, "k={k} j={j}");
            }
        }
    }

    /// The Gaussian's kernel form is its ln p and gradient, centred already.
    #[test]
    fn gaussian_kernel_form_is_its_ln_pdf() {
        let mut g = KernelForm::default();
        assert!(Family::kernel_form(&Gaussian, &[0.3, 1.7], &mut g));
        assert_eq!(g.c[0][1], 0.0);
        for theta in [[0.3, 1.7], [-2.0, 0.05], [40.0, 12.0]] {
            crate::model::population::check_kernel_form(&Gaussian, &theta, &[-3.0, 0.0, 0.31, 2.5, 41.0]);
        }
    }
}
