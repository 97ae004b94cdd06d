//! The notebook, end to end: simulate the toy universe, then fit the
//! population three ways — to per-object medians (biased), with the
//! importance-sampled hyper-likelihood over per-object samples, and exactly
//! by quadrature — and compare.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::exact::gaussian_grid_posterior;
use crate::likelihood::{HyperLikelihood, ImportanceLikelihood, Reliability};
use crate::population::Gaussian;
use crate::posterior::{Hyperposterior, SampleableModel};
use crate::prior::Hyperprior;
use crate::sampler::{EnsembleRun, EnsembleSettings, sample_ensemble};
use crate::simulate::{ToySettings, derive_seed, simulate_gaussian_toy};
use crate::stats::{ParamSummary, mean_sd, median_in_place};

#[derive(Debug, Clone, PartialEq)]
pub struct DemoSettings {
    pub toy: ToySettings,
    /// The notebook's emcee run on the medians.
    pub naive: EnsembleSettings,
    pub importance: EnsembleSettings,
    /// Nodes per axis of the exact posterior's final grid.
    pub exact_grid: usize,
    /// Correct ln L_i for the Monte Carlo bias of ln(mean weight); see
    /// [`ImportanceLikelihood::with_bias_correction`].
    pub bias_correction: bool,
}

impl DemoSettings {
    /// The notebook's settings for a given seed; sampler seeds derive from it.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            toy: ToySettings {
                seed,
                ..ToySettings::default()
            },
            naive: EnsembleSettings {
                n_walkers: 100,
                n_steps: 500,
                n_burn: 50,
                seed: derive_seed(seed, 2),
                ..EnsembleSettings::default()
            },
            // 32 walkers x 1000 kept steps with tau ~ 30 steps gives ~1000
            // effective draws: MC error ~3% of a posterior sd.
            importance: EnsembleSettings {
                n_walkers: 16,
                n_steps: 600,
                n_burn: 100,
                seed: derive_seed(seed, 3),
                ..EnsembleSettings::default()
            },
            exact_grid: 401,
            bias_correction: true,
        }
    }
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self::with_seed(42)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    pub n_obj: usize,
    pub n_samp: usize,
    pub alpha: f64,
    pub seed: u64,
}

/// How a sampling method ran.
#[derive(Debug, Clone, Serialize)]
pub struct SamplerInfo {
    pub name: String,
    /// Walkers, for the ensemble sampler.
    pub chains: usize,
    /// Kept draws per chain.
    pub draws: usize,
    /// Discarded burn-in steps per chain.
    pub tune: usize,
    pub acceptance_fraction: f64,
    /// emcee's integrated autocorrelation time per parameter, in steps.
    pub autocorr_time: BTreeMap<String, f64>,
    pub ln_density_evals: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    pub wall_s: f64,
    pub params: BTreeMap<String, ParamSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerInfo>,
    /// For importance sampling: the weights' reliability at the posterior
    /// mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reliability: Option<Reliability>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub truth: BTreeMap<String, f64>,
    pub data: DataInfo,
    pub methods: BTreeMap<String, MethodSummary>,
}

/// The order methods are shown in.
pub const METHOD_ORDER: [&str; 3] = ["naive", "importance", "exact"];

/// Starting point for the samplers from the data alone: the mean and spread
/// of the per-object medians, moved inside the prior if it falls outside.
fn data_start<L: HyperLikelihood>(post: &Hyperposterior<L>, medians: &[f64]) -> Vec<f64> {
    let mut sorted = medians.to_vec();
    let (_, sd) = mean_sd(&sorted);
    let guess = [median_in_place(&mut sorted), sd];
    post.priors()
        .iter()
        .zip(guess)
        .map(|(p, g)| {
            if p.contains(g) {
                p.support().to_unconstrained(g)
            } else {
                0.0
            }
        })
        .collect()
}

