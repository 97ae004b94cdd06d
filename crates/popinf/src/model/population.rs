//! Population models p(mu | theta): densities of the true per-object
//! values, with gradients in the hyperparameters theta.
//!
//! Two traits at two seams. [`PopulationModel`] is what the likelihood
//! sees: a density over mu in R^dim evaluated in batches over samples, so
//! the likelihood's inner loop is a tight loop over a contiguous buffer,
//! not a call per sample. [`Family`] is what a one-dimensional model of
//! the library implements (one family per file of this folder): an
//! unnormalised density f(x | theta) with its analytic gradient, and a
//! normalising constant Z(theta) in closed form or, by default, by adaptive
//! Gauss–Kronrod quadrature (the gradient of ln Z then comes from
//! integrating d f / d theta in the same pass). The library's enum of them,
//! the model a run file names, is [`Population`](crate::model::library::Population).

use crate::error::Result;
use crate::invalid;
use crate::math::quadrature::integrate;

/// Most hyperparameters any model may have; bounds the stack buffers that
/// keep an evaluation free of heap allocation.
pub const MAX_PARAMS: usize = 32;

pub(crate) const LN10: f64 = std::f64::consts::LN_10;
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;
/// Relative accuracy of every quadrature-normalised constant.
const QUAD_REL_TOL: f64 = 1e-13;

/// A population density p(mu | theta) over mu in R^dim.
pub trait PopulationModel: Send + Sync {
    /// Dimension of each object's value mu.
    fn dim(&self) -> usize;

    /// Names of the hyperparameters theta, in order.
    fn param_names(&self) -> Vec<String>;

    /// Number of hyperparameters.
    fn n_params(&self) -> usize {
        self.param_names().len()
    }

    /// ln p(mu_j | theta) for every sample j of `mu` (`ln_p.len()` samples,
    /// `mu` sample-major with `dim` values each).
    fn ln_pdf_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64]);

    /// As [`ln_pdf_batch`](Self::ln_pdf_batch), and d ln p(mu_j|theta) /
    /// d theta_k into `grad[k * n + j]` (parameter-major, n = `ln_p.len()`),
    /// so the likelihood can take each parameter's weighted sum as one
    /// contiguous dot product.
    fn ln_pdf_grad_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: &mut [f64]);

    /// ln Z(theta) with d ln Z / d theta into `grad`, when the batch values
    /// are ln of an unnormalised density f: p = f / Z. Subtracted once per
    /// object by the likelihood, never per sample. Default: 0 (normalised).
    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let _ = theta;
        grad.fill(0.0);
        0.0
    }

    /// The feature of the value in which this model's ln p is a
    /// [`KernelForm`] at every theta (1-D models: the Gaussian, the Schechter
    /// family), for the fused kernel; `None` otherwise (the default).
    fn kernel_feature(&self) -> Option<Feature> {
        None
    }

    /// The fixed support of a model with a [`kernel_feature`](Self::kernel_feature)
    /// (None for the real line): the fused kernel gives samples outside it
    /// weight 0, as the general kernel's ln p = -inf does.
    fn kernel_support(&self) -> Option<(f64, f64)> {
        None
    }

    /// Writes ln p(x|theta) as a [`KernelForm`] into `form`, when the model
    /// is of that form. The likelihood then needs only each term's weighted
    /// sums of 1, d and f per object (a fused single pass), not a gradient
    /// per sample. Returns false otherwise (the default).
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        let _ = (theta, form);
        false
    }
}

/// The second feature of the value, besides d = x - x0, that a
/// [`KernelForm`] is linear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// f = d^2: ln p quadratic in the value (the Gaussian).
    Square,
    /// f = 10^d: the Schechter family's exponential cut-off in x = log10 M.
    Exp10,
}

/// Most terms a [`KernelForm`] sums (the double Schechter's two).
pub const MAX_TERMS: usize = 2;

/// ln p(x|theta) = ln sum_t exp(c0_t + c1_t d + c2_t f) with d = x - x0 and
/// f = d^2 or 10^d (see [`Feature`]), and each term's gradient
/// d (c0_t + c1_t d + c2_t f) / d theta_k = e0 + e1 d + e2 f. With one term
/// and f = d^2 it is a quadratic; with f = 10^d a Schechter function, with
/// two a double one. Since the e's are the same for every sample, the
/// likelihood needs per object only each term's weighted sums of 1, d and f
/// (see [`PopulationModel::kernel_form`]).
#[derive(Debug, Clone)]
pub struct KernelForm {
    pub feature: Feature,
    pub x0: f64,
    /// How many terms (1..=MAX_TERMS).
    pub terms: usize,
    /// Per term: c0, c1, c2.
    pub c: [[f64; 3]; MAX_TERMS],
    /// Per hyperparameter k, per term: e0, e1, e2.
    pub e: [[[f64; 3]; MAX_TERMS]; MAX_PARAMS],
}

