//! `popinf fit`: a run file (TOML) or flags name the data, the population
//! model and its priors, the likelihood and the sampler; the run writes the
//! hyperposterior and its diagnostics to an output directory.

//!
//! The run file and its resolution are in [`config`], reading the data in
//! [`load`], checkpoints in [`checkpoint`], the written files in
//! [`outputs`]; this file runs the fit.

pub mod checkpoint;
pub mod config;
pub mod load;
pub mod outputs;

pub use checkpoint::*;
pub use config::*;
pub use load::*;
pub use outputs::*;

use std::time::Instant;

use crate::data::catalog::SampleCatalog;
use crate::error::{Error, Result};
use crate::inference::latent::LatentGaussianModel;
use crate::inference::method::{MethodSummary, ensemble_method, nuts_method, with_ess_rate};
use crate::inference::posterior::{Hyperposterior, LogDensity, SampleableModel};
use crate::inference::sampler::{
    EnsembleSettings, EnsembleState, NutsDrawStats, NutsResume, NutsSettings, SamplerObserver,
};
use crate::inference::trace::Trace;
use crate::invalid;
use crate::likelihood::gmm::{GmmPlan, ObjectMixtures};
use crate::likelihood::importance::ImportanceLikelihood;
use crate::likelihood::population::{ObjectTerms, PopulationLikelihood};
use crate::math::gmm::GmmSettings;
use crate::model::selection::Selection;

/// xi at the posterior, and for injections the smallest Neff_sel over the
/// checked draws.
fn selection_diagnostics(
    like: &PopulationLikelihood<'_>,
    draws: &[Vec<f64>],
) -> Option<crate::inference::method::SelectionDiagnostics> {
    if matches!(like.selection, Selection::None) || draws.is_empty() {
        return None;
    }
    let p = like.model.n_params();
    let mut xi: Vec<f64> = Vec::new();
    let mut n_eff_min = f64::INFINITY;
    let mut g = vec![0.0; p];
    for d in draws {
        let (ln_xi, est) = like.selection.ln_xi_grad(&like.model, &d[..p], &mut g);
        xi.push(ln_xi.exp());
        if let Some(e) = est {
            n_eff_min = n_eff_min.min(e.n_eff);
        }
    }
    xi.sort_by(f64::total_cmp);
    let injections = matches!(like.selection, Selection::Injections { .. });
    Some(crate::inference::method::SelectionDiagnostics {
        xi_median: crate::math::stats::quantile_sorted(&xi, 0.5),
        n_eff_min: injections.then_some(n_eff_min),
        n_eff_per_object_min: injections.then_some(n_eff_min / like.n_obj as f64),
    })
}

