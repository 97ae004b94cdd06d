//! The Schechter family: stellar mass functions per dex in x = log10 M,
//!
//! Phi(x) = ln(10) phi* 10^((x - x*)(alpha + 1)) exp(-10^(x - x*)),
//!
//! single, or double with two (phi*_k, alpha_k) terms sharing x*;
//! normalised on a finite [x_lo, x_hi] by quadrature, which holds for
//! alpha <= -1 too (where the incomplete gamma function's recurrence would
//! be needed).

use crate::error::Result;
use crate::math::fastmath::{exp_bounded, exp_nonpositive, ln_one_to_two};
use crate::model::population::{
    Family, Feature, KernelForm, LN10, ModelSettings, check_bounds, outside_support,
};

/// The Schechter function on [lo, hi]; with `amplitude`, log_phi_star is a
/// parameter (for the counts form).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schechter {
    pub lo: f64,
    pub hi: f64,
    pub amplitude: bool,
}

/// Two Schechter terms sharing x*, with amplitudes (counts form).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoubleSchechter {
    pub lo: f64,
    pub hi: f64,
}

/// The exponential cut-off falls by e^-10 within 1 dex of x*.
fn breaks_near(x_star: f64) -> Vec<f64> {
    [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
        .iter()
        .map(|d| x_star + d)
        .collect()
}

impl Family for Schechter {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        let (lo, hi) = settings.support()?;
        Ok(Schechter {
            lo,
            hi,
            amplitude: settings.with_amplitude,
        })
    }
    fn param_names(&self) -> Vec<String> {
        let mut v = vec!["log_m_star".to_string(), "alpha".to_string()];
        if self.amplitude {
            v.push("log_phi_star".into());
        }
        v
    }
    fn n_params(&self) -> usize {
        2 + usize::from(self.amplitude)
    }
    fn validate(&self) -> Result<()> {
        check_bounds(self.lo, self.hi)
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi))
    }
    fn has_amplitude(&self) -> bool {
        self.amplitude
    }
    fn ln_f(&self, theta: &[f64], x: f64, mut g: Option<&mut [f64]>) -> f64 {
        if !(x >= self.lo && x <= self.hi) {
            return outside_support(g);
        }
        let (xs, alpha) = (theta[0], theta[1]);
        let u = (x - xs) * LN10;
        let t = u.exp();
        if let Some(g) = g.as_deref_mut() {
            g[0] = (t - (alpha + 1.0)) * LN10;
            g[1] = u;
        }
        let mut v = LN10.ln() + (alpha + 1.0) * u - t;
        if self.amplitude {
            if let Some(g) = g {
                g[2] = LN10;
            }
            v += theta[2] * LN10;
        }
        v
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        (self.lo, self.hi, breaks_near(theta[0]))
    }

    fn kernel_feature(&self) -> Option<Feature> {
        Some(Feature::Exp10)
    }

    /// ln Phi = ln ln(10) [+ ln(10) log_phi*] + (alpha + 1) ln(10) d - 10^d,
    /// d = x - x*: one term in d and f = 10^d. d/dx* = -(alpha + 1) ln(10) +
    /// ln(10) f, d/dalpha = ln(10) d, d/dlog_phi* = ln(10).
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        let b = (theta[1] + 1.0) * LN10;
        let amplitude = if self.amplitude { theta[2] * LN10 } else { 0.0 };
        form.feature = Feature::Exp10;
        form.terms = 1;
        form.x0 = theta[0];
        form.c[0] = [LN10.ln() + amplitude, b, -1.0];
        form.e[0][0] = [-b, 0.0, LN10];
        form.e[1][0] = [0.0, LN10, 0.0];
        if self.amplitude {
            form.e[2][0] = [LN10, 0.0, 0.0];
        }
        true
    }

    /// ln Phi for every sample (and its gradient, parameter-major), with
    /// the same arithmetic as [`Family::ln_f`] but the polynomial exp,
    /// branch-free, so the loop vectorises.
    #[inline(always)]
    fn ln_f_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: Option<&mut [f64]>) {
        let Schechter { lo, hi, amplitude } = *self;
        let n = ln_p.len();
        let (xs, alpha) = (theta[0], theta[1]);
        let a1 = alpha + 1.0;
        let c0 = LN10.ln() + if amplitude { theta[2] * LN10 } else { 0.0 };
        match grad {
            None => {
                for (out, &x) in ln_p.iter_mut().zip(&mu[..n]) {
                    let u = (x - xs) * LN10;
                    let v = c0 + a1 * u - exp_bounded(u);
                    *out = if x >= lo && x <= hi { v } else { f64::NEG_INFINITY };
                }
            }
            Some(grad) => {
                let (g0, rest) = grad.split_at_mut(n);
                let (g1, rest) = rest.split_at_mut(n);
                for j in 0..n {
                    let x = mu[j];
                    let u = (x - xs) * LN10;
                    let t = exp_bounded(u);
                    let inside = x >= lo && x <= hi;
                    ln_p[j] = if inside {
                        c0 + a1 * u - t
                    } else {
                        f64::NEG_INFINITY
                    };
                    g0[j] = if inside { (t - a1) * LN10 } else { 0.0 };
                    g1[j] = if inside { u } else { 0.0 };
                }
                if amplitude {
                    for (g, &x) in rest[..n].iter_mut().zip(&mu[..n]) {
                        *g = if x >= lo && x <= hi { LN10 } else { 0.0 };
                    }
                }
            }
        }
    }
}