impl KernelForm {
    /// The same one-term quadratic centred on its peak (c1 = 0), by
    /// completing the square: with delta = -c1 / (2 c2), c2 d^2 + c1 d
    /// equals c2 (d - delta)^2 minus c2 delta^2, and each e_k is
    /// re-expanded in d - delta. `None` unless c2 < 0 (a concave quadratic:
    /// a normalisable density). The fused kernel needs the centred form of
    /// a quadratic: one multiply fewer per sample.
    pub fn centred(&self, n_params: usize) -> Option<KernelForm> {
        debug_assert!(self.feature == Feature::Square && self.terms == 1);
        let [c0, c1, c2] = self.c[0];
        if !(c2 < 0.0 && c1.is_finite() && c0.is_finite()) {
            return None;
        }
        if c1 == 0.0 {
            return Some(self.clone());
        }
        let delta = -c1 / (2.0 * c2);
        let mut out = KernelForm {
            x0: self.x0 + delta,
            ..self.clone()
        };
        out.c[0] = [c0 - c2 * delta * delta, 0.0, c2];
        for (e, old) in out.e.iter_mut().zip(&self.e).take(n_params) {
            let old = old[0];
            e[0] = [
                old[0] + delta * (old[1] + delta * old[2]),
                old[1] + 2.0 * delta * old[2],
                old[2],
            ];
        }
        Some(out)
    }

    /// Whether the fused kernel can take the form: finite coefficients and
    /// every term concave (c2 < 0), so that each term has a maximum over an
    /// object's sample range (the kernel's shift bound); a one-term
    /// quadratic must be centred.
    pub fn is_usable(&self) -> bool {
        (1..=MAX_TERMS).contains(&self.terms)
            && self.x0.is_finite()
            && self.c[..self.terms]
                .iter()
                .all(|c| c[2] < 0.0 && c.iter().all(|v| v.is_finite()))
            && (self.feature == Feature::Exp10 || self.terms > 1 || self.c[0][1] == 0.0)
    }
}

impl Default for KernelForm {
    fn default() -> Self {
        Self {
            feature: Feature::Square,
            x0: 0.0,
            terms: 1,
            c: [[0.0; 3]; MAX_TERMS],
            e: [[[0.0; 3]; MAX_TERMS]; MAX_PARAMS],
        }
    }
}

/// The run file's `[model]` settings, as a family's constructor reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    /// The model's name (for errors).
    pub name: String,
    /// [lo, hi] of a bounded model.
    pub support: Option<[f64; 2]>,
    /// Mixture: number of components.
    pub components: Option<usize>,
    /// Binned: bin edges.
    pub edges: Option<Vec<f64>>,
    /// Binned: sd of the prior on neighbouring log heights.
    pub smoothness: Option<f64>,
    /// Whether the model carries its amplitude (the counts form over a volume).
    pub with_amplitude: bool,
}

impl ModelSettings {
    /// The bounded support the model needs.
    pub fn support(&self) -> Result<(f64, f64)> {
        match self.support {
            Some([lo, hi]) => Ok((lo, hi)),
            None => invalid!("the {} model needs model.support = [lo, hi]", self.name),
        }
    }
}

/// ln f outside a family's support: -inf, with a zero gradient.
pub(crate) fn outside_support(g: Option<&mut [f64]>) -> f64 {
    if let Some(g) = g {
        g.fill(0.0);
    }
    f64::NEG_INFINITY
}

/// A support [lo, hi] must be finite with lo < hi.
pub(crate) fn check_bounds(lo: f64, hi: f64) -> Result<()> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return invalid!("population support [{lo}, {hi}] must be finite with lo < hi");
    }
    Ok(())
}