/// Runs the fit on loaded data, continuing from `resume` (the checkpoint of
/// an interrupted run of the same configuration) when given.
pub fn run_fit(
    cfg: &FitConfig,
    data: &LoadedData,
    observer: &dyn SamplerObserver,
    resume: CheckpointFile,
) -> Result<FitResult> {
    let CheckpointFile {
        chains: finished,
        ensemble: ensemble_state,
        logs,
        ..
    } = resume;
    let finished = NutsResume { finished, logs };
    let started = Instant::now();
    let file = match &cfg.data {
        DataSource::Samples(p) | DataSource::Measurements(p) => p.display().to_string(),
    };
    let nuts = NutsSettings {
        chains: cfg.chains,
        tune: cfg.tune,
        draws: cfg.draws,
        target_accept: cfg.target_accept,
        max_depth: cfg.max_depth,
        seed: cfg.seed,
        mass_matrix: cfg.mass_matrix,
        ..NutsSettings::default()
    };
    let ensemble = EnsembleSettings {
        n_walkers: cfg.walkers,
        n_steps: (cfg.tune + cfg.draws) as usize,
        n_burn: cfg.tune as usize,
        seed: cfg.seed,
        ..EnsembleSettings::default()
    };
    let names: Vec<&str> = cfg.param_names.iter().map(String::as_str).collect();
    observer.on_stage(&format!("fit ({}, {})", cfg.likelihood, cfg.sampler));
    let mut objects = None;
    let mut gmm = None;
    let (info, mut method, trace, nuts_stats, ln_prob) = match data {
        LoadedData::Samples { catalog, selection } => {
            // P_det on the true values re-weights every sample; the naive
            // fit, which takes each median as the truth, keeps the objects
            // whose median could have been detected.
            let selected = if cfg.likelihood == "naive" {
                selection.select_medians(catalog)
            } else {
                selection.select_samples(catalog)
            }
            .map_err(|e| Error::Invalid(format!("{file}: {e}")))?;
            let transposed = catalog.looks_transposed();
            let mut notes = Vec::new();
            if !selected.left_out.is_empty() {
                let shown: Vec<String> = selected.left_out.iter().take(10).map(|i| i.to_string()).collect();
                notes.push(if cfg.likelihood == "naive" {
                    format!(
                        "naive: {} of {} objects have a median the survey could not detect and were left out",
                        selected.left_out.len(),
                        catalog.n_obj()
                    )
                } else {
                    format!(
                        "{} object(s) have no sample inside the selection (e.g. object {}) and were left out: \
                         their likelihood cannot be estimated from these samples; more samples per object \
                         would keep them",
                        selected.left_out.len(),
                        shown.join(", ")
                    )
                });
            }
            let catalog_used: &SampleCatalog = &selected.catalog;
            let ids = &selected.ids;
            check_support(&file, catalog_used, ids, &cfg.model)?;
            // The gmm likelihood: mixtures fitted to the raw samples, P_det
            // inside its integral (its own nodes, its own left-out objects).
            let gmm_nodes;
            let (inner, used_ids): (ObjectTerms<'_>, Vec<usize>) = if cfg.likelihood == "gmm" {
                // Its own left-out objects replace the samples' ones.
                notes.clear();
                observer.on_stage("fitting each object's Gaussian mixture");
                let mixtures = ObjectMixtures::fit(catalog, &GmmSettings::default())
                    .map_err(|e| Error::Invalid(format!("{file}: {e}")))?;
                let all: Vec<usize> = (0..catalog.n_obj()).collect();
                let plan = GmmPlan::new(
                    &mixtures,
                    &cfg.model,
                    selection,
                    cfg.gmm_nodes,
                    cfg.bias_correction,
                )?;
                let nodes = (!matches!(plan, GmmPlan::ClosedForm(_))).then_some(cfg.gmm_nodes);
                gmm = Some((mixtures.report(&all, plan.form(), nodes), mixtures.to_csv(&all)));
                match plan {
                    GmmPlan::ClosedForm(closed) => (closed.into(), all),
                    GmmPlan::Adaptive(adaptive) => (adaptive.into(), all),
                    GmmPlan::Nodes {
                        catalog: node_catalog,
                        kept,
                        left_out,
                    } => {
                        if !left_out.is_empty() {
                            let shown: Vec<String> =
                                left_out.iter().take(10).map(|i| i.to_string()).collect();
                            notes.push(format!(
                                "gmm: {} object(s) have a likelihood that lies wholly outside the model's support \
                                 or below the completeness limit (e.g. object {}) and were left out",
                                left_out.len(),
                                shown.join(", ")
                            ));
                        }
                        gmm_nodes = node_catalog;
                        let inner = ImportanceLikelihood::new(&gmm_nodes, cfg.model.clone())?
                            .with_storage(cfg.storage)?;
                        (inner.into(), kept)
                    }
                }
            } else {
                let inner = ImportanceLikelihood::new(catalog_used, cfg.model.clone())?
                    .with_bias_correction(cfg.bias_correction && cfg.likelihood == "importance")
                    .with_storage(cfg.storage)?;
                (inner.into(), ids.clone())
            };
            // Messages name objects by their index in the input file.
            let like = PopulationLikelihood::new(
                inner,
                cfg.model.clone(),
                selection.clone(),
                cfg.counts,
                used_ids.len(),
            )?
            .with_object_ids(used_ids);
            let mut post =
                Hyperposterior::new(like, cfg.priors.clone())?.with_ordered(cfg.model.ordered_params())?;
            if let Some(init) = &cfg.init {
                post = post.with_initial_point(init)?;
            }
            let info = FitDataInfo {
                file,
                n_obj: catalog.n_obj(),
                n_samples_total: Some(catalog.total_samples()),
            };
            let (mut m, trace, stats, lp) = sample_posterior(
                &post,
                cfg,
                &nuts,
                &ensemble,
                observer,
                started,
                &names,
                finished,
                ensemble_state,
            )?;
            let draws = spread_draws(&trace, 20);
            if cfg.likelihood == "importance"
                && let Some(d) = m.diagnostics.as_mut()
            {
                let p = cfg.model.n_params();
                let model_draws: Vec<Vec<f64>> = draws.iter().map(|d| d[..p].to_vec()).collect();
                d.importance_sampling = post
                    .likelihood()
                    .importance()
                    .and_then(|l| l.reliability_over(&model_draws));
            }
            if let Some(d) = m.diagnostics.as_mut() {
                d.selection = selection_diagnostics(post.likelihood(), &draws);
            }
            m.warnings.extend(notes);
            m.warnings.extend(transposed);
            if let (Some((report, _)), Some(d)) = (&gmm, m.diagnostics.as_mut()) {
                d.gmm = Some(report.clone());
            }
            if cfg.likelihood == "importance" || cfg.likelihood == "gmm" {
                objects = Some(objects_csv(catalog_used, ids, &cfg.model, &trace)?);
            }
            (info, m.clone(), trace, stats, lp)
        }
        LoadedData::Measurements(meas) => {
            if cfg.init.is_some() {
                return invalid!(
                    "sampler.init sets the start of the hyperparameters of a fit to samples; the hierarchical \
                     model of measurements starts from its own point (remove sampler.init)"
                );
            }
            let model = LatentGaussianModel::new(meas, cfg.priors[0], cfg.priors[1], cfg.parametrisation)?;
            if cfg.sampler != "nuts" {
                return invalid!(
                    "the hierarchical model has {} parameters; sample it with NUTS (sampler = \"nuts\")",
                    model.dim()
                );
            }
            let (m, run) = nuts_method(&model, &nuts, observer, started, &names, finished)?;
            let info = FitDataInfo {
                file,
                n_obj: meas.n_obj(),
                n_samples_total: None,
            };
            (info, m, run.trace, Some(run.stats), None)
        }
    };
    method.wall_s = started.elapsed().as_secs_f64();
    let method = with_ess_rate(method);
    Ok(FitResult {
        summary: FitSummary {
            data: info,
            methods: [(cfg.likelihood.clone(), method)].into(),
        },
        trace,
        nuts_stats,
        ensemble_ln_prob: ln_prob,
        objects_csv: objects,
        gmm_csv: gmm.map(|(_, csv)| csv.into_bytes()),
    })
}

type Sampled = (MethodSummary, Trace, Option<NutsDrawStats>, Option<Vec<f64>>);

#[allow(clippy::too_many_arguments)]
fn sample_posterior<L: crate::likelihood::importance::HyperLikelihood>(
    post: &Hyperposterior<L>,
    cfg: &FitConfig,
    nuts: &NutsSettings,
    ensemble: &EnsembleSettings,
    observer: &dyn SamplerObserver,
    started: Instant,
    names: &[&str],
    finished: NutsResume,
    ensemble_state: Option<EnsembleState>,
) -> Result<Sampled> {
    if cfg.sampler == "nuts" {
        let (m, run) = nuts_method(post, nuts, observer, started, names, finished)?;
        Ok((m, run.trace, Some(run.stats), None))
    } else {
        let start = post.initial_point();
        let (m, trace, ln_prob) = ensemble_method(post, &start, ensemble, observer, started, ensemble_state)?;
        Ok((m, trace, None, Some(ln_prob)))
    }
}
