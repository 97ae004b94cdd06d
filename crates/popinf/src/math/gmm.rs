//! Weighted Gaussian mixtures in one dimension: EM with the number of
//! components chosen by BIC, Gauss–Legendre nodes for integrating against
//! them, and a Kolmogorov–Smirnov check of how well a fitted mixture
//! describes the weighted samples it came from.
//!
//! The gmm likelihood (`likelihood::gmm`) fits one mixture per object to
//! its posterior samples weighted by 1 / interim prior, i.e. to the
//! object's likelihood l_i(mu) ∝ q_i(mu) / pi(mu).

use crate::error::Result;
use crate::invalid;

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// A one-dimensional Gaussian mixture sum_k w_k N(mean_k, sd_k).
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture1 {
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub sds: Vec<f64>,
}

impl Mixture1 {
    pub fn n_components(&self) -> usize {
        self.weights.len()
    }

    /// ln of the mixture density at x.
    pub fn ln_pdf(&self, x: f64) -> f64 {
        let mut max = f64::NEG_INFINITY;
        let mut terms = [0.0f64; MAX_COMPONENTS];
        for (k, t) in terms.iter_mut().enumerate().take(self.n_components()) {
            *t = ln_normal(x, self.means[k], self.sds[k]) + self.weights[k].ln();
            max = max.max(*t);
        }
        if max == f64::NEG_INFINITY {
            return max;
        }
        max + terms[..self.n_components()]
            .iter()
            .map(|t| (t - max).exp())
            .sum::<f64>()
            .ln()
    }

    /// The mixture's cumulative distribution at x.
    pub fn cdf(&self, x: f64) -> f64 {
        (0..self.n_components())
            .map(|k| self.weights[k] * normal_cdf((x - self.means[k]) / self.sds[k]))
            .sum()
    }
}

/// ln N(x; mean, sd).
#[inline]
pub fn ln_normal(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    -0.5 * z * z - sd.ln() - LN_SQRT_2PI
}

use crate::math::special::norm_cdf as normal_cdf;

/// Most components a fitted mixture may have.
pub const MAX_COMPONENTS: usize = 4;

/// How mixtures are fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GmmSettings {
    /// Largest K tried (1..=MAX_COMPONENTS).
    pub max_components: usize,
    /// Variance floor: no component is narrower than this fraction of the
    /// samples' (weighted) sd, so that EM cannot collapse a component onto
    /// a few samples.
    pub sd_floor: f64,
    /// A K is only accepted when every component holds at least this many
    /// effective samples.
    pub min_samples_per_component: f64,
    pub max_iter: usize,
}

impl Default for GmmSettings {
    fn default() -> Self {
        Self {
            max_components: MAX_COMPONENTS,
            sd_floor: 0.02,
            min_samples_per_component: 5.0,
            max_iter: 100,
        }
    }
}

/// A fitted mixture and the numbers that chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct MixtureFit {
    pub mixture: Mixture1,
    /// Kish effective sample size of the weights, (sum w)^2 / sum w^2.
    pub n_eff: f64,
    /// Kolmogorov–Smirnov distance between the weighted samples' CDF and
    /// the mixture's, and its p-value at n_eff samples (conservative: the
    /// mixture was fitted to these samples).
    pub ks_distance: f64,
    pub ks_p_value: f64,
}

