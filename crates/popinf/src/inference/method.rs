//! One fitting method's run, summarised: the sampler's figures, ArviZ's
//! columns for the hyperparameters, sampler- and likelihood-specific
//! diagnostics, and plain-words warnings. Shared by `demo` and `fit`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::diagnostics::summary::ParamSummary;
use crate::error::Result;
use crate::inference::posterior::{Hyperposterior, SampleableModel};
use crate::inference::sampler::{
    EnsembleRun, EnsembleSettings, EnsembleState, NutsResume, NutsRun, NutsSettings, SamplerObserver,
    sample_ensemble_resuming, sample_nuts_resuming,
};
use crate::inference::trace::Trace;
use crate::likelihood::importance::HyperLikelihood;
use crate::likelihood::reliability::ReliabilityReport;

/// How a sampling method ran.
/// The order the demo's methods are shown, drawn and listed in.
pub const METHOD_ORDER: [&str; 5] = ["naive", "importance", "gmm", "hierarchical", "exact"];

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
    /// Stopped (e.g. by Ctrl-C) before all draws were made.
    pub stopped_early: bool,
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
    /// gmm: how well each object's mixture describes its samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gmm: Option<crate::likelihood::gmm::GmmReport>,
    /// Selection effects: the detected fraction xi and, for injections,
    /// the effective number of injections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<SelectionDiagnostics>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SelectionDiagnostics {
    /// xi(theta) at the median over the checked posterior draws.
    pub xi_median: f64,
    /// Injections: smallest Neff_sel over the checked draws.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_eff_min: Option<f64>,
    /// Injections: that divided by the number of objects (want > 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_eff_per_object_min: Option<f64>,
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

pub fn ensemble_method<L: HyperLikelihood>(
    post: &Hyperposterior<L>,
    start: &[f64],
    settings: &EnsembleSettings,
    observer: &dyn SamplerObserver,
    started: Instant,
    resume: Option<EnsembleState>,
) -> Result<(MethodSummary, Trace, Vec<f64>)> {
    let run: EnsembleRun = sample_ensemble_resuming(post, start, settings, observer, resume)?;
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
            stopped_early: run.n_steps < settings.n_steps,
        }),
        diagnostics: Some(MethodDiagnostics {
            acceptance_fraction: Some(run.acceptance_fraction()),
            autocorr_time: Some(names.into_iter().zip(tau).collect()),
            ..MethodDiagnostics::default()
        }),
        warnings: Vec::new(),
    };
    // ln posterior of each kept draw, walker-major like the trace.
    let ln_prob = (0..run.n_walkers)
        .flat_map(|w| (run.n_burn..run.n_steps).map(move |s| (s, w)))
        .map(|(s, w)| run.ln_prob[s * run.n_walkers + w])
        .collect();
    Ok((summary, trace, ln_prob))
}

/// Runs NUTS and summarises the named hyperparameters (a latent model's
/// mu_i follow them in the trace and are not summarised).
pub fn nuts_method<M: SampleableModel>(
    model: &M,
    settings: &NutsSettings,
    observer: &dyn SamplerObserver,
    started: Instant,
    hyper: &[&str],
    resume: NutsResume,
) -> Result<(MethodSummary, NutsRun)> {
    let run = sample_nuts_resuming(model, settings, observer, resume)?;
    let summaries = run.trace.summaries_of(hyper)?;
    let n = run.stats.acceptance.len().max(1) as f64;
    let summary = MethodSummary {
        wall_s: started.elapsed().as_secs_f64(),
        params: hyper.iter().map(|p| p.to_string()).zip(summaries).collect(),
        sampler: Some(SamplerInfo {
            name: "nuts".into(),
            chains: run.trace.n_chains,
            draws: run.trace.n_draws,
            tune: settings.tune as usize,
            divergences: run.stats.divergences(),
            grad_evals: run.grad_evals,
            ln_density_evals: None,
            min_ess_bulk_per_s: 0.0,
            stopped_early: run.stopped_early,
        }),
        diagnostics: Some(MethodDiagnostics {
            divergences: Some(run.stats.divergences()),
            max_tree_depth_hits: Some(run.stats.max_depth_hits()),
            mean_acceptance: Some(run.stats.acceptance.iter().sum::<f64>() / n),
            bfmi: Some(
                run.stats
                    .energy
                    .chunks(settings.draws as usize)
                    .map(crate::diagnostics::convergence::bfmi)
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
pub fn warnings_for(m: &MethodSummary) -> Vec<String> {
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
    if let Some(s) = m.sampler.as_ref().filter(|s| s.stopped_early) {
        w.push(format!(
            "the run was stopped early: {} draws per chain instead of the planned number; \
             the results use what was drawn",
            s.draws
        ));
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
    if let Some(r) = d
        .selection
        .as_ref()
        .and_then(|s| s.n_eff_per_object_min)
        .filter(|&r| r < 4.0)
    {
        w.push(format!(
            "selection: the injections give Neff_sel = {r:.1} N somewhere in the posterior (want > 4 N, \
             Farr 2019): the selection term is noisy there; use more injections"
        ));
    }
    if let Some(report) = &d.importance_sampling {
        let r = &report.worst;
        if r.n_ess_below_20 > 0 {
            w.push(format!(
                "{} objects have fewer than 20 effective importance samples (min {:.1}): give them more \
                 posterior samples or a broader interim prior",
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
            let more = r.n_k_hat_above_threshold.saturating_sub(r.worst_objects.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let infinite = if r.worst_objects.iter().any(|(_, k)| !k.is_finite()) {
                " (k-hat inf: at most 4 of the object's weights stand out as its tail -- too few samples, or \
                 one or a few of them carry nearly all the weight -- so no tail can be fitted)"
            } else {
                ""
            };
            w.push(format!(
                "{} objects have Pareto k-hat above min(1 - 1/log10 S, 0.7): {}{more}{infinite}; their \
                 weights have heavy tails: give them more samples or a broader interim prior",
                r.n_k_hat_above_threshold,
                worst.join(", ")
            ));
        }
        if r.n_ess_below_20 > 0 || r.var_ln_l > 1.0 || r.n_k_hat_above_threshold > 0 {
            w.push(
                "remedy without more samples: --likelihood gmm (likelihood.kind = \"gmm\") fits each object's \
                 samples with a small Gaussian mixture and integrates it deterministically: no weights to \
                 collapse"
                    .into(),
            );
        }
    }
    if let Some(report) = &d.gmm {
        w.extend(report.warnings());
    }
    w
}

/// Fills in `min_ess_bulk_per_s` from the summaries and the wall time,
/// and the warnings.
pub fn with_ess_rate(mut m: MethodSummary) -> MethodSummary {
    let min_ess = m
        .params
        .values()
        .filter_map(|p| p.convergence.map(|c| c.ess_bulk))
        .fold(f64::INFINITY, f64::min);
    if let Some(s) = m.sampler.as_mut() {
        s.min_ess_bulk_per_s = min_ess / m.wall_s;
    }
    // Notes the workflow added (objects left out, ...) stay after the
    // diagnostics' warnings.
    let mut w = warnings_for(&m);
    for note in std::mem::take(&mut m.warnings) {
        if !w.contains(&note) {
            w.push(note);
        }
    }
    m.warnings = w;
    m
}