/// A one-dimensional population model of the library: what a family's
/// file implements (see ARCHITECTURE.md, "adding a population model").
/// f need not be normalised: the likelihood subtracts ln Z once per object.
pub trait Family: Clone + PartialEq + std::fmt::Debug + Send + Sync {
    /// The model from the run file's `[model]` settings.
    fn from_settings(settings: &ModelSettings) -> Result<Self>;
    /// Names of the hyperparameters, in order.
    fn param_names(&self) -> Vec<String>;
    fn n_params(&self) -> usize;
    /// Checks the model's fixed settings (not theta).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// The fixed support (unbounded sides infinite); None for the real line.
    fn support(&self) -> Option<(f64, f64)> {
        None
    }
    /// Where each hyperparameter lives (its prior's support must lie
    /// inside): checked before sampling so that an impossible prior is
    /// named with its domain. Default: the real line for all.
    fn param_domains(&self) -> Vec<crate::model::prior::Support> {
        vec![crate::model::prior::Support::Real; self.n_params()]
    }
    /// Whether finite theta lies in the parameter space.
    fn valid(&self, theta: &[f64]) -> bool {
        let _ = theta;
        true
    }
    /// Whether f carries a number density (phi*): the counts form then
    /// needs a volume, not a rate parameter.
    fn has_amplitude(&self) -> bool {
        false
    }
    /// ln f(x | theta), -inf outside the support, with d/d theta into `g`
    /// (n_params values) when given.
    fn ln_f(&self, theta: &[f64], x: f64, g: Option<&mut [f64]>) -> f64;
    /// A finite range holding all but a negligible part (< 1e-30) of the
    /// density at theta, and points where it has kinks or sharp features.
    fn integration_range(&self, theta: &[f64]) -> (f64, f64, Vec<f64>);
    /// ln Z(theta) = ln of the integral of f over the support, with its
    /// gradient into `grad` (n_params values). Default: by quadrature.
    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        ln_integral_grad(self, theta, &|_| 1.0, &[], grad)
    }
    /// Extra ln prior the model carries (e.g. a smoothness prior), with its
    /// gradient added into `grad`.
    fn ln_prior_extra(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let _ = (theta, grad);
        0.0
    }
    /// ln f at every value of `mu`, and with `grad` its gradient
    /// parameter-major (`grad[k * n + j]`). Default: [`Family::ln_f`] per
    /// sample; a family whose likelihood time matters writes a loop that
    /// vectorises.
    #[inline(always)]
    fn ln_f_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: Option<&mut [f64]>) {
        let n = ln_p.len();
        let np = Family::n_params(self);
        let mut g = [0.0f64; MAX_PARAMS];
        match grad {
            Some(grad) => {
                for j in 0..n {
                    ln_p[j] = self.ln_f(theta, mu[j], Some(&mut g[..np]));
                    for k in 0..np {
                        grad[k * n + j] = g[k];
                    }
                }
            }
            None => {
                for (out, &x) in ln_p.iter_mut().zip(mu) {
                    *out = self.ln_f(theta, x, None);
                }
            }
        }
    }
    /// See [`PopulationModel::kernel_feature`].
    fn kernel_feature(&self) -> Option<Feature> {
        None
    }
    /// See [`PopulationModel::kernel_form`].
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        let _ = (theta, form);
        false
    }
}

/// Every family is a one-dimensional population model.
impl<F: Family> PopulationModel for F {
    fn dim(&self) -> usize {
        1
    }
    fn param_names(&self) -> Vec<String> {
        Family::param_names(self)
    }
    fn n_params(&self) -> usize {
        Family::n_params(self)
    }
    #[inline(always)]
    fn ln_pdf_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64]) {
        self.ln_f_batch(theta, mu, ln_p, None)
    }
    #[inline(always)]
    fn ln_pdf_grad_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: &mut [f64]) {
        self.ln_f_batch(theta, mu, ln_p, Some(grad))
    }
    fn ln_norm_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = Family::n_params(self);
        Family::ln_norm_grad(self, theta, &mut grad[..p])
    }
    fn kernel_feature(&self) -> Option<Feature> {
        Family::kernel_feature(self)
    }
    fn kernel_support(&self) -> Option<(f64, f64)> {
        Family::support(self)
    }
    fn kernel_form(&self, theta: &[f64], form: &mut KernelForm) -> bool {
        Family::kernel_form(self, theta, form)
    }
}

