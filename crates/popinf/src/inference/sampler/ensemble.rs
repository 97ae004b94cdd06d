//! The affine-invariant ensemble sampler (Goodman & Weare 2010) with the
//! stretch move and emcee's split-ensemble ("red-blue") update: walkers are
//! split at random into two halves each step; every walker in one half
//! proposes along the line to a random walker of the other half, and the
//! proposals of a half are evaluated in parallel.
//!
//! All random numbers are drawn on one thread before the parallel
//! evaluation, so a seed gives the same chain on any number of threads.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::diagnostics::autocorr::integrated_time;
use crate::error::Result;
use crate::inference::posterior::LogDensity;
use crate::inference::sampler::SamplerObserver;
use crate::inference::trace::Trace;
use crate::invalid;

#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleSettings {
    /// Number of walkers; at least 2 x dimension, and even.
    pub n_walkers: usize,
    /// Steps in total, including burn-in.
    pub n_steps: usize,
    /// Leading steps discarded as burn-in.
    pub n_burn: usize,
    /// Stretch scale a (proposal z in [1/a, a]); emcee's default is 2.
    pub stretch_a: f64,
    /// Walkers start at `start + init_scale * N(0, 1)` per coordinate
    /// (unconstrained space).
    pub init_scale: f64,
    pub seed: u64,
}

impl Default for EnsembleSettings {
    fn default() -> Self {
        Self {
            n_walkers: 32,
            n_steps: 2000,
            n_burn: 500,
            stretch_a: 2.0,
            init_scale: 1e-2,
            seed: 0,
        }
    }
}

/// Every walker's position at every step, in unconstrained space.
#[derive(Debug, Clone)]
pub struct EnsembleRun {
    pub dim: usize,
    pub n_walkers: usize,
    pub n_steps: usize,
    pub n_burn: usize,
    /// `chain[(step * n_walkers + walker) * dim + k]`.
    pub chain: Vec<f64>,
    /// `ln_prob[step * n_walkers + walker]`.
    pub ln_prob: Vec<f64>,
    /// Accepted proposals per walker (over all steps).
    pub accepted: Vec<usize>,
    /// Log-density evaluations made.
    pub n_evals: usize,
}

impl EnsembleRun {
    /// Fraction of proposals accepted, averaged over walkers.
    pub fn acceptance_fraction(&self) -> f64 {
        self.accepted.iter().sum::<usize>() as f64 / (self.n_walkers * self.n_steps) as f64
    }

    /// One coordinate of one walker after burn-in.
    fn walker_coord(&self, walker: usize, k: usize) -> Vec<f64> {
        (self.n_burn..self.n_steps)
            .map(|s| self.chain[(s * self.n_walkers + walker) * self.dim + k])
            .collect()
    }

    /// emcee's integrated autocorrelation time (c = 5) of each coordinate
    /// after burn-in, in steps. Trust it when the chain is longer than
    /// about 50 tau.
    pub fn autocorr_time(&self) -> Vec<f64> {
        (0..self.dim)
            .map(|k| {
                let walkers: Vec<Vec<f64>> = (0..self.n_walkers).map(|w| self.walker_coord(w, k)).collect();
                let refs: Vec<&[f64]> = walkers.iter().map(|w| w.as_slice()).collect();
                integrated_time(&refs, 5.0)
            })
            .collect()
    }

    /// Post-burn-in draws mapped to natural units by `to_natural`, one chain
    /// per walker.
    pub fn to_trace(&self, param_names: Vec<String>, to_natural: impl Fn(&[f64], &mut [f64])) -> Trace {
        let n_draws = self.n_steps - self.n_burn;
        let mut draws = vec![0.0; self.n_walkers * n_draws * self.dim];
        for w in 0..self.n_walkers {
            for d in 0..n_draws {
                let s = self.n_burn + d;
                let src = &self.chain[(s * self.n_walkers + w) * self.dim..][..self.dim];
                let dst = &mut draws[(w * n_draws + d) * self.dim..][..self.dim];
                to_natural(src, dst);
            }
        }
        Trace {
            param_names,
            n_chains: self.n_walkers,
            n_draws,
            draws,
        }
    }
}