/// Fits a mixture to samples `x` with weights `ln_w` (logs, any scale):
/// EM for K = 1..=max_components from a deterministic start (the weighted
/// quantile groups), K chosen by BIC with n_eff as the sample size (K
/// grows while BIC improves, or while the best fit so far fails the KS
/// check). Each component's maximum-likelihood variance is then scaled by
/// (n + 1) / (n - 1), n its effective samples: n / (n - 1) unbiases it,
/// and (1 + 1/n) marginalises its mean, known only to sd / sqrt(n) — the
/// predictive of the true likelihood given the samples. Without it a
/// population's fitted scatter comes out too wide by ~2 sd^2 / n.
pub fn fit_mixture(x: &[f64], ln_w: &[f64], settings: &GmmSettings) -> Result<MixtureFit> {
    let n = x.len();
    if n == 0 || ln_w.len() != n {
        return invalid!("gmm: {} samples with {} weights", n, ln_w.len());
    }
    if let Some(j) = x.iter().position(|v| !v.is_finite()) {
        return invalid!("gmm: sample {j} is {} (must be finite)", x[j]);
    }
    let max_ln = ln_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max_ln.is_finite() {
        return invalid!("gmm: no sample has a finite positive weight");
    }
    let w: Vec<f64> = ln_w.iter().map(|l| (l - max_ln).exp()).collect();
    let sum_w: f64 = w.iter().sum();
    let w: Vec<f64> = w.iter().map(|v| v / sum_w).collect();
    let n_eff = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
    let mean: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
    let var: f64 = x.iter().zip(&w).map(|(a, b)| b * (a - mean).powi(2)).sum();
    if !(mean.is_finite() && var.is_finite()) {
        let big = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        return invalid!(
            "gmm: the samples' variance overflows (values up to {big:e}); rescale the data, e.g. to log10 units"
        );
    }
    // A floor that is also positive for an object whose samples are all
    // equal (a delta posterior stays a very narrow Gaussian).
    let floor = (settings.sd_floor * var.sqrt()).max(1e-9 * (1.0 + mean.abs()));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut best: Option<(Mixture1, f64, Vec<f64>)> = None;
    for k in 1..=settings.max_components.clamp(1, MAX_COMPONENTS) {
        if (k as f64) * settings.min_samples_per_component > n_eff && k > 1 {
            break;
        }
        let Some((mix, ll, shares)) = em(x, &w, &order, k, floor, settings.max_iter) else {
            continue;
        };
        if k > 1
            && shares
                .iter()
                .any(|s| s * n_eff < settings.min_samples_per_component)
        {
            continue;
        }
        let n_free = (3 * k - 1) as f64;
        let bic = -2.0 * n_eff * ll + n_free * n_eff.ln();
        if best.as_ref().is_none_or(|b| bic < b.1) {
            best = Some((mix, bic, shares));
        } else if let Some(b) = &best
            && ks_test(x, &w, &order, &b.0, n_eff).1 > 0.05
        {
            // K no longer helps and the best fit describes the samples.
            break;
        }
    }
    let Some((mut mixture, _, shares)) = best else {
        return invalid!("gmm: EM found no mixture for these samples (mean {mean}, variance {var})");
    };
    for (sd, share) in mixture.sds.iter_mut().zip(&shares) {
        let n = (share * n_eff).max(3.0);
        *sd *= ((n + 1.0) / (n - 1.0)).sqrt();
    }
    let (ks_distance, ks_p_value) = ks_test(x, &w, &order, &mixture, n_eff);
    Ok(MixtureFit {
        mixture,
        n_eff,
        ks_distance,
        ks_p_value,
    })
}

