//! How far the importance-sampled estimate of ln L can be trusted:
//! per-object effective sample sizes ESS_i = (sum_j w_ij)^2 / sum_j w_ij^2,
//! Var(ln L) ~ sum_i (1/ESS_i - 1/S_i) (Talbot & Golomb 2023) and the Pareto
//! k-hat of each object's weights (Vehtari et al.).

use rayon::prelude::*;

use crate::likelihood::importance::ImportanceLikelihood;
use crate::math::fastmath::{subtract_const_max_lanes, subtract_max_lanes};
use crate::math::psis::{k_hat_threshold, pareto_k_hat};
use crate::model::population::PopulationModel;

/// How far the Monte Carlo estimate of ln L can be trusted at one theta.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reliability {
    /// Where it was evaluated (natural units).
    pub theta: Vec<f64>,
    pub ess_min: f64,
    pub ess_median: f64,
    /// Objects whose effective sample size is below 20.
    pub n_ess_below_20: usize,
    /// Var(ln L) ~ sum_i (1/ESS_i - 1/S_i); want < 1.
    pub var_ln_l: f64,
    /// Largest finite Pareto k-hat over objects.
    pub k_hat_max: f64,
    /// Objects whose k-hat exceeds min(1 - 1/log10 S_i, 0.7), or could
    /// not be fitted for too few samples in the tail.
    pub n_k_hat_above_threshold: usize,
    /// The objects above their k-hat threshold, worst first (at most 10):
    /// (index, k_hat); k-hat is infinite when at most 4 weights stand out
    /// from the rest (one or a few samples carry the object's weight).
    pub worst_objects: Vec<(usize, f64)>,
}

/// [`Reliability`] over a set of posterior draws: at the draw with the
/// median Var(ln L), and at the worst one.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReliabilityReport {
    pub n_draws_checked: usize,
    pub at_median: Reliability,
    pub worst: Reliability,
}

impl<M: PopulationModel> ImportanceLikelihood<'_, M> {
    /// Per-object effective sample size ESS_i = (sum_j w_ij)^2 / sum_j w_ij^2
    /// (Talbot & Golomb 2023) and, when `with_k_hat`, the Pareto k-hat of
    /// the weights at theta (NaN otherwise). A diagnostic, not a hot path;
    /// parallel over objects, results in object order.
    pub fn weight_diagnostics(&self, theta: &[f64], with_k_hat: bool) -> Vec<(f64, f64)> {
        (0..self.catalog().n_obj())
            .into_par_iter()
            .map_init(Vec::new, |ln_w, i| {
                let obj = self.catalog().object(i);
                ln_w.resize(obj.n_samples(), 0.0);
                self.model().ln_pdf_batch(theta, obj.values, ln_w);
                let max = match obj.constant_ln_interim_prior {
                    Some(c) => subtract_const_max_lanes(ln_w, c),
                    None => subtract_max_lanes(ln_w, obj.ln_interim_prior),
                };
                if max == f64::NEG_INFINITY {
                    return (0.0, f64::INFINITY);
                }
                let (w1, w2) = ln_w.iter().fold((0.0, 0.0), |(a, b), lw| {
                    let w = (lw - max).exp();
                    (a + w, b + w * w)
                });
                let k_hat = if with_k_hat { pareto_k_hat(ln_w) } else { f64::NAN };
                (w1 * w1 / w2, k_hat)
            })
            .collect()
    }

    /// Var(ln L) = sum_i (1/ESS_i - 1/S_i) from per-object ESS.
    fn var_ln_l(&self, ess: &[f64]) -> f64 {
        ess.iter()
            .enumerate()
            .map(|(i, e)| 1.0 / e - 1.0 / self.catalog().n_samples(i) as f64)
            .sum()
    }

    /// Summary of the importance weights' reliability at theta.
    pub fn reliability(&self, theta: &[f64]) -> Reliability {
        let diag = self.weight_diagnostics(theta, true);
        let ess: Vec<f64> = diag.iter().map(|d| d.0).collect();
        let var_ln_l = self.var_ln_l(&ess);
        let mut sorted = ess.clone();
        let ess_median = crate::math::stats::median_in_place(&mut sorted);
        let mut by_k: Vec<(usize, f64)> = diag.iter().map(|d| d.1).enumerate().collect();
        by_k.sort_by(|a, b| b.1.total_cmp(&a.1));
        Reliability {
            theta: theta.to_vec(),
            ess_min: sorted[0],
            ess_median,
            n_ess_below_20: ess.iter().filter(|&&e| e < 20.0).count(),
            var_ln_l,
            k_hat_max: by_k
                .iter()
                .map(|k| k.1)
                .find(|k| k.is_finite())
                .unwrap_or(f64::NAN),
            n_k_hat_above_threshold: by_k
                .iter()
                .filter(|(i, k)| k.is_nan() || *k > k_hat_threshold(self.catalog().n_samples(*i)))
                .count(),
            // Only objects above their threshold, so that the count and the
            // list agree (at most 10 named).
            worst_objects: by_k
                .into_iter()
                .filter(|(i, k)| k.is_nan() || *k > k_hat_threshold(self.catalog().n_samples(*i)))
                .take(10)
                .collect(),
        }
    }

    /// Reliability over posterior draws (natural-unit theta vectors):
    /// Var(ln L) at each, then the full report (with k-hat, the costly
    /// part) at the draw with the median Var(ln L) and at the worst.
    pub fn reliability_over(&self, draws: &[Vec<f64>]) -> Option<ReliabilityReport> {
        if draws.is_empty() {
            return None;
        }
        let mut by_var: Vec<(f64, usize)> = draws
            .iter()
            .enumerate()
            .map(|(j, t)| {
                let ess: Vec<f64> = self.weight_diagnostics(t, false).iter().map(|d| d.0).collect();
                (self.var_ln_l(&ess), j)
            })
            .collect();
        by_var.sort_by(|a, b| a.0.total_cmp(&b.0));
        let median = by_var[(by_var.len() - 1) / 2].1;
        let worst = by_var[by_var.len() - 1].1;
        Some(ReliabilityReport {
            n_draws_checked: draws.len(),
            at_median: self.reliability(&draws[median]),
            worst: self.reliability(&draws[worst]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::catalog::SampleCatalog;
    use crate::model::gaussian::Gaussian;

    #[test]
    fn effective_sample_sizes_match_closed_forms() {
        // Equal weights: ESS = S. Two samples with weights 1 and e^-1:
        // ESS = (1 + e^-1)^2 / (1 + e^-2).
        let cat = SampleCatalog::from_objects(
            &[vec![0.5, 0.5, 0.5], vec![0.0, 0.0]],
            Some(&[vec![0.0; 3], vec![0.0, 1.0]]),
        )
        .unwrap();
        let like = ImportanceLikelihood::new(&cat, Gaussian).unwrap();
        let ess: Vec<f64> = like
            .weight_diagnostics(&[0.0, 1.0], true)
            .iter()
            .map(|d| d.0)
            .collect();
        let e1 = (-1.0f64).exp();
        assert!((ess[0] - 3.0).abs() < 1e-12);
        assert!((ess[1] - (1.0 + e1).powi(2) / (1.0 + e1 * e1)).abs() < 1e-12);
        let r = like.reliability(&[0.0, 1.0]);
        let want_var = (1.0 / ess[0] - 1.0 / 3.0) + (1.0 / ess[1] - 0.5);
        assert!((r.var_ln_l - want_var).abs() < 1e-12);
        assert_eq!(r.n_ess_below_20, 2);
        assert_eq!(r.ess_min, ess[1]);
    }
}
