//! The notebook, end to end: simulate the toy universe, then fit the
//! population four ways — to per-object medians (biased), with the
//! importance-sampled hyper-likelihood over per-object samples, with the
//! full hierarchical model (NUTS over every latent value, as the notebook's
//! PyMC cell), and exactly by quadrature — and compare.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::exact::gaussian_grid_posterior;
use crate::latent::{LatentGaussianModel, Parametrisation};
use crate::likelihood::{HyperLikelihood, ImportanceLikelihood, ReliabilityReport};
use crate::population::Gaussian;
use crate::posterior::{Hyperposterior, SampleableModel};
use crate::prior::Hyperprior;
use crate::sampler::{
    EnsembleRun, EnsembleSettings, NutsRun, NutsSettings, SamplerObserver, sample_ensemble, sample_nuts,
};
use crate::simulate::{ToySettings, derive_seed, simulate_gaussian_toy};
use crate::stats::{ParamSummary, mean_sd, median_in_place};
use crate::trace::Trace;

/// Which sampler fits the importance-sampled hyperposterior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerChoice {
    Nuts,
    Ensemble,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DemoSettings {
    pub toy: ToySettings,
    /// The notebook's emcee run on the medians.
    pub naive: EnsembleSettings,
    pub importance_sampler: SamplerChoice,
    pub importance_ensemble: EnsembleSettings,
    pub importance_nuts: NutsSettings,
    /// NUTS on the latent-variable model (the notebook's PyMC `sample`).
    pub hierarchical: NutsSettings,
    pub parametrisation: Parametrisation,
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
            importance_sampler: SamplerChoice::Nuts,
            // 16 walkers x 500 kept steps with tau ~ 25 steps: ~300
            // effective draws, MC error ~6% of a posterior sd.
            importance_ensemble: EnsembleSettings {
                n_walkers: 16,
                n_steps: 600,
                n_burn: 100,
                seed: derive_seed(seed, 3),
                ..EnsembleSettings::default()
            },
            // Each gradient streams all 100k samples, so the demo keeps
            // this run short: nuts-rs's default 400 tuning steps and 500
            // draws per chain. A 2-D posterior mixes in a few steps, so 4 x
            // 500 draws give ESS ~2000 (MC error ~2% of a posterior sd).
            importance_nuts: NutsSettings {
                tune: 400,
                draws: 500,
                seed: derive_seed(seed, 3),
                ..NutsSettings::default()
            },
            // PyMC's defaults (4 chains, 1000 tuning + 1000 draws), as the
            // notebook's `sample(1000, tune=1000)`.
            hierarchical: NutsSettings {
                seed: derive_seed(seed, 4),
                ..NutsSettings::default()
            },
            parametrisation: Parametrisation::NonCentred,
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
    /// "nuts" or "ensemble".
    pub name: String,
    /// Chains (walkers, for the ensemble sampler).
    pub chains: usize,
    /// Kept draws per chain.
    pub draws: usize,
    /// Discarded tuning / burn-in iterations per chain.
    pub tune: usize,
    /// Divergent transitions after tuning (always 0 for the ensemble).
    pub divergences: usize,
    /// Gradient evaluations (0 for the gradient-free ensemble).
    pub grad_evals: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ln_density_evals: Option<usize>,
    /// The smallest bulk-ESS over the hyperparameters per second of the
    /// method's wall time: the figure of merit for comparing samplers.
    pub min_ess_bulk_per_s: f64,
}

/// Sampler- and likelihood-specific diagnostics of one method.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MethodDiagnostics {
    /// Ensemble: fraction of proposals accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance_fraction: Option<f64>,
    /// Ensemble: emcee's integrated autocorrelation time per parameter,
    /// in steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autocorr_time: Option<BTreeMap<String, f64>>,
    /// NUTS: divergent transitions after tuning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergences: Option<usize>,
    /// NUTS: draws whose trajectory hit the maximum tree depth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tree_depth_hits: Option<usize>,
    /// NUTS: mean acceptance statistic after tuning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_acceptance: Option<f64>,
    /// NUTS: E-BFMI of each chain; below 0.3 is a warning sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bfmi: Option<Vec<f64>>,
    /// Importance sampling: reliability of the weights over posterior draws.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub importance_sampling: Option<ReliabilityReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    pub wall_s: f64,
    /// The hyperparameters' summaries.
    pub params: BTreeMap<String, ParamSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<MethodDiagnostics>,
    /// Plain-words warnings: each names the problem and what to do.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub truth: BTreeMap<String, f64>,
    pub data: DataInfo,
    pub methods: BTreeMap<String, MethodSummary>,
}

/// The order methods are shown in.
pub const METHOD_ORDER: [&str; 4] = ["naive", "importance", "hierarchical", "exact"];

/// The hyperparameters every method reports.
const HYPER: [&str; 2] = ["theta_mu", "theta_sigma"];

