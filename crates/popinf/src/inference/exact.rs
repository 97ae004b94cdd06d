//! The exact answer for the Gaussian toy: with x_i ~ N(mu_i, sigma_i) and
//! mu_i ~ N(theta_mu, theta_sigma) the latent mu_i integrate out,
//! x_i ~ N(theta_mu, sqrt(theta_sigma^2 + sigma_i^2)), and the 2-D
//! hyperposterior is computed by quadrature on an adaptive grid. Every
//! sampling method is checked against it.

use crate::data::catalog::Measurements;
use crate::diagnostics::summary::ParamSummary;
use crate::error::Result;
use crate::invalid;
use crate::likelihood::importance::HyperLikelihood;
use crate::model::prior::{Hyperprior, Support};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;

/// ln L(theta_mu, theta_sigma) = sum_i ln N(x_i | theta_mu, theta_sigma^2 + sigma_i^2).
pub struct GaussianMarginalLikelihood<'m> {
    measurements: &'m Measurements,
}

impl<'m> GaussianMarginalLikelihood<'m> {
    pub fn new(measurements: &'m Measurements) -> Self {
        Self { measurements }
    }
}

impl HyperLikelihood for GaussianMarginalLikelihood<'_> {
    fn param_names(&self) -> Vec<String> {
        vec!["theta_mu".into(), "theta_sigma".into()]
    }

    fn ln_likelihood(&self, theta: &[f64]) -> f64 {
        let (m, s2) = (theta[0], theta[1] * theta[1]);
        let mut total = 0.0;
        for (&x, &sig) in self.measurements.x().iter().zip(self.measurements.sigma()) {
            let v = s2 + sig * sig;
            total += -0.5 * (x - m) * (x - m) / v - 0.5 * v.ln() - HALF_LN_2PI;
        }
        total
    }

    fn ln_likelihood_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (m, s) = (theta[0], theta[1]);
        let (mut total, mut g_m, mut g_s) = (0.0, 0.0, 0.0);
        for (&x, &sig) in self.measurements.x().iter().zip(self.measurements.sigma()) {
            let v = s * s + sig * sig;
            let d = x - m;
            total += -0.5 * d * d / v - 0.5 * v.ln() - HALF_LN_2PI;
            g_m += d / v;
            g_s += (d * d / (v * v) - 1.0 / v) * s;
        }
        grad[0] = g_m;
        grad[1] = g_s;
        total
    }
}

/// A posterior on a 2-D grid: the marginal densities and their summaries.
#[derive(Debug, Clone)]
pub struct GridPosterior {
    /// Grid nodes of each parameter.
    pub nodes: [Vec<f64>; 2],
    /// Normalised marginal density of each parameter at its nodes.
    pub marginals: [Vec<f64>; 2],
    pub summaries: [ParamSummary; 2],
    /// Joint density relative to its maximum at node (theta_mu\[i\],
    /// theta_sigma\[j\]), index `j * n + i`.
    pub joint: Vec<f64>,
}

impl GridPosterior {
    /// `n` draws (theta_mu, theta_sigma) from the tabulated posterior: a
    /// node with probability proportional to its density, then a uniform
    /// offset within its cell (clamped to the grid). For plots next to
    /// sampled methods; the summaries above come from the quadrature.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<[f64; 2]> {
        use rand::{RngExt, SeedableRng};
        let m = self.nodes[0].len();
        let h = [
            self.nodes[0][1] - self.nodes[0][0],
            self.nodes[1][1] - self.nodes[1][0],
        ];
        let mut cdf = Vec::with_capacity(self.joint.len());
        let mut acc = 0.0;
        for &p in &self.joint {
            acc += p;
            cdf.push(acc);
        }
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let u: f64 = rng.random::<f64>() * acc;
                let k = cdf.partition_point(|&c| c < u).min(cdf.len() - 1);
                let (i, j) = (k % m, k / m);
                let jitter = |node: &[f64], idx: usize, h: f64, u: f64| {
                    (node[idx] + (u - 0.5) * h).clamp(node[0], node[node.len() - 1])
                };
                [
                    jitter(&self.nodes[0], i, h[0], rng.random()),
                    jitter(&self.nodes[1], j, h[1], rng.random()),
                ]
            })
            .collect()
    }
}

/// Trapezoid weights for `n` equally spaced nodes of spacing `h`.
fn trapezoid_weight(i: usize, n: usize, h: f64) -> f64 {
    if i == 0 || i == n - 1 { 0.5 * h } else { h }
}