/// EM for `k` components on normalised weights `w`; returns the mixture,
/// the weighted mean log density and each component's share of the weight.
fn em(
    x: &[f64],
    w: &[f64],
    order: &[usize],
    k: usize,
    floor: f64,
    max_iter: usize,
) -> Option<(Mixture1, f64, Vec<f64>)> {
    let n = x.len();
    // Start: K groups of equal weight along the sorted values.
    let mut mix = Mixture1 {
        weights: vec![1.0 / k as f64; k],
        means: vec![0.0; k],
        sds: vec![0.0; k],
    };
    {
        let mut sums = vec![[0.0f64; 3]; k];
        let mut cum = 0.0;
        for &j in order {
            let g = ((cum + 0.5 * w[j]) * k as f64).floor().min(k as f64 - 1.0) as usize;
            cum += w[j];
            sums[g][0] += w[j];
            sums[g][1] += w[j] * x[j];
            sums[g][2] += w[j] * x[j] * x[j];
        }
        for (c, sum) in sums.iter().enumerate() {
            if sum[0] <= 0.0 {
                return None;
            }
            let m = sum[1] / sum[0];
            mix.means[c] = m;
            mix.sds[c] = (sum[2] / sum[0] - m * m).max(0.0).sqrt().max(floor);
            mix.weights[c] = sum[0];
        }
    }
    let mut resp = vec![0.0f64; n * k];
    let mut ll_old = f64::NEG_INFINITY;
    let mut ll = f64::NEG_INFINITY;
    for _ in 0..max_iter {
        // E step.
        ll = 0.0;
        // Per component: ln w - ln sd - ln sqrt(2 pi), and 1 / sd.
        let mut consts = [[0.0f64; 2]; MAX_COMPONENTS];
        for (c, kc) in consts.iter_mut().enumerate().take(k) {
            *kc = [
                mix.weights[c].ln() - mix.sds[c].ln() - LN_SQRT_2PI,
                1.0 / mix.sds[c],
            ];
        }
        for j in 0..n {
            let r = &mut resp[j * k..(j + 1) * k];
            let mut max = f64::NEG_INFINITY;
            for (c, rc) in r.iter_mut().enumerate() {
                let z = (x[j] - mix.means[c]) * consts[c][1];
                *rc = consts[c][0] - 0.5 * z * z;
                max = max.max(*rc);
            }
            let mut s = 0.0;
            for v in r.iter_mut() {
                *v = (*v - max).exp();
                s += *v;
            }
            for v in r.iter_mut() {
                *v /= s;
            }
            ll += w[j] * (max + s.ln());
        }
        // M step.
        for c in 0..k {
            let (mut s0, mut s1) = (0.0, 0.0);
            for j in 0..n {
                let rw = resp[j * k + c] * w[j];
                s0 += rw;
                s1 += rw * x[j];
            }
            if s0 <= 0.0 || s0.is_nan() {
                return None;
            }
            let m = s1 / s0;
            let s2: f64 = (0..n).map(|j| resp[j * k + c] * w[j] * (x[j] - m).powi(2)).sum();
            mix.weights[c] = s0;
            mix.means[c] = m;
            mix.sds[c] = (s2 / s0).sqrt().max(floor);
        }
        if (ll - ll_old).abs() <= 1e-7 {
            break;
        }
        ll_old = ll;
    }
    if !ll.is_finite() {
        return None;
    }
    // Components in order of their means: a stable, readable output.
    let mut idx: Vec<usize> = (0..k).collect();
    idx.sort_by(|&a, &b| mix.means[a].total_cmp(&mix.means[b]));
    let sorted = Mixture1 {
        weights: idx.iter().map(|&c| mix.weights[c]).collect(),
        means: idx.iter().map(|&c| mix.means[c]).collect(),
        sds: idx.iter().map(|&c| mix.sds[c]).collect(),
    };
    let shares = sorted.weights.clone();
    Some((sorted, ll, shares))
}

/// The weighted Kolmogorov–Smirnov distance between the samples and the
/// mixture, and its asymptotic p-value at `n_eff` samples (Stephens'
/// small-sample adjustment).
fn ks_test(x: &[f64], w: &[f64], order: &[usize], mix: &Mixture1, n_eff: f64) -> (f64, f64) {
    let mut cum = 0.0;
    let mut d: f64 = 0.0;
    for &j in order {
        let f = mix.cdf(x[j]);
        d = d.max((f - cum).abs());
        cum += w[j];
        d = d.max((cum - f).abs());
    }
    let sqrt_n = n_eff.sqrt();
    let lambda = (sqrt_n + 0.12 + 0.11 / sqrt_n) * d;
    (d, kolmogorov_sf(lambda))
}

/// Q_KS(lambda) = 2 sum_k (-1)^(k-1) exp(-2 k^2 lambda^2).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let t = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        s += if k % 2 == 1 { t } else { -t };
        if t < 1e-16 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// Gauss–Legendre nodes and weights on [-1, 1] (Newton on P_n from the