impl Family for DoubleSchechter {
    fn from_settings(settings: &ModelSettings) -> Result<Self> {
        let (lo, hi) = settings.support()?;
        Ok(DoubleSchechter { lo, hi })
    }
    fn param_names(&self) -> Vec<String> {
        [
            "log_m_star",
            "alpha_1",
            "alpha_2",
            "log_phi_star_1",
            "log_phi_star_2",
        ]
        .map(String::from)
        .to_vec()
    }
    fn n_params(&self) -> usize {
        5
    }
    fn validate(&self) -> Result<()> {
        check_bounds(self.lo, self.hi)
    }
    fn support(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi))
    }
    fn has_amplitude(&self) -> bool {
        true
    }
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64 {
        if !(x >= self.lo && x <= self.hi) {
            return outside_support(g);
        }
        let (xs, a1, a2, p1, p2) = (theta[0], theta[1], theta[2], theta[3], theta[4]);
        let u = (x - xs) * LN10;
        let t = u.exp();
        let (e1, e2) = (p1 * LN10 + (a1 + 1.0) * u, p2 * LN10 + (a2 + 1.0) * u);
        let m = e1.max(e2);
        let (w1, w2) = ((e1 - m).exp(), (e2 - m).exp());
        let (r1, r2) = (w1 / (w1 + w2), w2 / (w1 + w2));
        if let Some(g) = g {
            g[0] = (t - (a1 + 1.0) * r1 - (a2 + 1.0) * r2) * LN10;
            g[1] = r1 * u;
            g[2] = r2 * u;
            g[3] = r1 * LN10;
            g[4] = r2 * LN10;
        }
        LN10.ln() - t + m + (w1 + w2).ln()
    }
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>) {
        (self.lo, self.hi, breaks_near(theta[0]))
    }

    fn kernel_feature(&self) -> Option<Feature> {
        Some(Feature::Exp10)
    }

    /// Two terms ln ln(10) + ln(10) log_phi*_k + (alpha_k + 1) ln(10) d - 10^d
    /// sharing d = x - x*, each with its own gradient (see Schechter's).
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        form.feature = Feature::Exp10;
        form.terms = 2;
        form.x0 = theta[0];
        for t in 0..2 {
            let b = (theta[1 + t] + 1.0) * LN10;
            form.c[t] = [LN10.ln() + theta[3 + t] * LN10, b, -1.0];
            form.e[0][t] = [-b, 0.0, LN10];
            for k in 1..5 {
                form.e[k][t] = [0.0; 3];
            }
            form.e[1 + t][t] = [0.0, LN10, 0.0];
            form.e[3 + t][t] = [LN10, 0.0, 0.0];
        }
        true
    }

    /// ln of two terms sharing x* as max + ln(1 + e^-|a1 - a2|), with the
    /// polynomial exp and log. Blocks of 64 samples go through one simple
    /// loop per transcendental function (loop fission): LLVM vectorises
    /// each, where one loop holding both exps and the log ran ~5x slower.
    #[inline(always)]
    fn ln_f_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: Option<&mut [f64]>) {
        const B: usize = 64;
        let DoubleSchechter { lo, hi } = *self;
        let n = ln_p.len();
        let (xs, b1, b2) = (theta[0], theta[1] + 1.0, theta[2] + 1.0);
        let (c1, c2) = (theta[3] * LN10, theta[4] * LN10);
        let c0 = LN10.ln();
        let mut grad = grad;
        let mut j0 = 0;
        while j0 < n {
            let w = B.min(n - j0);
            let x = &mu[j0..j0 + w];
            let (mut u, mut t, mut d, mut m, mut e, mut r1) =
                ([0.0; B], [0.0; B], [0.0; B], [0.0; B], [0.0; B], [0.0; B]);
            for l in 0..w {
                u[l] = (x[l] - xs) * LN10;
            }
            for l in 0..w {
                t[l] = exp_bounded(u[l]);
            }
            for l in 0..w {
                let (a1, a2) = (c1 + b1 * u[l], c2 + b2 * u[l]);
                let first = a1 >= a2;
                m[l] = if first { a1 } else { a2 };
                d[l] = if first { a2 - a1 } else { a1 - a2 };
                r1[l] = if first { 1.0 } else { 0.0 };
            }
            for l in 0..w {
                e[l] = exp_nonpositive(d[l]);
            }
            for l in 0..w {
                let v = c0 - t[l] + m[l] + ln_one_to_two(1.0 + e[l]);
                ln_p[j0 + l] = if x[l] >= lo && x[l] <= hi {
                    v
                } else {
                    f64::NEG_INFINITY
                };
            }
            if let Some(grad) = grad.as_deref_mut() {
                for l in 0..w {
                    // Share of the first term: 1/(1+e) when it is the larger.
                    let inv = 1.0 / (1.0 + e[l]);
                    let share = if r1[l] > 0.0 { inv } else { e[l] * inv };
                    let k = if x[l] >= lo && x[l] <= hi { 1.0 } else { 0.0 };
                    let (s1, s2) = (share, 1.0 - share);
                    let j = j0 + l;
                    grad[j] = k * (t[l] - b1 * s1 - b2 * s2) * LN10;
                    grad[n + j] = k * s1 * u[l];
                    grad[2 * n + j] = k * s2 * u[l];
                    grad[3 * n + j] = k * s1 * LN10;
                    grad[4 * n + j] = k * s2 * LN10;
                }
            }
            j0 += w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::population::check_kernel_form;

    /// The kernel forms are ln Phi and its gradient, across the cut-off
    /// (x far below x*, where the power law rules, to 2 dex above it).
    #[test]
    fn kernel_forms_are_ln_phi_and_its_gradient() {
        let xs = [8.0, 9.3, 10.0, 10.6, 11.2, 12.0, 12.5];
        for amplitude in [false, true] {
            let single = Schechter {
                lo: 8.0,
                hi: 12.5,
                amplitude,
            };
            for theta in [[10.6, -1.3, -3.0], [10.2, 0.5, -2.2], [11.4, -2.4, -4.0]] {
                check_kernel_form(&single, &theta[..single.n_params()], &xs);
            }
        }
        let double = DoubleSchechter { lo: 8.0, hi: 12.5 };
        for theta in [
            [10.8, -0.3, -1.5, -2.5, -3.1],
            [10.3, 0.9, -2.4, -4.5, -1.2],
            [11.0, -0.9, -1.1, -3.0, -3.0],
        ] {
            check_kernel_form(&double, &theta, &xs);
        }
    }
}
