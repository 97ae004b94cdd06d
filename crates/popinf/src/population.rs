//! Population models p(mu | theta): normalised densities of the true
//! per-object values, with gradients in the hyperparameters theta.
//!
//! Models are evaluated in batches over samples so that the likelihood's
//! inner loop is a tight loop over a contiguous buffer, not a virtual call
//! per sample.

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

    /// Whether [`quadratic_form`](Self::quadratic_form) describes this model
    /// at every theta (1-D models whose ln p is a quadratic in the value).
    fn has_quadratic_form(&self) -> bool {
        false
    }

    /// Writes ln p(x|theta) = c0 + c1 d + c2 d^2 with d = x - x0 and each
    /// d ln p / d theta_k = e0_k + e1_k d + e2_k d^2 into `form`, when the
    /// model is of that form. The likelihood then needs only the weighted
    /// sums of 1, d and d^2 per object (a fused single pass), not a
    /// gradient per sample. Returns false otherwise (the default).
    fn quadratic_form(&self, theta: &[f64], form: &mut QuadraticForm) -> bool {
        let _ = (theta, form);
        false
    }
}

/// ln p(x|theta) of a model quadratic in x, in powers of d = x - x0, with
/// the same expansion of its gradient (see
/// [`PopulationModel::quadratic_form`]).
#[derive(Debug, Clone)]
pub struct QuadraticForm {
    pub x0: f64,
    /// c0, c1, c2.
    pub c: [f64; 3],
    /// Per hyperparameter k: e0_k, e1_k, e2_k.
    pub e: [[f64; 3]; crate::likelihood::MAX_PARAMS],
}

impl QuadraticForm {
    /// The same function centred on its peak (c1 = 0), by completing the
    /// square: with delta = -c1 / (2 c2), c2 d^2 + c1 d equals
    /// c2 (d - delta)^2 minus c2 delta^2, and each e_k is re-expanded in
    /// d - delta. `None` unless c2 < 0 (a concave quadratic: a normalisable
    /// density). The fused kernel needs the centred form: one multiply
    /// fewer per sample.
    pub fn centred(&self, n_params: usize) -> Option<QuadraticForm> {
        let [c0, c1, c2] = self.c;
        if !(c2 < 0.0 && c1.is_finite() && c0.is_finite()) {
            return None;
        }
        if c1 == 0.0 {
            return Some(self.clone());
        }
        let delta = -c1 / (2.0 * c2);
        let mut out = QuadraticForm {
            x0: self.x0 + delta,
            c: [c0 - c2 * delta * delta, 0.0, c2],
            e: self.e,
        };
        for (e, old) in out.e.iter_mut().zip(&self.e).take(n_params) {
            *e = [
                old[0] + delta * (old[1] + delta * old[2]),
                old[1] + 2.0 * delta * old[2],
                old[2],
            ];
        }
        Some(out)
    }
}

impl Default for QuadraticForm {
    fn default() -> Self {
        Self {
            x0: 0.0,
            c: [0.0; 3],
            e: [[0.0; 3]; crate::likelihood::MAX_PARAMS],
        }
    }
}

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// The notebook's population: mu ~ N(theta_mu, theta_sigma), one-dimensional.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gaussian;

impl PopulationModel for Gaussian {
    fn dim(&self) -> usize {
        1
    }

    fn param_names(&self) -> Vec<String> {
        vec!["theta_mu".into(), "theta_sigma".into()]
    }

    fn n_params(&self) -> usize {
        2
    }

    // inline(always): so the likelihood's AVX2 copy vectorises the model too.
    #[inline(always)]
    fn ln_pdf_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64]) {
        let (m, s) = (theta[0], theta[1]);
        // Same operations as the gradient path, so both give identical bits.
        let inv_s = 1.0 / s;
        let inv_var = inv_s * inv_s;
        let ln_norm = -s.ln() - HALF_LN_2PI;
        for (out, &x) in ln_p.iter_mut().zip(mu) {
            let d = x - m;
            *out = ln_norm - 0.5 * (d * d * inv_var);
        }
    }

    #[inline(always)]
    fn ln_pdf_grad_batch(&self, theta: &[f64], mu: &[f64], ln_p: &mut [f64], grad: &mut [f64]) {
        let (m, s) = (theta[0], theta[1]);
        let n = ln_p.len();
        let inv_s = 1.0 / s;
        let inv_var = inv_s * inv_s;
        let ln_norm = -s.ln() - HALF_LN_2PI;
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

    fn has_quadratic_form(&self) -> bool {
        true
    }

    /// Centred on theta_mu: ln p = -ln sigma - ln(2 pi)/2 - d^2 / (2 sigma^2);
    /// d/d theta_mu = d / sigma^2, d/d theta_sigma = -1/sigma + d^2 / sigma^3.
    fn quadratic_form(&self, theta: &[f64], form: &mut QuadraticForm) -> bool {
        let (m, s) = (theta[0], theta[1]);
        let inv_s = 1.0 / s;
        let inv_var = inv_s * inv_s;
        form.x0 = m;
        form.c = [-s.ln() - HALF_LN_2PI, 0.0, -0.5 * inv_var];
        form.e[0] = [0.0, inv_var, 0.0];
        form.e[1] = [-inv_s, 0.0, inv_var * inv_s];
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn centring_a_quadratic_form_keeps_the_function_and_its_gradient() {
        // ln f = 0.3 + 1.2 d - 0.8 d^2 around x0 = 2, gradient components
        // of arbitrary quadratics: the centred form must give the same
        // values at every x.
        let mut form = QuadraticForm {
            x0: 2.0,
            c: [0.3, 1.2, -0.8],
            ..Default::default()
        };
        form.e[0] = [0.5, -0.25, 0.125];
        form.e[1] = [-1.0, 2.0, 0.75];
        let centred = form.centred(2).unwrap();
        assert_eq!(centred.c[1], 0.0);
        let eval = |f: &QuadraticForm, c: [f64; 3], x: f64| {
            let d = x - f.x0;
            c[0] + c[1] * d + c[2] * d * d
        };
        for x in [-3.0, 0.0, 2.0, 2.75, 7.5] {
            let (a, b) = (eval(&form, form.c, x), eval(&centred, centred.c, x));
            assert!((a - b).abs() < 1e-13 * a.abs().max(1.0), "x {x}: {a} vs {b}");
            for k in 0..2 {
                let (a, b) = (eval(&form, form.e[k], x), eval(&centred, centred.e[k], x));
                assert!(
                    (a - b).abs() < 1e-13 * a.abs().max(1.0),
                    "x {x}, k {k}: {a} vs {b}"
                );
            }
        }
        // Convex or linear forms have no peak to centre on.
        form.c[2] = 0.0;
        assert!(form.centred(2).is_none());
        // The Gaussian is centred already, and its form matches ln_pdf.
        let mut g = QuadraticForm::default();
        assert!(Gaussian.quadratic_form(&[0.3, 1.7], &mut g));
        let mut ln_p = [0.0];
        Gaussian.ln_pdf_batch(&[0.3, 1.7], &[1.1], &mut ln_p);
        assert!((eval(&g, g.c, 1.1) - ln_p[0]).abs() < 1e-14);
    }
}
