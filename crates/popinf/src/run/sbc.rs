//! Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari &
//! Gelman 2018, arXiv:1804.06788): draw theta from the prior, simulate a
//! catalog, fit it, and record the rank of the true theta among thinned
//! posterior draws. A calibrated method gives uniform ranks; the naive fit
//! to medians does not.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::simulate::{ToySettings, derive_seed, simulate_gaussian_toy};
use crate::error::Result;
use crate::inference::latent::{LatentGaussianModel, Parametrisation};
use crate::inference::posterior::{Hyperposterior, SampleableModel};
use crate::inference::sampler::{NutsSettings, SamplerObserver, Silent, sample_nuts};
use crate::invalid;
use crate::likelihood::gmm::{DEFAULT_NODES, GmmClosedForm, GmmPlan, ObjectMixtures};
use crate::likelihood::importance::ImportanceLikelihood;
use crate::math::gmm::GmmSettings;
use crate::math::special::chi2_sf;
use crate::model::gaussian::Gaussian;
use crate::model::prior::Hyperprior;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SbcMethod {
    /// Fit to per-object posterior medians.
    Naive,
    /// Importance-sampled hyper-likelihood over per-object samples.
    Importance,
    /// The Gaussian-mixture likelihood from the same samples.
    Gmm,
    /// NUTS on the latent-variable model of the measurements.
    Hierarchical,
}

/// The simulated universe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SbcModel {
    /// The notebook's Gaussian toy.
    Gaussian,
    /// A single Schechter mass function (log_m_star, alpha) above a
    /// completeness limit of log M = 9, with the mock SED-fit posteriors
    /// of `popinf simulate smf` (skewed, mass-dependent width, 5% bimodal,
    /// non-flat interim prior); `n_obj` is the expected number detected.
    Schechter,
}

/// Priors of the Schechter SBC: log M* ~ U(10.4, 11.2), alpha ~ U(-1.8, -0.6).
pub const SCHECHTER_SBC_PRIORS: [Hyperprior; 2] = [
    Hyperprior::Uniform {
        lower: 10.4,
        upper: 11.2,
    },
    Hyperprior::Uniform {
        lower: -1.8,
        upper: -0.6,
    },
];

#[derive(Debug, Clone, PartialEq)]
pub struct SbcSettings {
    pub method: SbcMethod,
    pub model: SbcModel,
    pub reps: usize,
    pub n_obj: usize,
    pub n_samp: usize,
    pub alpha: f64,
    pub seed: u64,
    /// Posterior draws kept per replication for the rank (ranks take
    /// `n_rank_draws + 1` values).
    pub n_rank_draws: usize,
    /// Bins of the rank histogram and of the chi-square uniformity test.
    pub n_bins: usize,
    pub nuts: NutsSettings,
    /// The ln L_i bias correction of the importance-sampled likelihood.
    pub bias_correction: bool,
}

