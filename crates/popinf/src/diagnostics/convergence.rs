//! Convergence diagnostics in ArviZ's definitions (Vehtari, Gelman,
//! Simpson, Carpenter & Buerkner 2021, arXiv:1903.08008): rank-normalised
//! split R-hat, bulk and tail effective sample sizes, Monte Carlo standard
//! errors, the highest-density interval, and E-BFMI. Tested against numbers
//! ArviZ computed on saved draws.

use serde::{Deserialize, Serialize};

use crate::diagnostics::autocorr::autocovariance;
use crate::math::special::norm_ppf;
use crate::math::stats::{mean_sd, quantile_sorted};

/// Chains of one parameter: `chains[c][d]`, equal lengths.
type Chains = Vec<Vec<f64>>;

/// Each chain cut in two halves (the middle draw dropped when odd), so
/// that a trend within a chain shows up as disagreement between chains.
pub fn split_chains(chains: &[&[f64]]) -> Chains {
    let n = chains.first().map_or(0, |c| c.len());
    let half = n / 2;
    let mut out: Chains = chains.iter().map(|c| c[..half].to_vec()).collect();
    out.extend(chains.iter().map(|c| c[n - half..].to_vec()));
    out
}

/// Replaces every value by the normal quantile of its fractional rank over
/// all chains (average ranks for ties, Blom's offset 3/8).
fn rank_normalise(chains: &Chains) -> Chains {
    let flat: Vec<f64> = chains.iter().flatten().copied().collect();
    let n = flat.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]));
    let mut rank = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && flat[order[j]] == flat[order[i]] {
            j += 1;
        }
        // Ranks are 1-based; ties share the average of i+1..=j.
        let avg = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            rank[k] = avg;
        }
        i = j;
    }
    let denom = n as f64 + 0.25;
    let mut z = rank.iter().map(|r| norm_ppf((r - 0.375) / denom));
    chains
        .iter()
        .map(|c| c.iter().map(|_| z.next().expect("same length")).collect())
        .collect()
}

fn median(chains: &Chains) -> f64 {
    let mut flat: Vec<f64> = chains.iter().flatten().copied().collect();
    crate::math::stats::median_in_place(&mut flat)
}

fn fold(chains: &Chains) -> Chains {
    let m = median(chains);
    chains
        .iter()
        .map(|c| c.iter().map(|v| (v - m).abs()).collect())
        .collect()
}

fn sample_var(x: &[f64]) -> f64 {
    let (_, sd) = mean_sd(x);
    sd * sd
}

/// Classic (non-split) potential scale reduction of equal-length chains.
fn rhat_basic(chains: &Chains) -> f64 {
    let n = chains[0].len() as f64;
    let means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / n).collect();
    let within = chains.iter().map(|c| sample_var(c)).sum::<f64>() / chains.len() as f64;
    let between = n * sample_var(&means);
    ((between / within + n - 1.0) / n).sqrt()
}