/// ln of the integral of w(x) f(x | theta) over the family's range, and its
/// gradient, by adaptive quadrature. `w_breaks` are kinks of w.
pub fn ln_integral_grad<F: Family>(
    family: &F,
    theta: &[f64],
    w: &dyn Fn(f64) -> f64,
    w_breaks: &[f64],
    grad: &mut [f64],
) -> f64 {
    let (lo, hi, mut breaks) = family.integration_range(theta);
    breaks.extend_from_slice(w_breaks);
    let p = Family::n_params(family);
    // Scale by the largest ln f on a coarse grid so exp stays finite.
    let shift = (0..=64)
        .map(|i| family.ln_f(theta, lo + (hi - lo) * i as f64 / 64.0, None))
        .chain(
            breaks
                .iter()
                .filter(|&&b| b > lo && b < hi)
                .map(|&b| family.ln_f(theta, b, None)),
        )
        .fold(f64::NEG_INFINITY, f64::max);
    if !shift.is_finite() {
        grad[..p].fill(0.0);
        return f64::NEG_INFINITY;
    }
    let mut g = vec![0.0; p];
    let mut f = |x: f64, out: &mut [f64]| {
        let weight = w(x);
        let lf = if weight > 0.0 {
            family.ln_f(theta, x, Some(&mut g))
        } else {
            f64::NEG_INFINITY
        };
        let v = if lf == f64::NEG_INFINITY {
            0.0
        } else {
            weight * (lf - shift).exp()
        };
        out[0] = v;
        for k in 0..p {
            out[1 + k] = if v == 0.0 { 0.0 } else { v * g[k] };
        }
    };
    let (sums, _) = integrate(&mut f, lo, hi, &breaks, p + 1, QUAD_REL_TOL, 0.0);
    if sums[0].is_nan() || sums[0] <= 0.0 {
        grad[..p].fill(0.0);
        return f64::NEG_INFINITY;
    }
    for k in 0..p {
        grad[k] = sums[1 + k] / sums[0];
    }
    shift + sums[0].ln()
}

/// Checks a family's [`KernelForm`] against its `ln_f` and gradient at
/// theta and each x: value to 1e-12 (relative, or absolute below 1), and
/// each gradient component (the terms' gradients weighted by their shares)
/// to 1e-12 of the largest.
#[cfg(test)]
pub(crate) fn check_kernel_form<F: Family>(family: &F, theta: &[f64], xs: &[f64]) {
    let mut form = KernelForm::default();
    assert!(family.kernel_form(theta, &mut form), "no kernel form");
    assert_eq!(Some(form.feature), family.kernel_feature());
    let p = family.n_params();
    for &x in xs {
        let d = x - form.x0;
        let f = match form.feature {
            Feature::Square => d * d,
            Feature::Exp10 => 10f64.powf(d),
        };
        let term = |c: &[f64; 3]| c[0] + c[1] * d + c[2] * f;
        let ln_terms: Vec<f64> = form.c[..form.terms].iter().map(term).collect();
        let m = ln_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = ln_terms.iter().map(|v| (v - m).exp()).sum();
        let value = m + sum.ln();
        let mut g = vec![0.0; p];
        let want = family.ln_f(theta, x, Some(&mut g));
        assert!(
            (value - want).abs() <= 1e-12 * want.abs().max(1.0),
            "theta {theta:?}, x {x}: form {value} vs ln_f {want}"
        );
        let scale = g.iter().fold(1e-300f64, |a, v| a.max(v.abs()));
        for (k, want_k) in g.iter().enumerate() {
            let got: f64 = (0..form.terms)
                .map(|t| (ln_terms[t] - value).exp() * term(&form.e[k][t]))
                .sum();
            assert!(
                (got - want_k).abs() <= 1e-12 * scale,
                "theta {theta:?}, x {x}, parameter {k}: form {got} vs ln_f {want_k}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centring_a_quadratic_form_keeps_the_function_and_its_gradient() {
        // ln f = 0.3 + 1.2 d - 0.8 d^2 around x0 = 2, gradient components
        // of arbitrary quadratics: the centred form must give the same
        // values at every x.
        let mut form = KernelForm {
            x0: 2.0,
            ..Default::default()
        };
        form.c[0] = [0.3, 1.2, -0.8];
        form.e[0][0] = [0.5, -0.25, 0.125];
        form.e[1][0] = [-1.0, 2.0, 0.75];
        let centred = form.centred(2).unwrap();
        assert_eq!(centred.c[0][1], 0.0);
        assert!(centred.is_usable() && !form.is_usable());
        let eval = |f: &KernelForm, c: [f64; 3], x: f64| {
            let d = x - f.x0;
            c[0] + c[1] * d + c[2] * d * d
        };
        for x in [-3.0, 0.0, 2.0, 2.75, 7.5] {
            let (a, b) = (eval(&form, form.c[0], x), eval(&centred, centred.c[0], x));
            assert!((a - b).abs() < 1e-13 * a.abs().max(1.0), "x {x}: {a} vs {b}");
            for k in 0..2 {
                let (a, b) = (eval(&form, form.e[k][0], x), eval(&centred, centred.e[k][0], x));
                assert!(
                    (a - b).abs() < 1e-13 * a.abs().max(1.0),
                    "x {x}, k {k}: {a} vs {b}"
                );
            }
        }
        // Convex or linear forms have no peak to centre on.
        form.c[0][2] = 0.0;
        assert!(form.centred(2).is_none());
    }
}