/// Chebyshev guesses; accurate to rounding for the n used here).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for j in 2..=n {
                let p2 = ((2 * j - 1) as f64 * z * p1 - (j - 1) as f64 * p0) / j as f64;
                p0 = p1;
                p1 = p2;
            }
            let p = if n == 0 { 1.0 } else { p1 };
            let pm1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (z * p - pm1) / (z * z - 1.0);
            let dz = p / dp;
            z -= dz;
            if dz.abs() < 1e-16 {
                break;
            }
        }
        nodes[i] = -z;
        nodes[n - 1 - i] = z;
        let wt = 2.0 / ((1.0 - z * z) * dp * dp);
        weights[i] = wt;
        weights[n - 1 - i] = wt;
    }
    (nodes, weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn gauss_legendre_integrates_polynomials_and_the_gaussian() {
        for n in [1, 2, 5, 16, 24, 33] {
            let (x, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-13, "n={n}");
            // x^(2n-2) integrates to 2 / (2n-1) exactly.
            let p = 2 * n - 2;
            let v: f64 = x.iter().zip(&w).map(|(a, b)| b * a.powi(p as i32)).sum();
            assert!((v - 2.0 / (p as f64 + 1.0)).abs() < 1e-12, "n={n}: {v}");
        }
        // N(0, 1) over [-7, 7] with 32 nodes: erf(7 / sqrt 2) = 1 - 2.6e-12
        // (numpy's leggauss gives the same to 1e-14; 24 nodes miss by 3e-9).
        let (x, w) = gauss_legendre(32);
        let v: f64 = x
            .iter()
            .zip(&w)
            .map(|(t, b)| 7.0 * b * ln_normal(7.0 * t, 0.0, 1.0).exp())
            .sum();
        assert!((v - 1.0).abs() < 1e-11, "{v}");
    }

    #[test]
    fn recovers_a_known_two_component_mixture() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(1);
        let (a, b) = (Normal::new(-2.0, 0.5).unwrap(), Normal::new(1.0, 1.0).unwrap());
        let x: Vec<f64> = (0..4000)
            .map(|j| {
                if j % 10 < 3 {
                    a.sample(&mut rng)
                } else {
                    b.sample(&mut rng)
                }
            })
            .collect();
        let fit = fit_mixture(&x, &vec![0.0; x.len()], &GmmSettings::default()).unwrap();
        let m = &fit.mixture;
        assert_eq!(m.n_components(), 2, "{m:?}");
        // Sampling errors at n = 4000: weight 0.007, means 0.015-0.02.
        assert!((m.weights[0] - 0.3).abs() < 0.03, "{m:?}");
        assert!(
            (m.means[0] + 2.0).abs() < 0.06 && (m.means[1] - 1.0).abs() < 0.06,
            "{m:?}"
        );
        assert!(
            (m.sds[0] - 0.5).abs() < 0.05 && (m.sds[1] - 1.0).abs() < 0.05,
            "{m:?}"
        );
        assert!(fit.ks_p_value > 0.05, "{fit:?}");
        // One Gaussian's samples keep one component.
        let y: Vec<f64> = (0..200).map(|_| b.sample(&mut rng)).collect();
        let one = fit_mixture(&y, &vec![0.0; y.len()], &GmmSettings::default()).unwrap();
        assert_eq!(one.mixture.n_components(), 1);
        // A bimodal sample forced into one component fails the KS check.
        let forced = GmmSettings {
            max_components: 1,
            ..GmmSettings::default()
        };
        let bad = fit_mixture(&x, &vec![0.0; x.len()], &forced).unwrap();
        assert!(bad.ks_p_value < 1e-6, "{bad:?}");
    }

    /// Weights 1 / pi turn samples of q into a fit of q / pi: samples of
    /// N(0, 1) drawn under pi = N(0, 2) weighted by 1 / pi describe
    /// N(0, 1) / N(0, 2) ∝ N(0, sqrt(4/3)).
    #[test]
    fn weights_divide_out_the_interim_prior() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(2);
        let q = Normal::new(0.0, 1.0).unwrap();
        let x: Vec<f64> = (0..20_000).map(|_| q.sample(&mut rng)).collect();
        let ln_w: Vec<f64> = x.iter().map(|&v| -ln_normal(v, 0.0, 2.0)).collect();
        let fit = fit_mixture(&x, &ln_w, &GmmSettings::default()).unwrap();
        let m = &fit.mixture;
        assert_eq!(m.n_components(), 1);
        assert!(m.means[0].abs() < 0.03, "{m:?}");
        assert!((m.sds[0] - (4.0f64 / 3.0).sqrt()).abs() < 0.03, "{m:?}");
    }

    #[test]
    fn equal_samples_give_a_narrow_component_and_bad_input_an_error() {
        let fit = fit_mixture(&[3.0; 50], &[0.0; 50], &GmmSettings::default()).unwrap();
        assert_eq!(fit.mixture.n_components(), 1);
        assert!((fit.mixture.means[0] - 3.0).abs() < 1e-14);
        assert!(fit.mixture.sds[0] > 0.0 && fit.mixture.sds[0] < 1e-8);
        assert!(fit_mixture(&[1.0, f64::NAN], &[0.0, 0.0], &GmmSettings::default()).is_err());
        assert!(fit_mixture(&[1.0], &[f64::NEG_INFINITY], &GmmSettings::default()).is_err());
    }

    #[test]
    fn kolmogorov_distribution_matches_published_values() {
        // Q_KS(1.36) = 0.0494, Q_KS(1.63) = 0.0098 (the 5% and 1% points).
        assert!((kolmogorov_sf(1.358_1) - 0.05).abs() < 2e-4);
        assert!((kolmogorov_sf(1.627_6) - 0.01).abs() < 2e-4);
    }
}
