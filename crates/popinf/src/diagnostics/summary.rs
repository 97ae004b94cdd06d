//! The numbers reported for one hyperparameter under one method.

use serde::{Deserialize, Serialize};

use crate::math::stats::{mean_sd, quantile_sorted};

/// The numbers the demo reports for one hyperparameter under one method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamSummary {
    pub mean: f64,
    pub sd: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
    /// ArviZ's convergence columns, for sampled (not computed) posteriors.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub convergence: Option<crate::diagnostics::convergence::Convergence>,
}

impl ParamSummary {
    /// Summary of posterior draws.
    pub fn from_draws(draws: &[f64]) -> Self {
        let (mean, sd) = mean_sd(draws);
        let mut sorted = draws.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        Self {
            mean,
            sd,
            q05: quantile_sorted(&sorted, 0.05),
            q50: quantile_sorted(&sorted, 0.5),
            q95: quantile_sorted(&sorted, 0.95),
            convergence: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_draws_matches_numpy() {
        let s = ParamSummary::from_draws(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        // sample sd of 1..4 = sqrt(5/3); numpy.quantile([1, 2, 3, 4], [0.05, 0.5, 0.95]) = [1.15, 2.5, 3.85]
        assert!((s.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(s.q50, 2.5);
        assert!((s.q05 - 1.15).abs() < 1e-12 && (s.q95 - 3.85).abs() < 1e-12);
    }
}
