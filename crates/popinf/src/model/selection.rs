//! Selection effects and counts (Farr 2019; Mandel, Farr & Gair 2019).
//!
//! With detection probability P_det(mu) on the true values, the
//! population-level likelihood of N detected objects is
//!
//! ```text
//! ln L = sum_i ln < P_det p(mu | theta) / pi >_i  -  N ln xi(theta),
//! xi(theta) = integral P_det(mu) p(mu | theta) dmu,
//! ```
//!
//! so a completeness limit or table multiplies each sample's weight by
//! P_det (folded into the interim prior when the catalog is loaded) and
//! adds -N ln xi. Injections estimate xi by Monte Carlo instead (their
//! detection depends on the data, so samples are not re-weighted).
//! The counts (Poisson) form adds the expected number R xi:
//! ln L = -R xi + N ln R + sum_i ln L_i, with R a parameter ("rate") or,
//! for models with an amplitude (phi*), V times the integral of f.

use crate::error::Result;
use crate::invalid;
use crate::model::library::Population;
use crate::model::population::MAX_PARAMS;

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    None,
    /// Detected if and only if mu > limit.
    Limit(f64),
    /// Completeness C(mu) interpolated linearly in a table, held constant
    /// beyond its ends.
    Table {
        x: Vec<f64>,
        c: Vec<f64>,
    },
    /// Found injections (values, ln p_draw), of `n_draw` drawn in all.
    Injections {
        values: Vec<f64>,
        ln_p_draw: Vec<f64>,
        n_draw: f64,
        /// Reject theta where Neff_sel < `min_neff_per_object` N.
        min_neff_per_object: f64,
        reject: bool,
    },
}

/// Monte Carlo quality of an injection estimate of xi.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct InjectionEstimate {
    pub xi: f64,
    /// Standard error of xi.
    pub xi_sd: f64,
    /// Effective number of injections, xi^2 / var(xi).
    pub n_eff: f64,
}

