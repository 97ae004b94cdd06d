//! The Pareto k-hat diagnostic of importance weights (Vehtari, Simpson,
//! Gelman, Yao & Gabry 2024, "Pareto smoothed importance sampling"): fit a
//! generalised Pareto distribution to the largest weights; its shape k says
//! how heavy their tail is. Above min(1 - 1/log10 S, 0.7) the importance
//! estimate is unreliable. Follows ArviZ's `psislw` with r_eff = 1.

/// Generalised Pareto fit (Zhang & Stephens 2009) to sorted exceedances,
/// with ArviZ's weakly informative prior on k. Returns (k, sigma).
fn gpd_fit(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    let nf = n as f64;
    let m_est = 30 + (nf.sqrt() as usize);
    const PRIOR_BS: f64 = 3.0;
    const PRIOR_K: f64 = 10.0;
    let quartile = sorted[((nf / 4.0 + 0.5) as usize).max(1) - 1];
    let last = sorted[n - 1];
    let b: Vec<f64> = (1..=m_est)
        .map(|j| {
            let base = 1.0 - (m_est as f64 / (j as f64 - 0.5)).sqrt();
            base / (PRIOR_BS * quartile) + 1.0 / last
        })
        .collect();
    let k_of = |bj: f64| sorted.iter().map(|x| (-bj * x).ln_1p()).sum::<f64>() / nf;
    let len_scale: Vec<f64> = b
        .iter()
        .map(|&bj| {
            let k = k_of(bj);
            nf * ((-(bj / k)).ln() - k - 1.0)
        })
        .collect();
    let mut weights: Vec<f64> = len_scale
        .iter()
        .map(|li| 1.0 / len_scale.iter().map(|lj| (lj - li).exp()).sum::<f64>())
        .collect();
    // Drop negligible weights, then normalise.
    let keep: Vec<bool> = weights.iter().map(|&w| w >= 10.0 * f64::EPSILON).collect();
    let mut b_kept = Vec::with_capacity(b.len());
    let mut w_kept = Vec::with_capacity(b.len());
    for ((bj, wj), k) in b.iter().zip(weights.iter_mut()).zip(&keep) {
        if *k {
            b_kept.push(*bj);
            w_kept.push(*wj);
        }
    }
    let total: f64 = w_kept.iter().sum();
    let b_post: f64 = b_kept.iter().zip(&w_kept).map(|(bj, wj)| bj * wj / total).sum();
    let k_post = k_of(b_post);
    let sigma = -k_post / b_post;
    let k_post = (nf * k_post + PRIOR_K * 0.5) / (nf + PRIOR_K);
    (k_post, sigma)
}

/// Pareto k-hat of a set of log importance weights. Infinite when the tail
/// holds 4 or fewer weights (too few samples, or all weights equal), as in
/// ArviZ.
pub fn pareto_k_hat(log_weights: &[f64]) -> f64 {
    let n = log_weights.len();
    if n == 0 {
        return f64::NAN;
    }
    let nf = n as f64;
    let tail_size = (nf / 5.0).min(3.0 * nf.sqrt()).ceil() as usize;
    let max = log_weights.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut x: Vec<f64> = log_weights.iter().map(|v| v - max).collect();
    x.sort_by(f64::total_cmp);
    let cutoff_index = n.checked_sub(tail_size + 1);
    let Some(ci) = cutoff_index else {
        return f64::INFINITY;
    };
    let cutoff = x[ci].max(f64::MIN_POSITIVE.ln());
    let exp_cutoff = cutoff.exp();
    let tail: Vec<f64> = x
        .iter()
        .filter(|&&v| v > cutoff)
        .map(|v| v.exp() - exp_cutoff)
        .collect();
    if tail.len() <= 4 {
        return f64::INFINITY;
    }
    gpd_fit(&tail).0
}

/// The k-hat above which the estimate from `n_samples` draws is unreliable.
pub fn k_hat_threshold(n_samples: usize) -> f64 {
    (1.0 - 1.0 / (n_samples as f64).log10()).min(0.7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_matches_the_paper() {
        // S = 100: 1 - 1/2 = 0.5; S = 10^4: min(0.75, 0.7) = 0.7.
        assert!((k_hat_threshold(100) - 0.5).abs() < 1e-15);
        assert_eq!(k_hat_threshold(10_000), 0.7);
    }
}