/// Effective sample size with Geyer's initial monotone sequence, combining
/// chains as in Stan and ArviZ (`_ess`).
fn ess_basic(chains: &Chains) -> f64 {
    let n_chain = chains.len();
    let n = chains[0].len();
    let (lo, hi) = chains
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if hi - lo < 1e-15 {
        return (n_chain * n) as f64;
    }
    let acov: Vec<Vec<f64>> = chains.iter().map(|c| autocovariance(c)).collect();
    let mean_acov = |t: usize| acov.iter().map(|a| a[t]).sum::<f64>() / n_chain as f64;
    let nf = n as f64;
    let chain_means: Vec<f64> = chains.iter().map(|c| c.iter().sum::<f64>() / nf).collect();
    let mean_var = mean_acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if n_chain > 1 {
        var_plus += sample_var(&chain_means);
    }
    let rho_at = |t: usize| 1.0 - (mean_var - mean_acov(t)) / var_plus;
    let mut rho = vec![0.0; n];
    let mut rho_even = 1.0;
    let mut rho_odd = rho_at(1);
    rho[0] = rho_even;
    rho[1] = rho_odd;
    // Geyer's initial positive sequence over pairs of lags.
    let mut t = 1;
    while t + 3 < n && rho_even + rho_odd > 0.0 {
        rho_even = rho_at(t + 1);
        rho_odd = rho_at(t + 2);
        if rho_even + rho_odd >= 0.0 {
            rho[t + 1] = rho_even;
            rho[t + 2] = rho_odd;
        }
        t += 2;
    }
    let max_t = t as isize - 2;
    if rho_even > 0.0 {
        rho[(max_t + 1) as usize] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t = 1isize;
    while t <= max_t - 2 {
        let (tu, a) = (t as usize, t as usize);
        if rho[tu + 1] + rho[tu + 2] > rho[a - 1] + rho[a] {
            rho[tu + 1] = (rho[a - 1] + rho[a]) / 2.0;
            rho[tu + 2] = rho[tu + 1];
        }
        t += 2;
    }
    let total = (n_chain * n) as f64;
    let head: f64 = rho[..(max_t + 1) as usize].iter().sum();
    let tau = (-1.0 + 2.0 * head + rho[(max_t + 1) as usize]).max(1.0 / total.log10());
    total / tau
}

/// Rank-normalised split R-hat: the larger of the bulk and folded (tail)
/// values. Needs at least 2 chains and 4 draws; NaN otherwise.
pub fn rhat(chains: &[&[f64]]) -> f64 {
    if chains.len() < 2 || chains[0].len() < 4 {
        return f64::NAN;
    }
    let split = split_chains(chains);
    let bulk = rhat_basic(&rank_normalise(&split));
    let tail = rhat_basic(&rank_normalise(&fold(&split)));
    bulk.max(tail)
}

/// Bulk effective sample size: ESS of the rank-normalised split chains.
pub fn ess_bulk(chains: &[&[f64]]) -> f64 {
    if chains.is_empty() || chains[0].len() < 4 {
        return f64::NAN;
    }
    ess_basic(&rank_normalise(&split_chains(chains)))
}

/// ESS of the indicator I(x <= q) for the quantile q at `prob`.
fn ess_quantile(chains: &[&[f64]], prob: f64) -> f64 {
    let mut flat: Vec<f64> = chains.iter().flat_map(|c| c.iter().copied()).collect();
    flat.sort_by(f64::total_cmp);
    let q = quantile_sorted(&flat, prob);
    let indicator: Chains = chains
        .iter()
        .map(|c| c.iter().map(|&v| if v <= q { 1.0 } else { 0.0 }).collect())
        .collect();
    let refs: Vec<&[f64]> = indicator.iter().map(|c| c.as_slice()).collect();
    ess_basic(&split_chains(&refs))
}

/// Tail effective sample size: the smaller of the ESS of the 5% and 95%
/// quantile indicators.
pub fn ess_tail(chains: &[&[f64]]) -> f64 {
    if chains.is_empty() || chains[0].len() < 4 {
        return f64::NAN;
    }
    ess_quantile(chains, 0.05).min(ess_quantile(chains, 0.95))
}

/// ESS for the mean: of the split chains themselves.
pub fn ess_mean(chains: &[&[f64]]) -> f64 {
    if chains.is_empty() || chains[0].len() < 4 {
        return f64::NAN;
    }
    ess_basic(&split_chains(chains))
}

/// Monte Carlo standard error of the posterior mean.
pub fn mcse_mean(chains: &[&[f64]]) -> f64 {
    let flat: Vec<f64> = chains.iter().flat_map(|c| c.iter().copied()).collect();
    let (_, sd) = mean_sd(&flat);
    sd / ess_mean(chains).sqrt()
}

/// Monte Carlo standard error of the posterior sd (ArviZ's delta-method
/// form on the squared deviations).
pub fn mcse_sd(chains: &[&[f64]]) -> f64 {
    let total = chains.iter().map(|c| c.len()).sum::<usize>() as f64;
    let mean = chains.iter().flat_map(|c| c.iter()).sum::<f64>() / total;
    let sq: Chains = chains
        .iter()
        .map(|c| c.iter().map(|v| (v - mean).powi(2)).collect())
        .collect();
    let refs: Vec<&[f64]> = sq.iter().map(|c| c.as_slice()).collect();
    let ess = ess_mean(&refs);
    let evar = sq.iter().flatten().sum::<f64>() / total;
    let e4 = sq.iter().flatten().map(|v| v * v).sum::<f64>() / total;
    let varvar = (e4 - evar * evar) / ess;
    (varvar / evar / 4.0).sqrt()
}

/// Narrowest interval holding `prob` of the draws.
pub fn hdi(values: &[f64], prob: f64) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let inc = (prob * n as f64).floor() as usize;
    if n == 0 || inc >= n {
        return (f64::NAN, f64::NAN);
    }
    let best = (0..n - inc)
        .min_by(|&a, &b| (sorted[a + inc] - sorted[a]).total_cmp(&(sorted[b + inc] - sorted[b])))
        .expect("at least one interval");
    (sorted[best], sorted[best + inc])
}

/// Energy Bayesian fraction of missing information of one chain's energies
/// (Betancourt 2016); below 0.3 the momentum resampling explores poorly.
pub fn bfmi(energy: &[f64]) -> f64 {
    let num = energy.windows(2).map(|w| (w[1] - w[0]).powi(2)).sum::<f64>() / (energy.len() - 1) as f64;
    num / sample_var(energy)
}

/// The convergence columns of ArviZ's summary (everything but mean and sd).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Convergence {
    pub r_hat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    pub mcse_mean: f64,
    pub mcse_sd: f64,
    pub hdi_3: f64,
    pub hdi_97: f64,
}

impl Convergence {
    pub fn from_chains(chains: &[&[f64]]) -> Self {
        let flat: Vec<f64> = chains.iter().flat_map(|c| c.iter().copied()).collect();
        let (hdi_3, hdi_97) = hdi(&flat, 0.94);
        Self {
            r_hat: rhat(chains),
            ess_bulk: ess_bulk(chains),
            ess_tail: ess_tail(chains),
            mcse_mean: mcse_mean(chains),
            mcse_sd: mcse_sd(chains),
            hdi_3,
            hdi_97,
        }
    }

    /// Whether the draws meet the usual targets (Vehtari et al. 2021):
    /// r_hat <= 1.01 and bulk and tail ESS >= 400.
    pub fn meets_targets(&self) -> bool {
        self.r_hat <= 1.01 && self.ess_bulk >= 400.0 && self.ess_tail >= 400.0
    }
}

/// ArviZ's summary row for one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParamDiagnostics {
    pub mean: f64,
    pub sd: f64,
    pub hdi_3: f64,
    pub hdi_97: f64,
    pub mcse_mean: f64,
    pub mcse_sd: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    pub r_hat: f64,
}

impl ParamDiagnostics {
    pub fn from_chains(chains: &[&[f64]]) -> Self {
        let flat: Vec<f64> = chains.iter().flat_map(|c| c.iter().copied()).collect();
        let (mean, sd) = mean_sd(&flat);
        let c = Convergence::from_chains(chains);
        Self {
            mean,
            sd,
            hdi_3: c.hdi_3,
            hdi_97: c.hdi_97,
            mcse_mean: c.mcse_mean,
            mcse_sd: c.mcse_sd,
            ess_bulk: c.ess_bulk,
            ess_tail: c.ess_tail,
            r_hat: c.r_hat,
        }
    }
}