fn ensemble_method<L: HyperLikelihood>(
    post: &Hyperposterior<L>,
    start: &[f64],
    settings: &EnsembleSettings,
    started: Instant,
) -> Result<MethodSummary> {
    let run: EnsembleRun = sample_ensemble(post, start, settings)?;
    let names = post.param_names();
    let trace = run.to_trace(names.clone(), |u, t| post.to_natural(u, t));
    let summaries = trace.summaries();
    let tau = run.autocorr_time();
    Ok(MethodSummary {
        wall_s: started.elapsed().as_secs_f64(),
        params: names.iter().cloned().zip(summaries).collect(),
        sampler: Some(SamplerInfo {
            name: "ensemble".into(),
            chains: run.n_walkers,
            draws: run.n_steps - run.n_burn,
            tune: run.n_burn,
            acceptance_fraction: run.acceptance_fraction(),
            autocorr_time: names.into_iter().zip(tau).collect(),
            ln_density_evals: run.n_evals,
        }),
        reliability: None,
    })
}

pub fn run_demo(settings: &DemoSettings) -> Result<DemoSummary> {
    let toy = simulate_gaussian_toy(&settings.toy)?;
    let mut methods = BTreeMap::new();

    // Naive: the notebook's emcee fit to posterior medians, with its prior
    // -10 < theta_mu < 10, 0 < theta_sigma < 2.
    let t0 = Instant::now();
    let medians = toy.catalog.medians();
    let naive_post = Hyperposterior::new(
        ImportanceLikelihood::new(&medians, Gaussian)?,
        vec![
            Hyperprior::Uniform {
                lower: -10.0,
                upper: 10.0,
            },
            Hyperprior::Uniform {
                lower: 0.0,
                upper: 2.0,
            },
        ],
    )?;
    let median_values: Vec<f64> = (0..medians.n_obj())
        .map(|i| medians.object(i).values[0])
        .collect();
    let start = data_start(&naive_post, &median_values);
    methods.insert(
        "naive".to_string(),
        ensemble_method(&naive_post, &start, &settings.naive, t0)?,
    );

    // Importance-sampled hyper-likelihood over every posterior sample.
    let t0 = Instant::now();
    let priors = vec![
        Hyperprior::Uniform {
            lower: -5.0,
            upper: 5.0,
        },
        Hyperprior::Uniform {
            lower: 0.0,
            upper: 2.0,
        },
    ];
    let is_like = ImportanceLikelihood::new(&toy.catalog, Gaussian)?
        .with_bias_correction(settings.bias_correction);
    let is_post = Hyperposterior::new(is_like, priors.clone())?;
    let start = data_start(&is_post, &median_values);
    let mut importance = ensemble_method(&is_post, &start, &settings.importance, t0)?;
    let mean_theta: Vec<f64> = is_post
        .param_names()
        .iter()
        .map(|p| importance.params[p].mean)
        .collect();
    importance.reliability = Some(is_post.likelihood().reliability(&mean_theta));
    methods.insert("importance".to_string(), importance);

    // Exact: the latent values integrated out analytically, quadrature in theta.
    let t0 = Instant::now();
    let grid = gaussian_grid_posterior(
        &toy.measurements,
        &priors[0],
        &priors[1],
        settings.exact_grid,
    )?;
    methods.insert(
        "exact".to_string(),
        MethodSummary {
            wall_s: t0.elapsed().as_secs_f64(),
            params: [
                ("theta_mu".to_string(), grid.summaries[0]),
                ("theta_sigma".to_string(), grid.summaries[1]),
            ]
            .into(),
            sampler: None,
            reliability: None,
        },
    );

    Ok(DemoSummary {
        truth: [
            ("theta_mu".to_string(), settings.toy.theta_mu),
            ("theta_sigma".to_string(), settings.toy.theta_sigma),
        ]
        .into(),
        data: DataInfo {
            n_obj: settings.toy.n_obj,
            n_samp: settings.toy.n_samp,
            alpha: settings.toy.alpha,
            seed: settings.toy.seed,
        },
        methods,
    })
}