/// ln prior on the closed support, so that a grid node on a boundary (such
/// as theta_sigma = 0 under U(0, 2)) gets the limiting density, not zero.
fn ln_prior_closed(prior: &Hyperprior, x: f64) -> f64 {
    let inside = match prior.support() {
        Support::Real => x.is_finite(),
        Support::Positive => x >= 0.0 && x.is_finite(),
        Support::Interval(a, b) => x >= a && x <= b,
    };
    if inside {
        prior.ln_pdf_grad(x).0
    } else {
        f64::NEG_INFINITY
    }
}

fn closed_support(prior: &Hyperprior) -> (f64, f64) {
    match prior.support() {
        Support::Real => (f64::NEG_INFINITY, f64::INFINITY),
        Support::Positive => (0.0, f64::INFINITY),
        Support::Interval(a, b) => (a, b),
    }
}

/// Summary of a normalised density tabulated on equally spaced nodes.
fn summarise_marginal(nodes: &[f64], density: &[f64]) -> ParamSummary {
    let n = nodes.len();
    let h = nodes[1] - nodes[0];
    let w = |i| trapezoid_weight(i, n, h);
    let mean: f64 = (0..n).map(|i| w(i) * density[i] * nodes[i]).sum();
    let var: f64 = (0..n)
        .map(|i| w(i) * density[i] * (nodes[i] - mean).powi(2))
        .sum();
    // Cumulative trapezoid; inside a cell the density is linear, so the CDF
    // is quadratic and is inverted exactly.
    let mut cdf = vec![0.0; n];
    for i in 1..n {
        cdf[i] = cdf[i - 1] + 0.5 * h * (density[i - 1] + density[i]);
    }
    let quantile = |q: f64| {
        let target = q * cdf[n - 1];
        let i = cdf.partition_point(|&c| c < target).clamp(1, n - 1);
        nodes[i - 1]
            + crate::math::stats::invert_linear_cell(density[i - 1], density[i], h, target - cdf[i - 1])
    };
    ParamSummary {
        mean,
        sd: var.sqrt(),
        q05: quantile(0.05),
        q50: quantile(0.5),
        q95: quantile(0.95),
        convergence: None,
    }
}