/// Starting point for the ensemble from the data alone: the median and
/// spread of the per-object medians, moved inside the prior if outside.
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
    observer: &dyn SamplerObserver,
    started: Instant,
) -> Result<(MethodSummary, Trace)> {
    let run: EnsembleRun = sample_ensemble(post, start, settings, observer)?;
    let names = post.param_names();
    let trace = run.to_trace(names.clone(), |u, t| post.to_natural(u, t));
    let summaries = trace.summaries();
    let tau = run.autocorr_time();
    let summary = MethodSummary {
        wall_s: started.elapsed().as_secs_f64(),
        params: names.iter().cloned().zip(summaries).collect(),
        sampler: Some(SamplerInfo {
            name: "ensemble".into(),
            chains: run.n_walkers,
            draws: run.n_steps - run.n_burn,
            tune: run.n_burn,
            divergences: 0,
            grad_evals: 0,
            ln_density_evals: Some(run.n_evals),
            min_ess_bulk_per_s: 0.0,
        }),
        diagnostics: Some(MethodDiagnostics {
            acceptance_fraction: Some(run.acceptance_fraction()),
            autocorr_time: Some(names.into_iter().zip(tau).collect()),
            ..MethodDiagnostics::default()
        }),
        warnings: Vec::new(),
    };
    Ok((summary, trace))
}

/// Runs NUTS and summarises the hyperparameters (the first two reported
/// quantities; a latent model's mu_i follow them in the trace).
fn nuts_method<M: SampleableModel>(
    model: &M,
    settings: &NutsSettings,
    observer: &dyn SamplerObserver,
    started: Instant,
) -> Result<(MethodSummary, NutsRun)> {
    let run = sample_nuts(model, settings, observer)?;
    let summaries = run.trace.summaries_of(&HYPER)?;
    let n = run.stats.acceptance.len().max(1) as f64;
    let summary = MethodSummary {
        wall_s: started.elapsed().as_secs_f64(),
        params: HYPER.iter().map(|p| p.to_string()).zip(summaries).collect(),
        sampler: Some(SamplerInfo {
            name: "nuts".into(),
            chains: settings.chains,
            draws: settings.draws as usize,
            tune: settings.tune as usize,
            divergences: run.stats.divergences(),
            grad_evals: run.grad_evals,
            ln_density_evals: None,
            min_ess_bulk_per_s: 0.0,
        }),
        diagnostics: Some(MethodDiagnostics {
            divergences: Some(run.stats.divergences()),
            max_tree_depth_hits: Some(run.stats.max_depth_hits()),
            mean_acceptance: Some(run.stats.acceptance.iter().sum::<f64>() / n),
            bfmi: Some(
                run.stats
                    .energy
                    .chunks(settings.draws as usize)
                    .map(crate::diagnostics::bfmi)
                    .collect(),
            ),
            ..MethodDiagnostics::default()
        }),
        warnings: Vec::new(),
    };
    Ok((summary, run))
}

/// The warnings the usual thresholds call for (Vehtari et al. 2021; Stan;
/// emcee; Talbot & Golomb 2023), each saying what to do.
fn warnings_for(m: &MethodSummary) -> Vec<String> {
    let mut w = Vec::new();
    for (name, p) in &m.params {
        let Some(c) = p.convergence else { continue };
        if c.r_hat > 1.01 {
            w.push(format!(
                "{name}: r_hat = {:.3} > 1.01: the chains disagree; run longer or check for multimodality",
                c.r_hat
            ));
        }
        if c.ess_bulk < 400.0 || c.ess_tail < 400.0 {
            w.push(format!(
                "{name}: ess_bulk = {:.0}, ess_tail = {:.0} (want >= 400): draw more samples",
                c.ess_bulk, c.ess_tail
            ));
        }
    }
    let Some(d) = &m.diagnostics else { return w };
    if let Some(n) = d.divergences.filter(|&n| n > 0) {
        w.push(format!(
            "{n} divergent transitions after tuning: the posterior has regions NUTS cannot explore; \
             raise the target acceptance or reparametrise (non-centred)"
        ));
    }
    if let Some(hits) = d.max_tree_depth_hits.filter(|&h| h > 0) {
        w.push(format!(
            "{hits} draws hit the maximum tree depth: raise it or rescale the model"
        ));
    }
    for (c, b) in d.bfmi.iter().flatten().enumerate().filter(|(_, b)| **b < 0.3) {
        w.push(format!(
            "chain {c}: E-BFMI = {b:.2} < 0.3: poor exploration of the energy; reparametrise"
        ));
    }
    if let (Some(tau), Some(s)) = (&d.autocorr_time, &m.sampler) {
        for (name, t) in tau {
            if (s.draws as f64) < 50.0 * t {
                w.push(format!(
                    "{name}: chain of {} steps is shorter than 50 autocorrelation times (tau = {t:.1}); \
                     run longer for a reliable tau",
                    s.draws
                ));
            }
        }
    }
    if let Some(report) = &d.importance_sampling {
        let r = &report.worst;
        if r.n_ess_below_20 > 0 {
            w.push(format!(
                "{} objects have fewer than 20 effective importance samples (min {:.1}): give them more \
                 posterior samples or a broader interim prior, or use the latent-variable model",
                r.n_ess_below_20, r.ess_min
            ));
        }
        if r.var_ln_l > 1.0 {
            w.push(format!(
                "Var(ln L) = {:.2} > 1: the Monte Carlo likelihood is noisy; more samples per object \
                 would make the answer more trustworthy",
                r.var_ln_l
            ));
        }
        if r.n_k_hat_above_threshold > 0 {
            let worst: Vec<String> = r
                .worst_objects
                .iter()
                .map(|(i, k)| format!("object {i} (k-hat {k:.2})"))
                .collect();
            w.push(format!(
                "{} objects have Pareto k-hat above min(1 - 1/log10 S, 0.7), worst {}: their weights \
                 have heavy tails; give them more samples or a broader interim prior, or use the \
                 latent-variable model",
                r.n_k_hat_above_threshold,
                worst.join(", ")
            ));
        }
    }
    w
}

