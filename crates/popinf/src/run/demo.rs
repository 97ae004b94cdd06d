//! The notebook, end to end: simulate the toy universe, then fit the
//! population four ways — to per-object medians (biased), with the
//! importance-sampled hyper-likelihood over per-object samples, with the
//! full hierarchical model (NUTS over every latent value, as the notebook's
//! PyMC cell), and exactly by quadrature — and compare.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::data::simulate::{ToyData, ToySettings, derive_seed, simulate_gaussian_toy};
use crate::error::Result;
use crate::inference::exact::gaussian_grid_posterior;
use crate::inference::latent::{LatentGaussianModel, Parametrisation};
use crate::inference::method::{MethodSummary, ensemble_method, nuts_method, with_ess_rate};
use crate::inference::posterior::Hyperposterior;
use crate::inference::sampler::{EnsembleSettings, NutsSettings, SamplerObserver};
use crate::inference::trace::Trace;
use crate::likelihood::gmm::GmmClosedForm;
use crate::likelihood::importance::{HyperLikelihood, ImportanceLikelihood};
use crate::math::stats::{mean_sd, median_in_place};
use crate::model::gaussian::Gaussian;
use crate::model::prior::{Hyperprior, NOTEBOOK_PRIORS};

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

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub truth: BTreeMap<String, f64>,
    pub data: DataInfo,
    pub methods: BTreeMap<String, MethodSummary>,
    /// Which of the two sample-based answers (importance, gmm) to believe,
    /// and why, from their diagnostics.
    #[serde(default)]
    pub advice: String,
}

impl DemoSummary {
    /// How far `method`'s posterior mean of `param` lies from the exact
    /// posterior's, in exact posterior sd (signed; None without both).
    pub fn exact_sd_offset(&self, method: &str, param: &str) -> Option<f64> {
        let (m, exact) = (self.methods.get(method)?, self.methods.get("exact")?);
        let (p, e) = (m.params.get(param)?, exact.params.get(param)?);
        Some((p.mean - e.mean) / e.sd)
    }

    /// What the naive fit's theta_sigma estimates: the medians carry the
    /// measurement noise, so sqrt(theta_sigma^2 + alpha^2).
    pub fn naive_theta_sigma_expected(&self) -> f64 {
        (self.truth["theta_sigma"].powi(2) + self.data.alpha.powi(2)).sqrt()
    }
}

pub use crate::inference::method::METHOD_ORDER;

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

/// A demo run: its summary, every method's hyperparameter draws (the
/// exact posterior's drawn from its grid) and the simulated data.
pub struct DemoRun {
    pub summary: DemoSummary,
    pub traces: BTreeMap<String, Trace>,
    pub toy: ToyData,
}

/// Draws from the exact (grid) posterior, for plots beside the samplers.
const EXACT_DRAWS: usize = 4000;

/// One line: which sample-based answer to believe, from the importance
/// weights' reliability and the mixtures' fit to the samples.
pub fn which_to_believe(importance: &MethodSummary, gmm: &MethodSummary) -> String {
    let is = importance
        .diagnostics
        .as_ref()
        .and_then(|d| d.importance_sampling.as_ref());
    let mix = gmm.diagnostics.as_ref().and_then(|d| d.gmm.as_ref());
    let (Some(is), Some(mix)) = (is, mix) else {
        return String::new();
    };
    let w = &is.worst;
    let is_ok = w.var_ln_l < 1.0 && w.n_k_hat_above_threshold == 0;
    let is_words = format!(
        "importance sampling's Var(ln L) = {:.2} with {} object(s) below 20 effective samples and {} with \
         Pareto k-hat too high",
        w.var_ln_l, w.n_ess_below_20, w.n_k_hat_above_threshold
    );
    let worst_p = mix.worst_objects.first().map_or(1.0, |o| o.ks_p_value);
    let gmm_ok = mix.n_poor_fit == 0;
    let gmm_words = if gmm_ok {
        format!("every object's mixture describes its samples (smallest KS p = {worst_p:.2})")
    } else {
        format!(
            "{} object(s)' samples are not described by a mixture (smallest KS p = {worst_p:.1e})",
            mix.n_poor_fit
        )
    };
    match (is_ok, gmm_ok) {
        (true, true) => format!("believe either: {is_words}, and {gmm_words}"),
        (false, true) => format!("believe gmm: {is_words}, while {gmm_words}"),
        (true, false) => format!("believe importance: {gmm_words}, while {is_words}"),
        (false, false) => {
            format!("trust neither fully: {is_words}, and {gmm_words}; give the objects more samples")
        }
    }
}

pub fn run_demo(settings: &DemoSettings, observer: &dyn SamplerObserver) -> Result<DemoSummary> {
    run_demo_full(settings, observer).map(|run| run.summary)
}