/// The ensemble's complete state between two steps: enough to continue a
/// run exactly where it stopped (what a checkpoint stores).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnsembleState {
    /// Steps completed.
    pub step: usize,
    pub pos: Vec<f64>,
    pub lp: Vec<f64>,
    pub accepted: Vec<usize>,
    pub order: Vec<usize>,
    /// Every step's positions and ln posteriors so far; large, so a
    /// checkpoint stores them as raw binary beside the JSON.
    #[serde(skip)]
    pub chain: Vec<f64>,
    #[serde(skip)]
    pub ln_prob: Vec<f64>,
    pub n_evals: usize,
    /// Position in the ChaCha8 stream, as a decimal string (a u128).
    pub rng_word_pos: String,
}

/// Runs the ensemble from a small ball around `start` (unconstrained).
pub fn sample_ensemble(
    density: &dyn LogDensity,
    start: &[f64],
    settings: &EnsembleSettings,
    observer: &dyn SamplerObserver,
) -> Result<EnsembleRun> {
    sample_ensemble_resuming(density, start, settings, observer, None)
}

/// As [`sample_ensemble`], continuing from a saved state of the same run
/// when given: the result equals the uninterrupted run's, bit for bit.
/// When the observer asks for it, the state is handed over after a step.
pub fn sample_ensemble_resuming(
    density: &dyn LogDensity,
    start: &[f64],
    settings: &EnsembleSettings,
    observer: &dyn SamplerObserver,
    resume: Option<EnsembleState>,
) -> Result<EnsembleRun> {
    let dim = density.dim();
    let nw = settings.n_walkers;
    if start.len() != dim {
        return invalid!(
            "ensemble: start point has {} coordinates, the model {dim}",
            start.len()
        );
    }
    if nw < 2 * dim || !nw.is_multiple_of(2) {
        return invalid!("ensemble: {nw} walkers; need an even number of at least 2 x {dim} (the dimension)");
    }
    if settings.n_steps == 0 || settings.n_burn >= settings.n_steps {
        return invalid!(
            "ensemble: {} steps with {} burn-in leaves no draws",
            settings.n_steps,
            settings.n_burn
        );
    }
    if settings.stretch_a.is_nan() || settings.stretch_a <= 1.0 {
        return invalid!("ensemble: stretch scale a = {} must exceed 1", settings.stretch_a);
    }
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(settings.seed);
    let ln_p = |x: &[f64]| {
        let v = density.ln_density(x);
        if v.is_nan() { f64::NEG_INFINITY } else { v }
    };

    // Initial ball; redraw walkers that land where the density vanishes.
    let mut pos = vec![0.0; nw * dim];
    let mut lp = vec![0.0; nw];
    for w in 0..nw {
        if resume.is_some() {
            break;
        }
        let mut tries = 0;
        loop {
            for k in 0..dim {
                let e: f64 = StandardNormal.sample(&mut rng);
                pos[w * dim + k] = start[k] + settings.init_scale * e;
            }
            lp[w] = ln_p(&pos[w * dim..(w + 1) * dim]);
            if lp[w].is_finite() {
                break;
            }
            tries += 1;
            if tries == 100 {
                return invalid!(
                    "ensemble: the log density is not finite anywhere near the start point {start:?}; \
                     choose a start inside the prior's support where the likelihood is defined"
                );
            }
        }
    }

    let n_steps = settings.n_steps;
    let n_burn = settings.n_burn;
    let a = settings.stretch_a;
    let half = nw / 2;
    let mut chain = Vec::with_capacity(n_steps * nw * dim);
    let mut ln_prob = Vec::with_capacity(n_steps * nw);
    let mut accepted = vec![0usize; nw];
    let mut order: Vec<usize> = (0..nw).collect();
    let mut proposals = vec![0.0; half * dim];
    let mut lp_new = Vec::with_capacity(half);
    let mut z = vec![0.0; half];
    let mut ln_u = vec![0.0; half];
    let mut n_evals = nw;
    let mut first_step = 0;
    if let Some(state) = resume {
        let fits = state.pos.len() == nw * dim
            && state.lp.len() == nw
            && state.order.len() == nw
            && state.step <= n_steps
            && state.chain.len() == state.step * nw * dim
            && state.ln_prob.len() == state.step * nw;
        let word_pos: Option<u128> = state.rng_word_pos.parse().ok();
        let (true, Some(word_pos)) = (fits, word_pos) else {
            return invalid!(
                "ensemble: the saved state does not fit this run; start afresh without resuming"
            );
        };
        (pos, lp, accepted, order) = (state.pos, state.lp, state.accepted, state.order);
        (chain, ln_prob, n_evals, first_step) = (state.chain, state.ln_prob, state.n_evals, state.step);
        rng.set_word_pos(word_pos);
    }
    observer.on_start(1, n_steps as u64);
    let mut steps_done = first_step;
    for step in first_step..n_steps {
        if observer.should_stop() {
            break;
        }
        steps_done += 1;
        order.shuffle(&mut rng);
        for split in 0..2 {
            let (active, other) = if split == 0 {
                (&order[..half], &order[half..])
            } else {
                (&order[half..], &order[..half])
            };
            for (i, &w) in active.iter().enumerate() {
                let partner = other[rng.random_range(0..other.len())];
                let u: f64 = rng.random();
                let zi = ((a - 1.0) * u + 1.0).powi(2) / a;
                z[i] = zi;
                ln_u[i] = rng.random::<f64>().ln();
                for k in 0..dim {
                    let c = pos[partner * dim + k];
                    proposals[i * dim + k] = c + zi * (pos[w * dim + k] - c);
                }
            }
            proposals.par_chunks(dim).map(ln_p).collect_into_vec(&mut lp_new);
            n_evals += half;
            for (i, &w) in active.iter().enumerate() {
                let ln_q = (dim as f64 - 1.0) * z[i].ln() + lp_new[i] - lp[w];
                if ln_u[i] < ln_q {
                    pos[w * dim..(w + 1) * dim].copy_from_slice(&proposals[i * dim..(i + 1) * dim]);
                    lp[w] = lp_new[i];
                    accepted[w] += 1;
                }
            }
        }
        chain.extend_from_slice(&pos);
        ln_prob.extend_from_slice(&lp);
        observer.on_draw(0, step < n_burn, false);
        if observer.checkpoint_due() {
            observer.on_ensemble_state(&EnsembleState {
                step: step + 1,
                pos: pos.clone(),
                lp: lp.clone(),
                accepted: accepted.clone(),
                order: order.clone(),
                chain: chain.clone(),
                ln_prob: ln_prob.clone(),
                n_evals,
                rng_word_pos: rng.get_word_pos().to_string(),
            });
        }
    }
    observer.on_finish();
    if steps_done <= settings.n_burn {
        return invalid!(
            "ensemble: stopped after {steps_done} steps, before the end of burn-in; nothing to keep"
        );
    }
    Ok(EnsembleRun {
        dim,
        n_walkers: nw,
        n_steps: steps_done,
        n_burn: settings.n_burn,
        chain,
        ln_prob,
        accepted,
        n_evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A correlated 2-D Gaussian with very different scales.
    struct Correlated {
        mean: [f64; 2],
        prec: [[f64; 2]; 2],
    }

    const COV: [[f64; 2]; 2] = [[4.0, 1.8], [1.8, 1.0]]; // correlation 0.9

    impl Correlated {
        fn new() -> Self {
            let det = COV[0][0] * COV[1][1] - COV[0][1] * COV[1][0];
            Self {
                mean: [1.0, -2.0],
                prec: [
                    [COV[1][1] / det, -COV[0][1] / det],
                    [-COV[1][0] / det, COV[0][0] / det],
                ],
            }
        }
    }

    impl LogDensity for Correlated {
        fn dim(&self) -> usize {
            2
        }
        fn ln_density(&self, u: &[f64]) -> f64 {
            let d = [u[0] - self.mean[0], u[1] - self.mean[1]];
            -0.5 * (d[0] * (self.prec[0][0] * d[0] + self.prec[0][1] * d[1])
                + d[1] * (self.prec[1][0] * d[0] + self.prec[1][1] * d[1]))
        }
        fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
            let d = [u[0] - self.mean[0], u[1] - self.mean[1]];
            grad[0] = -(self.prec[0][0] * d[0] + self.prec[0][1] * d[1]);
            grad[1] = -(self.prec[1][0] * d[0] + self.prec[1][1] * d[1]);
            self.ln_density(u)
        }
    }

    #[test]
    fn recovers_mean_and_covariance_of_a_correlated_gaussian() {
        let target = Correlated::new();
        let settings = EnsembleSettings {
            n_walkers: 32,
            n_steps: 6000,
            n_burn: 1000,
            seed: 9,
            init_scale: 0.1,
            ..Default::default()
        };
        let run = sample_ensemble(
            &target,
            &[0.0, 0.0],
            &settings,
            &crate::inference::sampler::Silent,
        )
        .unwrap();
        let trace = run.to_trace(vec!["a".into(), "b".into()], |u, t| t.copy_from_slice(u));
        let (x, y) = (trace.param(0), trace.param(1));
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let cxx = x.iter().map(|v| (v - mx).powi(2)).sum::<f64>() / n;
        let cyy = y.iter().map(|v| (v - my).powi(2)).sum::<f64>() / n;
        let cxy = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / n;
        // 160k draws with tau ~ 30-50 steps over 32 walkers: ~3000+
        // effective draws, so the MC error of a mean is < 0.02 sd and of a
        // variance ~ 3%. Tolerances are about four of those.
        let tau = run.autocorr_time();
        let n_eff = n / tau.iter().cloned().fold(0.0, f64::max);
        assert!(n_eff > 2000.0, "n_eff {n_eff}, tau {tau:?}");
        let (sx, sy) = (COV[0][0].sqrt(), COV[1][1].sqrt());
        assert!((mx - 1.0).abs() < 0.1 * sx, "mean x {mx}");
        assert!((my + 2.0).abs() < 0.1 * sy, "mean y {my}");
        assert!((cxx / COV[0][0] - 1.0).abs() < 0.12, "var x {cxx}");
        assert!((cyy / COV[1][1] - 1.0).abs() < 0.12, "var y {cyy}");
        assert!(
            (cxy / (cxx * cyy).sqrt() - 0.9).abs() < 0.03,
            "corr {}",
            cxy / (cxx * cyy).sqrt()
        );
        let acc = run.acceptance_fraction();
        assert!(acc > 0.2 && acc < 0.9, "acceptance {acc}");
    }

    #[test]
    fn same_seed_same_chain_on_any_thread_count() {
        let target = Correlated::new();
        let settings = EnsembleSettings {
            n_walkers: 8,
            n_steps: 200,
            n_burn: 0,
            seed: 4,
            ..Default::default()
        };
        let run_on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                sample_ensemble(
                    &target,
                    &[0.0, 0.0],
                    &settings,
                    &crate::inference::sampler::Silent,
                )
                .unwrap()
                .chain
            })
        };
        let one = run_on(1);
        assert_eq!(one, run_on(2));
        assert_eq!(one, run_on(3));
    }

    #[test]
    fn rejects_too_few_walkers() {
        let target = Correlated::new();
        let settings = EnsembleSettings {
            n_walkers: 3,
            ..Default::default()
        };
        let err = sample_ensemble(
            &target,
            &[0.0, 0.0],
            &settings,
            &crate::inference::sampler::Silent,
        )
        .unwrap_err();
        assert!(err.to_string().contains("3 walkers"), "{err}");
    }
}