/// Fills in `min_ess_bulk_per_s` from the summaries and the wall time,
/// and the warnings.
fn with_ess_rate(mut m: MethodSummary) -> MethodSummary {
    let min_ess = m
        .params
        .values()
        .filter_map(|p| p.convergence.map(|c| c.ess_bulk))
        .fold(f64::INFINITY, f64::min);
    if let Some(s) = m.sampler.as_mut() {
        s.min_ess_bulk_per_s = min_ess / m.wall_s;
    }
    m.warnings = warnings_for(&m);
    m
}

pub fn run_demo(settings: &DemoSettings, observer: &dyn SamplerObserver) -> Result<DemoSummary> {
    let toy = simulate_gaussian_toy(&settings.toy)?;
    let mut methods = BTreeMap::new();

    // Naive: the notebook's emcee fit to posterior medians, with its prior
    // -10 < theta_mu < 10, 0 < theta_sigma < 2.
    observer.on_stage("naive (ensemble on medians)");
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
        ensemble_method(&naive_post, &start, &settings.naive, observer, t0)?.0,
    );

    // Importance-sampled hyper-likelihood over every posterior sample.
    let priors = [
        Hyperprior::Uniform {
            lower: -5.0,
            upper: 5.0,
        },
        Hyperprior::Uniform {
            lower: 0.0,
            upper: 2.0,
        },
    ];
    let t0 = Instant::now();
    let is_like =
        ImportanceLikelihood::new(&toy.catalog, Gaussian)?.with_bias_correction(settings.bias_correction);
    let is_post = Hyperposterior::new(is_like, priors.to_vec())?;
    let (mut importance, trace) = match settings.importance_sampler {
        SamplerChoice::Nuts => {
            observer.on_stage("importance (NUTS)");
            let (summary, run) = nuts_method(&is_post, &settings.importance_nuts, observer, t0)?;
            (summary, run.trace)
        }
        SamplerChoice::Ensemble => {
            observer.on_stage("importance (ensemble)");
            let start = data_start(&is_post, &median_values);
            ensemble_method(&is_post, &start, &settings.importance_ensemble, observer, t0)?
        }
    };
    // Reliability at 20 draws spread evenly over the whole trace.
    let n_total = trace.n_chains * trace.n_draws;
    let checked: Vec<Vec<f64>> = (0..20)
        .map(|j| {
            let flat = j * n_total / 20;
            trace.draws[flat * trace.n_params()..][..trace.n_params()].to_vec()
        })
        .collect();
    if let Some(d) = importance.diagnostics.as_mut() {
        d.importance_sampling = is_post.likelihood().reliability_over(&checked);
    }
    methods.insert("importance".to_string(), importance);

    // Full hierarchical model: theta and every latent mu_i, by NUTS.
    observer.on_stage("hierarchical (NUTS, latent model)");
    let t0 = Instant::now();
    let latent = LatentGaussianModel::new(&toy.measurements, priors[0], priors[1], settings.parametrisation)?;
    let (hierarchical, _) = nuts_method(&latent, &settings.hierarchical, observer, t0)?;
    methods.insert("hierarchical".to_string(), hierarchical);

    // Exact: the latent values integrated out analytically, quadrature in theta.
    let t0 = Instant::now();
    let grid = gaussian_grid_posterior(&toy.measurements, &priors[0], &priors[1], settings.exact_grid)?;
    methods.insert(
        "exact".to_string(),
        MethodSummary {
            wall_s: t0.elapsed().as_secs_f64(),
            params: HYPER.iter().map(|p| p.to_string()).zip(grid.summaries).collect(),
            sampler: None,
            diagnostics: None,
            warnings: Vec::new(),
        },
    );

    let methods = methods.into_iter().map(|(k, m)| (k, with_ess_rate(m))).collect();
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