impl Selection {
    pub fn validate(&self) -> Result<()> {
        match self {
            Selection::Limit(l) if !l.is_finite() => invalid!("completeness limit must be finite, got {l}"),
            Selection::Table { x, c } => {
                if x.len() < 2 || x.len() != c.len() {
                    return invalid!("completeness table needs at least 2 rows of (x, completeness)");
                }
                if let Some(i) = (1..x.len()).find(|&i| x[i] <= x[i - 1]) {
                    return invalid!(
                        "completeness table: x must increase, but row {} has {} after {}",
                        i + 1,
                        x[i],
                        x[i - 1]
                    );
                }
                if let Some(i) = c.iter().position(|v| !(0.0..=1.0).contains(v)) {
                    return invalid!(
                        "completeness table: row {} has completeness {}, outside [0, 1]",
                        i + 1,
                        c[i]
                    );
                }
                Ok(())
            }
            Selection::Injections {
                values,
                ln_p_draw,
                n_draw,
                ..
            } => {
                if values.is_empty() || values.len() != ln_p_draw.len() {
                    return invalid!("injections: need found values and their ln p_draw, one each");
                }
                if n_draw.is_nan() || *n_draw < values.len() as f64 {
                    return invalid!(
                        "injections: n_draw = {n_draw} is fewer than the {} found injections",
                        values.len()
                    );
                }
                if let Some(k) = ln_p_draw.iter().position(|v| !v.is_finite()) {
                    return invalid!("injections: injection {k} has ln p_draw = {}", ln_p_draw[k]);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// P_det(mu) applied to each sample's weight (1 for injections and no
    /// selection).
    pub fn completeness(&self, mu: f64) -> f64 {
        match self {
            Selection::Limit(l) => f64::from(u8::from(mu > *l)),
            Selection::Table { x, c } => {
                if mu <= x[0] {
                    return c[0];
                }
                let n = x.len();
                if mu >= x[n - 1] {
                    return c[n - 1];
                }
                let i = x.partition_point(|&v| v <= mu);
                let t = (mu - x[i - 1]) / (x[i] - x[i - 1]);
                c[i - 1] + t * (c[i] - c[i - 1])
            }
            _ => 1.0,
        }
    }

    fn breaks(&self) -> Vec<f64> {
        match self {
            Selection::Limit(l) => vec![*l],
            Selection::Table { x, .. } => x.clone(),
            _ => Vec::new(),
        }
    }

    /// ln of the detectable part of the unnormalised population -- the
    /// integral of P_det f, for injections its Monte Carlo estimate --
    /// with its gradient, and for injections the sums behind Neff_sel.
    /// Without a selection this is ln Z itself. xi = exp(this - ln Z).
    pub fn ln_detectable_grad(
        &self,
        model: &Population,
        theta: &[f64],
        grad: &mut [f64],
    ) -> (f64, Option<InjectionSums>) {
        let p = model.n_params();
        match self {
            Selection::None => (model.ln_norm_grad(theta, grad), None),
            Selection::Limit(_) | Selection::Table { .. } => (
                model.ln_integral_grad(theta, &|x| self.completeness(x), &self.breaks(), grad),
                None,
            ),
            Selection::Injections {
                values,
                ln_p_draw,
                n_draw,
                ..
            } => {
                let mut g = [0.0f64; MAX_PARAMS];
                let ln_r: Vec<f64> = values
                    .iter()
                    .zip(ln_p_draw)
                    .map(|(&x, lq)| model.ln_f_1d(theta, x, None) - lq)
                    .collect();
                let m = ln_r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                grad[..p].fill(0.0);
                let mut sums = InjectionSums {
                    ln_scale: m,
                    s1: 0.0,
                    s2: 0.0,
                    n_draw: *n_draw,
                };
                if m == f64::NEG_INFINITY {
                    return (f64::NEG_INFINITY, Some(sums));
                }
                for (&x, &lr) in values.iter().zip(&ln_r) {
                    let w = (lr - m).exp();
                    sums.s1 += w;
                    sums.s2 += w * w;
                    if w > 0.0 {
                        model.ln_f_1d(theta, x, Some(&mut g[..p]));
                        for k in 0..p {
                            grad[k] += w * g[k];
                        }
                    }
                }
                for gk in grad[..p].iter_mut() {
                    *gk /= sums.s1;
                }
                (m + sums.s1.ln() - n_draw.ln(), Some(sums))
            }
        }
    }

    /// ln xi(theta) (normalised population) with its gradient, and for
    /// injections the estimate's Monte Carlo quality.
    pub fn ln_xi_grad(
        &self,
        model: &Population,
        theta: &[f64],
        grad: &mut [f64],
    ) -> (f64, Option<InjectionEstimate>) {
        let p = model.n_params();
        if matches!(self, Selection::None) {
            grad[..p].fill(0.0);
            return (0.0, None);
        }
        let mut g_norm = [0.0f64; MAX_PARAMS];
        let ln_z = model.ln_norm_grad(theta, &mut g_norm[..p]);
        let (ln_det, sums) = self.ln_detectable_grad(model, theta, grad);
        for k in 0..p {
            grad[k] -= g_norm[k];
        }
        (ln_det - ln_z, sums.map(|s| s.estimate(ln_z)))
    }
}

/// The sums behind an injection estimate: w_k = f(mu_k) / p_draw(mu_k)
/// divided by e^ln_scale, s1 = sum w_k, s2 = sum w_k^2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectionSums {
    pub ln_scale: f64,
    pub s1: f64,
    pub s2: f64,
    pub n_draw: f64,
}

impl InjectionSums {
    /// Neff_sel = xi^2 / var(xi_hat) = s1^2 / (s2 - s1^2 / N_draw), free of
    /// the normalisation and the scale.
    pub fn n_eff(&self) -> f64 {
        let var = self.s2 - self.s1 * self.s1 / self.n_draw;
        if self.s1 == 0.0 {
            0.0
        } else if var > 0.0 {
            self.s1 * self.s1 / var
        } else {
            f64::INFINITY
        }
    }

    /// xi, its standard error and Neff for a population normalised by ln Z:
    /// var(xi_hat) = sum (p/p_draw)^2 / N_draw^2 - xi_hat^2 / N_draw.
    pub fn estimate(&self, ln_z: f64) -> InjectionEstimate {
        let scale = (self.ln_scale - ln_z).exp();
        let xi = scale * self.s1 / self.n_draw;
        let var = (self.s2 * scale * scale / (self.n_draw * self.n_draw) - xi * xi / self.n_draw).max(0.0);
        InjectionEstimate {
            xi,
            xi_sd: var.sqrt(),
            n_eff: self.n_eff(),
        }
    }
}

/// How the number of detected objects enters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Counts {
    /// Shape only: the rate marginalised under a 1/R prior.
    Shape,
    /// Poisson with a free expected number "rate" (before selection).
    Rate,
    /// Poisson for a model with an amplitude: R = volume * integral of f
    /// (e.g. Mpc^3 times the Schechter function's number density).
    Volume(f64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// A hard limit's xi for a Gaussian population is the normal tail
    /// 1 - Phi((limit - m) / s); compare with scipy.stats.norm.sf.
    #[test]
    fn limit_xi_is_the_normal_tail() {
        let sel = Selection::Limit(0.5);
        let mut g = [0.0; 2];
        let (ln_xi, _) = sel.ln_xi_grad(
            &Population::Gaussian(crate::model::gaussian::Gaussian),
            &[0.0, 1.0],
            &mut g,
        );
        // scipy.stats.norm.sf(0.5) = 0.3085375387259869
        assert!(
            (ln_xi.exp() - 0.308_537_538_725_986_9).abs() < 1e-12,
            "{}",
            ln_xi.exp()
        );
        // d ln xi / d m = phi(z) / (s Q(z)), z = 0.5.
        let phi = (-0.125f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        assert!((g[0] - phi / 0.308_537_538_725_986_9).abs() < 1e-9);
    }

    /// Injections drawn uniformly on [-5, 5], found if above the limit,
    /// estimate the same xi within their own standard error; with few
    /// injections the Neff > 4N check fires.
    #[test]
    fn injections_match_the_analytic_xi_within_their_error() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(3);
        let n_draw = 20_000;
        let draws: Vec<f64> = (0..n_draw).map(|_| -5.0 + 10.0 * rng.random::<f64>()).collect();
        let found: Vec<f64> = draws.iter().copied().filter(|&x| x > 0.5).collect();
        let make = |found: &[f64], n_draw: usize| Selection::Injections {
            ln_p_draw: vec![-(10.0f64.ln()); found.len()],
            values: found.to_vec(),
            n_draw: n_draw as f64,
            min_neff_per_object: 4.0,
            reject: true,
        };
        let sel = make(&found, n_draw);
        sel.validate().unwrap();
        let theta = [0.2, 0.8];
        let mut g = [0.0; 2];
        let (ln_xi, est) = sel.ln_xi_grad(
            &Population::Gaussian(crate::model::gaussian::Gaussian),
            &theta,
            &mut g,
        );
        let est = est.unwrap();
        let mut g_exact = [0.0; 2];
        let (ln_exact, _) = Selection::Limit(0.5).ln_xi_grad(
            &Population::Gaussian(crate::model::gaussian::Gaussian),
            &theta,
            &mut g_exact,
        );
        let (xi, exact) = (ln_xi.exp(), ln_exact.exp());
        assert!((xi - est.xi).abs() < 1e-14);
        assert!(
            (xi - exact).abs() < 2.0 * est.xi_sd,
            "xi {xi} vs {exact} (se {})",
            est.xi_sd
        );
        assert!(est.xi_sd > 0.0 && est.xi_sd < 0.02 * exact);
        for k in 0..2 {
            assert!(
                (g[k] - g_exact[k]).abs() < 0.1 * g_exact[k].abs().max(0.1),
                "{g:?} vs {g_exact:?}"
            );
        }
    }

    #[test]
    fn completeness_table_interpolates_and_xi_matches_quadrature() {
        let sel = Selection::Table {
            x: vec![0.0, 1.0, 2.0],
            c: vec![0.0, 0.5, 1.0],
        };
        sel.validate().unwrap();
        assert_eq!(sel.completeness(-1.0), 0.0);
        assert_eq!(sel.completeness(0.5), 0.25);
        assert_eq!(sel.completeness(1.5), 0.75);
        assert_eq!(sel.completeness(9.0), 1.0);
        // xi = integral of C(x) N(x | 1, 0.7) dx, against a midpoint rule
        // with 400k cells (error ~1e-12, well below the 1e-9 asked).
        let theta = [1.0, 0.7];
        let mut g = [0.0; 2];
        let (ln_xi, _) = sel.ln_xi_grad(
            &Population::Gaussian(crate::model::gaussian::Gaussian),
            &theta,
            &mut g,
        );
        // Reference by a fine midpoint rule.
        let n = 400_000;
        let (a, b) = (-10.0, 12.0);
        let h = (b - a) / n as f64;
        let reference: f64 = (0..n)
            .map(|i| {
                let x = a + (i as f64 + 0.5) * h;
                sel.completeness(x)
                    * Population::Gaussian(crate::model::gaussian::Gaussian).pdf_1d(&theta, x)
                    * h
            })
            .sum();
        assert!(
            (ln_xi.exp() - reference).abs() < 1e-9,
            "{} vs {reference}",
            ln_xi.exp()
        );
        let bad = Selection::Table {
            x: vec![0.0, 1.0],
            c: vec![0.0, 1.5],
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("row 2 has completeness 1.5")
        );
    }
}