pub fn run_demo_full(settings: &DemoSettings, observer: &dyn SamplerObserver) -> Result<DemoRun> {
    let toy = simulate_gaussian_toy(&settings.toy)?;
    let mut methods = BTreeMap::new();
    let mut traces = BTreeMap::new();

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
    let (naive, naive_trace, _) = ensemble_method(&naive_post, &start, &settings.naive, observer, t0, None)?;
    methods.insert("naive".to_string(), naive);
    traces.insert("naive".to_string(), naive_trace);

    // Importance-sampled hyper-likelihood over every posterior sample.
    let priors = NOTEBOOK_PRIORS;
    let t0 = Instant::now();
    let is_like =
        ImportanceLikelihood::new(&toy.catalog, Gaussian)?.with_bias_correction(settings.bias_correction);
    let is_post = Hyperposterior::new(is_like, priors.to_vec())?;
    let (mut importance, trace) = match settings.importance_sampler {
        SamplerChoice::Nuts => {
            observer.on_stage("importance (NUTS)");
            let (summary, run) = nuts_method(
                &is_post,
                &settings.importance_nuts,
                observer,
                t0,
                &HYPER,
                Default::default(),
            )?;
            (summary, run.trace)
        }
        SamplerChoice::Ensemble => {
            observer.on_stage("importance (ensemble)");
            let start = data_start(&is_post, &median_values);
            let (summary, trace, _) = ensemble_method(
                &is_post,
                &start,
                &settings.importance_ensemble,
                observer,
                t0,
                None,
            )?;
            (summary, trace)
        }
    };
    // Reliability at 20 draws spread evenly over the whole trace.
    let checked = crate::run::fit::spread_draws(&trace, 20);
    if let Some(d) = importance.diagnostics.as_mut() {
        d.importance_sampling = is_post.likelihood().reliability_over(&checked);
    }
    // The Gaussian-mixture likelihood from the same samples: one mixture
    // per object, then the closed form (no Monte Carlo noise in theta).
    observer.on_stage("gmm (NUTS, mixtures of the samples)");
    let t0 = Instant::now();
    let (mixtures, closed) = GmmClosedForm::fit_gaussian(&toy.catalog, settings.bias_correction)?;
    let gmm_post = Hyperposterior::new(closed, priors.to_vec())?;
    let (mut gmm, run) = nuts_method(
        &gmm_post,
        &settings.importance_nuts,
        observer,
        t0,
        &HYPER,
        Default::default(),
    )?;
    let all: Vec<usize> = (0..toy.catalog.n_obj()).collect();
    let report = mixtures.report(&all, "closed form", None);
    if let Some(d) = gmm.diagnostics.as_mut() {
        d.gmm = Some(report);
    }
    methods.insert("gmm".to_string(), gmm);
    traces.insert("gmm".to_string(), run.trace);
    methods.insert("importance".to_string(), importance);
    traces.insert("importance".to_string(), trace);

    // Full hierarchical model: theta and every latent mu_i, by NUTS.
    observer.on_stage("hierarchical (NUTS, latent model)");
    let t0 = Instant::now();
    let latent = LatentGaussianModel::new(&toy.measurements, priors[0], priors[1], settings.parametrisation)?;
    let (hierarchical, run) = nuts_method(
        &latent,
        &settings.hierarchical,
        observer,
        t0,
        &HYPER,
        Default::default(),
    )?;
    methods.insert("hierarchical".to_string(), hierarchical);
    traces.insert("hierarchical".to_string(), run.trace.select(&HYPER)?);

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
    traces.insert(
        "exact".to_string(),
        Trace {
            param_names: HYPER.iter().map(|p| p.to_string()).collect(),
            n_chains: 1,
            n_draws: EXACT_DRAWS,
            draws: grid
                .sample(EXACT_DRAWS, derive_seed(settings.toy.seed, 5))
                .concat(),
        },
    );

    let methods = methods.into_iter().map(|(k, m)| (k, with_ess_rate(m))).collect();
    let summary = DemoSummary {
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
        advice: String::new(),
        methods,
    };
    let summary = DemoSummary {
        advice: which_to_believe(&summary.methods["importance"], &summary.methods["gmm"]),
        ..summary
    };
    Ok(DemoRun { summary, traces, toy })
}

/// The simulated data as `data.npz`: `mu_true`, `x`, `sigma` (N) and
/// `samples` (N x S), so that `popinf report` can redraw the notebook's
/// figures and `popinf fit` can refit the same catalogue.
pub fn data_npz(toy: &ToyData) -> Result<Vec<u8>> {
    use crate::data::npy::{NpyData, NpzWriter};
    let n = toy.mu_true.len();
    let s = if n == 0 {
        0
    } else {
        toy.catalog.object(0).values.len()
    };
    let samples: Vec<f64> = (0..n)
        .flat_map(|i| toy.catalog.object(i).values.to_vec())
        .collect();
    let write = || -> std::io::Result<Vec<u8>> {
        let mut npz = NpzWriter::new();
        npz.add("mu_true", &[n], NpyData::F64(&toy.mu_true))?;
        npz.add("x", &[n], NpyData::F64(toy.measurements.x()))?;
        npz.add("sigma", &[n], NpyData::F64(toy.measurements.sigma()))?;
        npz.add("samples", &[n, s], NpyData::F64(&samples))?;
        npz.finish()
    };
    write().map_err(|e| crate::Error::Invalid(format!("writing data.npz: {e}")))
}

/// Writes `summary.json`, `draws_<method>.csv` (`chain,draw,<params>`) and
/// `data.npz` into `dir`, each atomically.
pub fn write_run(dir: &std::path::Path, run: &DemoRun) -> Result<Vec<std::path::PathBuf>> {
    let json = serde_json::to_string_pretty(&run.summary).expect("plain numbers serialise");
    let mut files = vec![("summary.json".to_string(), json.into_bytes())];
    for (name, trace) in &run.traces {
        files.push((format!("draws_{name}.csv"), crate::run::fit::draws_csv(trace)));
    }
    files.push(("data.npz".to_string(), data_npz(&run.toy)?));
    crate::data::files::write_files(dir, files)
}
