//! Power laws: p(x) ∝ x^alpha on [lo, hi], and the broken power law
//! (x^alpha_1 below x_break, x^alpha_2 above, continuous), 0 < lo.

use crate::error::Result;
use crate::invalid;
use crate::model::population::{Family, ModelSettings, check_bounds, outside_support};

/// p(x) ∝ x^alpha on [lo, hi], 0 < lo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLaw {
    pub lo: f64,
    pub hi: f64,
}

/// x^alpha_1 below x_break, x^alpha_2 above (continuous), on [lo, hi].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrokenPowerLaw {
    pub lo: f64,
    pub hi: f64,
}

fn check_positive_support(lo: f64, hi: f64) -> Result<()> {
    check_bounds(lo, hi)?;
    if lo <= 0.0 {
        return invalid!("power-law support must start above 0, got lo = {lo}");
    }
    Ok(())
}

/// 16 log-spaced points inside (lo, hi).
fn log_breaks(lo: f64, hi: f64) -> Vec<f64> {
    (1..16).map(|k| lo * (hi / lo).powf(k as f64 / 16.0)).collect()
}

impl Family for PowerLaw {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        let (lo, hi) = settings.support()?;
        Ok(PowerLaw { lo, hi })
    }
    fn param_names(&self) -> Vec<String> {
        vec!["alpha".into()]
    }
    fn n_params(&self) -> usize {
        1
    }
    fn validate(&self) -> Result<()> {
        check_positive_support(self.lo, self.hi)
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi))
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if !(x >= self.lo && x <= self.hi) {
            return outside_support(g);
        }
        let lx = x.ln();
        if let Some(g) = g {
            g[0] = lx;
        }
        theta[0] * lx
    }
    fn integration_range(&self, _: &[f64]) -> (f64, f64, Vec<f64>) {
        (self.lo, self.hi, log_breaks(self.lo, self.hi))
    }
}

impl Family for BrokenPowerLaw {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        let (lo, hi) = settings.support()?;
        Ok(BrokenPowerLaw { lo, hi })
    }
    fn param_names(&self) -> Vec<String> {
        ["alpha_1", "alpha_2", "x_break"].map(String::from).to_vec()
    }
    fn n_params(&self) -> usize {
        3
    }
    fn validate(&self) -> Result<()> {
        check_positive_support(self.lo, self.hi)
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi))
    }
    fn valid(&self, theta: &[f64]) -> bool {
        theta[2] > self.lo && theta[2] < self.hi
    }
    fn param_domains(&self) -> Vec<crate::model::prior::Support> {
        use crate::model::prior::Support;
        vec![Support::Real, Support::Real, Support::Interval(self.lo, self.hi)]
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if !(x >= self.lo && x <= self.hi) {
            return outside_support(g);
        }
        let (a1, a2, xb) = (theta[0], theta[1], theta[2]);
        let r = (x / xb).ln();
        let (value, grad) = if x < xb {
            (a1 * r, [r, 0.0, -a1 / xb])
        } else {
            (a2 * r, [0.0, r, -a2 / xb])
        };
        if let Some(g) = g {
            g[..3].copy_from_slice(&grad);
        }
        value
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        let mut breaks = log_breaks(self.lo, self.hi);
        breaks.push(theta[2]);
        (self.lo, self.hi, breaks)
    }
}