impl Default for SbcSettings {
    fn default() -> Self {
        Self {
            method: SbcMethod::Importance,
            model: SbcModel::Gaussian,
            reps: 100,
            n_obj: 30,
            n_samp: 100,
            alpha: 1.0,
            seed: 0,
            n_rank_draws: 99,
            n_bins: 10,
            // 4 x 250 draws thinned to 99: every 10th draw, nearly
            // independent for these 2-D posteriors.
            nuts: NutsSettings {
                tune: 300,
                draws: 250,
                ..NutsSettings::default()
            },
            bias_correction: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamSbc {
    /// Rank of the true value among the thinned draws, per replication.
    pub ranks: Vec<usize>,
    /// Counts of ranks in `n_bins` equal bins.
    pub histogram: Vec<usize>,
    /// Chi-square test of uniform ranks.
    pub chi2: f64,
    pub p_value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SbcResult {
    pub method: SbcMethod,
    pub model: SbcModel,
    pub reps: usize,
    pub n_obj: usize,
    pub n_samp: usize,
    pub n_rank_draws: usize,
    pub params: BTreeMap<String, ParamSbc>,
}

/// The priors theta is drawn from, and fitted with: the notebook's.
pub const SBC_PRIORS: [Hyperprior; 2] = crate::model::prior::NOTEBOOK_PRIORS;

fn validate(s: &SbcSettings) -> Result<()> {
    if s.reps < 2 {
        return invalid!("sbc: need at least 2 replications, got {}", s.reps);
    }
    if s.n_bins < 2 || !(s.n_rank_draws + 1).is_multiple_of(s.n_bins) {
        return invalid!(
            "sbc: {} bins must divide the {} possible ranks evenly",
            s.n_bins,
            s.n_rank_draws + 1
        );
    }
    let available = s.nuts.chains * s.nuts.draws as usize;
    if s.n_rank_draws > available {
        return invalid!(
            "sbc: {} rank draws requested but only {available} posterior draws per fit",
            s.n_rank_draws
        );
    }
    Ok(())
}

/// The ranks of the true values among `n_rank_draws` draws thinned evenly
/// over all chains.
fn ranks_of(trace: &crate::inference::trace::Trace, truth: [f64; 2], n_rank_draws: usize) -> [usize; 2] {
    let total = trace.n_chains * trace.n_draws;
    let stride = total / n_rank_draws;
    let mut ranks = [0usize; 2];
    for (k, rank) in ranks.iter_mut().enumerate() {
        let values = trace.param(k);
        *rank = (0..n_rank_draws)
            .filter(|j| values[j * stride] < truth[k])
            .count();
    }
    ranks
}

/// One Schechter replication: simulate the mock survey at a prior draw,
/// fit it with the completeness limit, rank the truth.
fn replicate_schechter(s: &SbcSettings, rep: usize) -> Result<[usize; 2]> {
    use crate::likelihood::population::PopulationLikelihood;
    use crate::model::selection::{Counts, Selection};
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(s.seed, 10_000 + rep as u64));
    let draw = |p: &Hyperprior, u: f64| match *p {
        Hyperprior::Uniform { lower, upper } => lower + (upper - lower) * u,
        _ => unreachable!("SBC priors are uniform"),
    };
    let truth = [
        draw(&SCHECHTER_SBC_PRIORS[0], rng.random()),
        draw(&SCHECHTER_SBC_PRIORS[1], rng.random()),
    ];
    let mut settings = crate::run::smf::SmfSettings::single(
        s.n_obj as f64,
        derive_seed(s.seed, 20_000 + rep as u64),
        truth[0],
        truth[1],
    );
    settings.n_samp = s.n_samp;
    let sim = crate::run::smf::simulate_smf(&settings)?;
    let catalog = crate::data::catalog::SampleCatalog::from_objects(&sim.samples, Some(&sim.ln_prior))?;
    let selection = Selection::Limit(settings.limit);
    let model = settings.model.clone();
    let nuts = NutsSettings {
        seed: derive_seed(s.seed, 30_000 + rep as u64),
        ..s.nuts.clone()
    };
    let priors = SCHECHTER_SBC_PRIORS.to_vec();
    let used = match s.method {
        SbcMethod::Naive => selection.select_medians(&catalog)?.catalog.into_owned(),
        SbcMethod::Importance => selection.select_samples(&catalog)?.catalog.into_owned(),
        SbcMethod::Gmm => {
            let mixtures = ObjectMixtures::fit(&catalog, &GmmSettings::default())?;
            match GmmPlan::new(&mixtures, &model, &selection, DEFAULT_NODES, s.bias_correction)? {
                GmmPlan::Nodes { catalog, .. } => catalog,
                GmmPlan::ClosedForm(_) | GmmPlan::Adaptive(_) => {
                    unreachable!("a Schechter function takes fixed nodes")
                }
            }
        }
        SbcMethod::Hierarchical => {
            return invalid!("sbc: the hierarchical (latent) model exists for the Gaussian toy only");
        }
    };
    let inner = ImportanceLikelihood::new(&used, model.clone())?
        .with_bias_correction(s.bias_correction && s.method == SbcMethod::Importance);
    let like = PopulationLikelihood::new(inner, model, selection, Counts::Shape, used.n_obj())?;
    let post = Hyperposterior::new(like, priors)?;
    let trace = sample_nuts(&post, &nuts, &Silent)?.trace;
    Ok(ranks_of(&trace, truth, s.n_rank_draws))
}

/// One replication: the rank of each true hyperparameter.
fn replicate(s: &SbcSettings, rep: usize) -> Result<[usize; 2]> {
    if s.model == SbcModel::Schechter {
        return replicate_schechter(s, rep);
    }
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(s.seed, 10_000 + rep as u64));
    let (Hyperprior::Uniform { lower: ml, upper: mu }, Hyperprior::Uniform { lower: sl, upper: su }) =
        (SBC_PRIORS[0], SBC_PRIORS[1])
    else {
        unreachable!("SBC priors are uniform");
    };
    let truth = [
        ml + (mu - ml) * rng.random::<f64>(),
        // Keep theta_sigma off the boundary the uniform prior allows but
        // the simulator does not.
        (sl + (su - sl) * rng.random::<f64>()).max(1e-6),
    ];
    let toy = simulate_gaussian_toy(&ToySettings {
        n_obj: s.n_obj,
        n_samp: s.n_samp,
        alpha: s.alpha,
        theta_mu: truth[0],
        theta_sigma: truth[1],
        seed: derive_seed(s.seed, 20_000 + rep as u64),
    })?;
    let nuts = NutsSettings {
        seed: derive_seed(s.seed, 30_000 + rep as u64),
        ..s.nuts.clone()
    };
    let priors = SBC_PRIORS.to_vec();
    let trace = match s.method {
        SbcMethod::Naive => {
            let medians = toy.catalog.medians();
            let post = Hyperposterior::new(ImportanceLikelihood::new(&medians, Gaussian)?, priors)?;
            sample_nuts(&post, &nuts, &Silent)?.trace
        }
        SbcMethod::Importance => {
            let like =
                ImportanceLikelihood::new(&toy.catalog, Gaussian)?.with_bias_correction(s.bias_correction);
            let post = Hyperposterior::new(like, priors)?;
            sample_nuts(&post, &nuts, &Silent)?.trace
        }
        SbcMethod::Gmm => {
            let (_, closed) = GmmClosedForm::fit_gaussian(&toy.catalog, s.bias_correction)?;
            let post = Hyperposterior::new(closed, priors)?;
            sample_nuts(&post, &nuts, &Silent)?.trace
        }
        SbcMethod::Hierarchical => {
            let model = LatentGaussianModel::new(
                &toy.measurements,
                SBC_PRIORS[0],
                SBC_PRIORS[1],
                Parametrisation::NonCentred,
            )?;
            debug_assert_eq!(&model.param_names()[..2], ["theta_mu", "theta_sigma"]);
            sample_nuts(&model, &nuts, &Silent)?.trace
        }
    };
    Ok(ranks_of(&trace, truth, s.n_rank_draws))
}

/// Runs the replications in parallel (each seeded from `seed` and its
/// index, so results do not depend on the thread count) and tests the
/// ranks for uniformity.
pub fn run_sbc(s: &SbcSettings, observer: &dyn SamplerObserver) -> Result<SbcResult> {
    validate(s)?;
    observer.on_start(1, s.reps as u64);
    let ranks: Vec<[usize; 2]> = (0..s.reps)
        .into_par_iter()
        .map(|rep| {
            let r = replicate(s, rep);
            observer.on_draw(0, false, false);
            r
        })
        .collect::<Result<_>>()?;
    observer.on_finish();
    let n_values = s.n_rank_draws + 1;
    let per_bin = n_values / s.n_bins;
    let expected = s.reps as f64 / s.n_bins as f64;
    let names = match s.model {
        SbcModel::Gaussian => ["theta_mu", "theta_sigma"],
        SbcModel::Schechter => ["log_m_star", "alpha"],
    };
    let params = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let r: Vec<usize> = ranks.iter().map(|x| x[k]).collect();
            let mut histogram = vec![0usize; s.n_bins];
            for &rank in &r {
                histogram[rank / per_bin] += 1;
            }
            let chi2: f64 = histogram
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            let p_value = chi2_sf(chi2, (s.n_bins - 1) as f64);
            (
                name.to_string(),
                ParamSbc {
                    ranks: r,
                    histogram,
                    chi2,
                    p_value,
                },
            )
        })
        .collect();
    Ok(SbcResult {
        method: s.method,
        model: s.model,
        reps: s.reps,
        n_obj: s.n_obj,
        n_samp: s.n_samp,
        n_rank_draws: s.n_rank_draws,
        params,
    })
}