/// Posterior of the Gaussian toy on an `n_grid` x `n_grid` grid.
///
/// The grid starts over a wide window and is narrowed to mean +- 12 sd of
/// the current marginals until the window stops shrinking, so it resolves
/// the posterior whether N is 10 or 10^6; the final pass uses `n_grid`
/// nodes per axis.
pub fn gaussian_grid_posterior(
    measurements: &Measurements,
    prior_mu: &Hyperprior,
    prior_sigma: &Hyperprior,
    n_grid: usize,
) -> Result<GridPosterior> {
    if n_grid < 21 {
        return invalid!("exact posterior: grid of {n_grid} nodes per axis is too coarse (need >= 21)");
    }
    prior_mu.validate()?;
    prior_sigma.validate()?;
    if matches!(prior_sigma.support(), Support::Real) {
        return invalid!("exact posterior: theta_sigma needs a prior on positive values, got {prior_sigma}");
    }
    let x = measurements.x();
    let n = x.len() as f64;
    // Work relative to the data's mean so the expanded quadratic form
    // below loses no precision when x is far from zero (log masses ~ 10).
    let centre = x.iter().sum::<f64>() / n;
    let spread = (x.iter().map(|v| (v - centre).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-3)
        + measurements.sigma().iter().cloned().fold(0.0, f64::max);
    let xc: Vec<f64> = x.iter().map(|v| v - centre).collect();
    let var_meas: Vec<f64> = measurements.sigma().iter().map(|s| s * s).collect();

    let (mu_lo, mu_hi) = closed_support(prior_mu);
    let (sig_lo, sig_hi) = closed_support(prior_sigma);
    let mut window = [
        (
            (centre - 10.0 * spread).max(mu_lo),
            (centre + 10.0 * spread).min(mu_hi),
        ),
        (sig_lo.max(0.0), (5.0 * spread).min(sig_hi)),
    ];
    // Coarse passes narrow the window; stop when it no longer shrinks much.
    const COARSE: usize = 201;
    const MAX_PASSES: usize = 12;
    let pass = |window, n_nodes| grid_pass(&xc, &var_meas, centre, prior_mu, prior_sigma, window, n_nodes);
    for _ in 0..MAX_PASSES {
        let post = pass(window, COARSE);
        let mut converged = true;
        for (k, win) in window.iter_mut().enumerate() {
            let h = post.nodes[k][1] - post.nodes[k][0];
            let s = &post.summaries[k];
            let half = 12.0 * s.sd.max(h);
            let (lo_bound, hi_bound) = if k == 0 {
                (mu_lo, mu_hi)
            } else {
                (sig_lo.max(0.0), sig_hi)
            };
            let next = ((s.mean - half).max(lo_bound), (s.mean + half).min(hi_bound));
            if next.1 - next.0 < 0.7 * (win.1 - win.0) {
                converged = false;
            }
            *win = next;
        }
        if converged {
            break;
        }
    }
    Ok(pass(window, n_grid))
}

fn grid_pass(
    xc: &[f64],
    var_meas: &[f64],
    centre: f64,
    prior_mu: &Hyperprior,
    prior_sigma: &Hyperprior,
    window: [(f64, f64); 2],
    n_nodes: usize,
) -> GridPosterior {
    let nodes: [Vec<f64>; 2] = std::array::from_fn(|k| {
        let (lo, hi) = window[k];
        (0..n_nodes)
            .map(|i| lo + (hi - lo) * i as f64 / (n_nodes - 1) as f64)
            .collect()
    });
    let mut ln_post = vec![f64::NEG_INFINITY; n_nodes * n_nodes];
    for (js, &s) in nodes[1].iter().enumerate() {
        let lp_s = ln_prior_closed(prior_sigma, s);
        if lp_s == f64::NEG_INFINITY {
            continue;
        }
        // sum_i (x_i - m)^2 / v_i = a m^2 - 2 b m + c: one pass over the
        // objects per theta_sigma node, O(1) per theta_mu node.
        let (mut a, mut b, mut c, mut d) = (0.0, 0.0, 0.0, 0.0);
        for (&xi, &vi) in xc.iter().zip(var_meas) {
            let v = s * s + vi;
            let inv = 1.0 / v;
            a += inv;
            b += xi * inv;
            c += xi * xi * inv;
            d += v.ln();
        }
        for (im, &m) in nodes[0].iter().enumerate() {
            let lp_m = ln_prior_closed(prior_mu, m);
            if lp_m == f64::NEG_INFINITY {
                continue;
            }
            let mc = m - centre;
            let q = (a * mc - 2.0 * b) * mc + c;
            ln_post[js * n_nodes + im] = lp_m + lp_s - 0.5 * q - 0.5 * d;
        }
    }
    let max = ln_post.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let h = [nodes[0][1] - nodes[0][0], nodes[1][1] - nodes[1][0]];
    let mut marg = [vec![0.0; n_nodes], vec![0.0; n_nodes]];
    let joint: Vec<f64> = ln_post.iter().map(|lp| (lp - max).exp()).collect();
    for js in 0..n_nodes {
        for im in 0..n_nodes {
            let p = joint[js * n_nodes + im];
            marg[0][im] += p * trapezoid_weight(js, n_nodes, h[1]);
            marg[1][js] += p * trapezoid_weight(im, n_nodes, h[0]);
        }
    }
    for k in 0..2 {
        let z: f64 = (0..n_nodes)
            .map(|i| marg[k][i] * trapezoid_weight(i, n_nodes, h[k]))
            .sum();
        marg[k].iter_mut().for_each(|p| *p /= z);
    }
    let summaries = [
        summarise_marginal(&nodes[0], &marg[0]),
        summarise_marginal(&nodes[1], &marg[1]),
    ];
    GridPosterior {
        nodes,
        marginals: marg,
        summaries,
        joint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    fn toy(n: usize, sigma: f64, seed: u64) -> Measurements {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let x = (0..n)
            .map(|_| {
                let mu: f64 = StandardNormal.sample(&mut rng);
                let e: f64 = StandardNormal.sample(&mut rng);
                mu + sigma * e
            })
            .collect();
        Measurements::new(x, vec![sigma; n]).unwrap()
    }

    const FLAT_MU: Hyperprior = Hyperprior::Uniform {
        lower: -5.0,
        upper: 5.0,
    };
    const FLAT_SIGMA: Hyperprior = Hyperprior::Uniform {
        lower: 0.0,
        upper: 2.0,
    };

    #[test]
    fn grid_is_converged_against_a_four_times_finer_grid() {
        let meas = toy(1000, 1.0, 11);
        let a = gaussian_grid_posterior(&meas, &FLAT_MU, &FLAT_SIGMA, 401).unwrap();
        let b = gaussian_grid_posterior(&meas, &FLAT_MU, &FLAT_SIGMA, 1601).unwrap();
        for k in 0..2 {
            let (sa, sb) = (a.summaries[k], b.summaries[k]);
            assert!((sa.mean - sb.mean).abs() < 1e-4 * sb.sd, "{k}: {sa:?} vs {sb:?}");
            assert!((sa.sd - sb.sd).abs() < 1e-4 * sb.sd, "{k}: {sa:?} vs {sb:?}");
            for (qa, qb) in [(sa.q05, sb.q05), (sa.q50, sb.q50), (sa.q95, sb.q95)] {
                assert!((qa - qb).abs() < 1e-3 * sb.sd, "{k}: {sa:?} vs {sb:?}");
            }
        }
    }

    /// At large N the posterior is Gaussian around the maximum-likelihood
    /// point with the inverse Fisher information as covariance:
    /// theta_mu_hat = mean x, theta_sigma_hat^2 = var x - sigma^2,
    /// sd(theta_mu) = sqrt(v/N), sd(theta_sigma) = v / (s sqrt(2N)).
    #[test]
    fn matches_laplace_approximation_at_large_n() {
        let n = 200_000;
        let sigma = 0.5;
        let meas = toy(n, sigma, 5);
        let post = gaussian_grid_posterior(&meas, &FLAT_MU, &FLAT_SIGMA, 401).unwrap();
        let x = meas.x();
        let mean = x.iter().sum::<f64>() / n as f64;
        let v = x.iter().map(|xi| (xi - mean).powi(2)).sum::<f64>() / n as f64;
        let s_hat = (v - sigma * sigma).sqrt();
        let sd_mu = (v / n as f64).sqrt();
        let sd_sigma = v / (s_hat * (2.0 * n as f64).sqrt());
        let [pm, ps] = post.summaries;
        // Non-Gaussian corrections are O(1/sqrt(N)) ~ 0.2% of an sd here.
        assert!((pm.mean - mean).abs() < 0.02 * sd_mu, "{pm:?} vs {mean}");
        assert!((pm.sd / sd_mu - 1.0).abs() < 0.01, "{pm:?} vs {sd_mu}");
        assert!((ps.mean - s_hat).abs() < 0.05 * sd_sigma, "{ps:?} vs {s_hat}");
        assert!((ps.sd / sd_sigma - 1.0).abs() < 0.01, "{ps:?} vs {sd_sigma}");
        // Gaussian quantiles: q05 = mean - 1.6449 sd.
        assert!((pm.q05 - (mean - 1.644_853_6 * sd_mu)).abs() < 0.02 * sd_mu);
    }

    #[test]
    fn marginal_likelihood_gradient_matches_finite_differences() {
        let meas = Measurements::new(vec![0.3, -1.2, 2.0], vec![0.5, 1.0, 2.0]).unwrap();
        let like = GaussianMarginalLikelihood::new(&meas);
        let theta = [0.2, 0.8];
        let mut g = [0.0; 2];
        let v = like.ln_likelihood_grad(&theta, &mut g);
        assert!((v - like.ln_likelihood(&theta)).abs() < 1e-14);
        // Closed form for object 0 alone: N(0.3 | 0.2, 0.64 + 0.25).
        let v0 = 0.64 + 0.25;
        let lone = -0.5 * 0.01 / v0 - 0.5 * (2.0 * std::f64::consts::PI * v0).ln();
        let one = Measurements::new(vec![0.3], vec![0.5]).unwrap();
        assert!((GaussianMarginalLikelihood::new(&one).ln_likelihood(&theta) - lone).abs() < 1e-14);
        for k in 0..2 {
            let h = 1e-6;
            let (mut a, mut b) = (theta, theta);
            a[k] += h;
            b[k] -= h;
            let fd = (like.ln_likelihood(&a) - like.ln_likelihood(&b)) / (2.0 * h);
            assert!((g[k] - fd).abs() < 1e-7);
        }
    }

    /// Draws from the grid reproduce the quadrature's mean and sd within
    /// Monte Carlo error (20000 draws: sd of the mean ~ 0.007 sd).
    #[test]
    fn grid_draws_match_the_quadrature() {
        let meas = toy(1000, 1.0, 11);
        let post = gaussian_grid_posterior(&meas, &FLAT_MU, &FLAT_SIGMA, 401).unwrap();
        let draws = post.sample(20_000, 3);
        for k in 0..2 {
            let column: Vec<f64> = draws.iter().map(|d| d[k]).collect();
            let (mean, sd) = crate::math::stats::mean_sd(&column);
            let s = post.summaries[k];
            assert!((mean - s.mean).abs() < 0.04 * s.sd, "{k}: {mean} vs {s:?}");
            assert!((sd / s.sd - 1.0).abs() < 0.04, "{k}: {sd} vs {s:?}");
        }
        assert_eq!(draws, post.sample(20_000, 3));
    }
}
