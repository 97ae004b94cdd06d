//! Figures and a self-contained HTML report of one run (or several
//! overlaid), from what its saved outputs hold ([`RunOutputs`]; reading
//! them back is `run::report`'s). The report fetches nothing: its images
//! sit beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use plotters::style::RGBColor;
use rayon::prelude::*;
use serde_json::Value;

use crate::error::Result;
use crate::inference::trace::Trace;
use crate::model::library::Population;
use crate::model::prior::Hyperprior;
use crate::report::corner::{Corner, CornerSeries};
use crate::report::figures::{Band, HistCurves, PopulationBands, TraceRank};
use crate::report::graph::ModelGraph;
use crate::report::label::{RichLabel, html_escape};
use crate::report::{Figure, PALETTE, render};

fn method_color(name: &str) -> RGBColor {
    match name {
        "naive" => PALETTE[1],
        "importance" => PALETTE[0],
        "hierarchical" => PALETTE[2],
        "gmm" => PALETTE[3],
        "exact" => PALETTE[4],
        _ => PALETTE[0],
    }
}

/// The simulated data of a demo run.
#[derive(Debug, Clone)]
pub struct DemoData {
    pub mu_true: Vec<f64>,
    pub x: Vec<f64>,
    pub sigma: Vec<f64>,
    /// The first objects' posterior samples (for the notebook's figure).
    pub first_samples: Vec<Vec<f64>>,
    /// Each object's posterior median.
    pub medians: Vec<f64>,
}

/// What a run directory holds, read back.
pub struct RunOutputs {
    pub dir: PathBuf,
    pub is_demo: bool,
    pub summary: Value,
    /// (method, hyperparameter draws), in display order.
    pub traces: Vec<(String, Trace)>,
    pub hyper: Vec<String>,
    pub truth: BTreeMap<String, f64>,
    pub data: Option<DemoData>,
    pub model: Population,
    pub priors: Vec<Hyperprior>,
    pub n_obj: Option<usize>,
    /// The command that rebuilds the report.
    pub rebuild: String,
}

/// Columns of a trace, one vector per parameter.
fn columns(trace: &Trace) -> Vec<Vec<f64>> {
    (0..trace.n_params()).map(|k| trace.param(k)).collect()
}

/// Rows of a trace: one parameter vector per draw.
fn rows(trace: &Trace) -> Vec<Vec<f64>> {
    trace
        .draws
        .chunks(trace.n_params())
        .map(<[f64]>::to_vec)
        .collect()
}

/// The population curve at each x for one draw: the normalised density,
/// or for a model with an amplitude the number density itself (e.g. the
/// mass function in Mpc^-3 dex^-1). The normalisation is computed once.
fn population_curve(model: &Population, theta: &[f64], x: &[f64]) -> Vec<f64> {
    let p = model.n_params();
    let theta = &theta[..p];
    if !model.valid(theta) {
        return vec![0.0; x.len()];
    }
    let ln_z = if model.has_amplitude() {
        0.0
    } else {
        model.ln_norm_grad(theta, &mut vec![0.0; p])
    };
    x.iter()
        .map(|&xi| (model.ln_f_1d(theta, xi, None) - ln_z).exp())
        .collect()
}

fn normal_pdf(x: f64, mu: f64, sd: f64) -> f64 {
    (-0.5 * ((x - mu) / sd).powi(2)).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
}

/// One figure to draw: its file stem, a caption, and how to draw it.
type Job<'a> = (String, String, Box<dyn Fn() -> Result<Figure> + Send + Sync + 'a>);

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub report: PathBuf,
    pub figures: Vec<PathBuf>,
    /// Wall time of drawing and writing everything.
    pub seconds: f64,
}

/// Draws every figure of `run`, writes them and `report.html` into `dir`.
pub fn write_report(run: &RunOutputs, dir: &Path, started: Instant) -> Result<ReportFiles> {
    let jobs = figure_jobs(run)?;
    // Figures are independent: draw them in parallel, write them in order.
    let drawn: Vec<Result<Figure>> = jobs.par_iter().map(|(_, _, f)| f()).collect();
    let mut figures = Vec::new();
    let mut shown = Vec::new();
    for ((stem, caption, _), fig) in jobs.iter().zip(drawn) {
        figures.extend(fig?.write(dir, stem)?);
        shown.push((stem.clone(), caption.clone()));
    }
    let graph = ModelGraph::for_model(&run.model, &run.hyper, &run.priors, run.n_obj, !run.is_demo);
    let graph_files = [
        (dir.join("graph.dot"), graph.dot()),
        (dir.join("graph.svg"), graph.svg()),
    ];
    for (path, text) in &graph_files {
        crate::data::files::write_atomically(path, text.as_bytes())?;
        figures.push(path.to_path_buf());
    }
    let html = report_html(run, &shown);
    let report = dir.join("report.html");
    crate::data::files::write_atomically(&report, html.as_bytes())?;
    Ok(ReportFiles {
        report,
        figures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn figure_jobs(run: &RunOutputs) -> Result<Vec<Job<'_>>> {
    let mut jobs: Vec<Job> = Vec::new();
    let truths: Vec<Option<f64>> = run.hyper.iter().map(|h| run.truth.get(h).copied()).collect();
    let title_series = run
        .traces
        .iter()
        .position(|(m, _)| m == "importance")
        .unwrap_or(0);
    let title_method = run.traces[title_series].0.clone();
    jobs.push((
        "corner".into(),
        format!(
            "Hyperposterior of every method (titles: {title_method}, median and 16/84% quantiles; \
             contours at 0.5, 1, 1.5 and 2 sigma)"
        ),
        Box::new(move || {
            let series = run
                .traces
                .iter()
                .map(|(m, t)| CornerSeries {
                    label: m.clone(),
                    color: method_color(m),
                    columns: columns(t),
                })
                .collect();
            let mut corner = Corner::new(run.hyper.clone(), series)?.with_truths(truths.clone());
            corner.title_series = Some(title_series);
            render(&corner)
        }),
    ));
    // The population's x range: the demo's, a bounded model's support, else
    // five widths around the posterior median.
    let truth_pdf = match (run.truth.get("theta_mu"), run.truth.get("theta_sigma")) {
        (Some(&m), Some(&s)) => Some((m, s)),
        _ => None,
    };
    let one_d = crate::model::population::PopulationModel::dim(&run.model) == 1;
    let median_theta: Vec<f64> = run.traces[title_series]
        .1
        .summaries()
        .iter()
        .map(|s| s.q50)
        .collect();
    let (lo, hi) = if run.is_demo {
        (-5.0, 5.0)
    } else {
        match &run.model {
            Population::Gaussian(_) | Population::Mixture(_) | Population::LogNormal(_) if one_d => {
                let (a, b, _) = run.model.integration_range(&median_theta);
                // integration_range spans 12 widths; show 5.
                let (c, w) = (0.5 * (a + b), (b - a) / 24.0 * 5.0);
                if matches!(run.model, Population::LogNormal(_)) {
                    (a.max(0.0), b.min(a + 10.0 * (b - a) / 24.0))
                } else {
                    (c - w, c + w)
                }
            }
            m if one_d => {
                let (a, b, _) = m.integration_range(&median_theta);
                (a, b)
            }
            _ => (0.0, 1.0),
        }
    };
    let grid: Vec<f64> = (0..=200).map(|i| lo + (hi - lo) * i as f64 / 200.0).collect();
    if one_d {
        let grid = grid.clone();
        let amplitude = run.model.has_amplitude();
        let truth_theta: Option<Vec<f64>> = run.hyper.iter().map(|h| run.truth.get(h).copied()).collect();
        let x_name = if matches!(
            run.model,
            Population::Schechter(_) | Population::DoubleSchechter(_)
        ) {
            "log10_M"
        } else {
            "mu"
        };
        jobs.push((
            "population".into(),
            if amplitude {
                "Inferred mass function (number density per dex): median and 68% / 95% bands over \
                 hyperposterior draws, per method"
                    .into()
            } else {
                "Inferred population density: median and 68% / 95% bands over hyperposterior draws, per method"
                    .into()
            },
            Box::new(move || {
                let bands = run
                    .traces
                    .iter()
                    .map(|(m, t)| {
                        Band::from_curves(m, method_color(m), &grid, &rows(t), 400, |th| {
                            population_curve(&run.model, th, &grid)
                        })
                    })
                    .collect();
                render(&PopulationBands {
                    title: if amplitude { "Mass function Φ (Mpc⁻³ dex⁻¹)".into() } else { "Population density p(μ | θ)".into() },
                    x_name: x_name.into(),
                    truth: truth_theta.as_ref().map(|t| population_curve(&run.model, t, &grid)),
                    x: grid.clone(),
                    bands,
                    log_y: amplitude,
                })
            }),
        ));
    }
    if let (Some(data), Some((tm, ts))) = (&run.data, truth_pdf) {
        let pdf_points: Vec<(f64, f64)> = grid.iter().map(|&x| (x, normal_pdf(x, tm, ts))).collect();
        let pdf_label = format!("population N({tm}, {ts})");
        let hist = |title: &str, hists: Vec<(String, RGBColor, Vec<f64>)>, bins: usize| HistCurves {
            title: title.into(),
            x_name: "mu".into(),
            x_range: (lo, hi),
            bins,
            hists,
            curves: vec![(pdf_label.clone(), crate::report::TRUTH, pdf_points.clone())],
        };
        let true_mu = hist(
            "True values μ_i and the population",
            vec![("true μ_i".into(), PALETTE[0], data.mu_true.clone())],
            40,
        );
        jobs.push((
            "true_mu".into(),
            "The simulated true values and the population they were drawn from (the notebook's first figure)"
                .into(),
            Box::new(move || render(&true_mu)),
        ));
        let objects = hist(
            "Posteriors of the first five objects",
            data.first_samples
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("object {i}"), PALETTE[i % PALETTE.len()], s.clone()))
                .collect(),
            40,
        );
        jobs.push((
            "object_posteriors".into(),
            "Per-object posterior samples, each much wider than the population's structure".into(),
            Box::new(move || render(&objects)),
        ));
        let medians = hist(
            "Posterior medians (the naive point estimates)",
            vec![(
                "median of each posterior".into(),
                PALETTE[1],
                data.medians.clone(),
            )],
            40,
        );
        jobs.push((
            "medians".into(),
            "Per-object medians are broader than the population: fitting them biases θ_σ upwards".into(),
            Box::new(move || render(&medians)),
        ));
    }
    for (m, t) in &run.traces {
        if run.is_demo && m == "exact" {
            continue;
        }
        let fig = TraceRank {
            title: format!("{m}: trace and rank plots"),
            params: run.hyper.clone(),
            chains: (0..t.n_params())
                .map(|k| (0..t.n_chains).map(|c| t.chain_param(c, k)).collect())
                .collect(),
            max_chains: 8,
        };
        jobs.push((
            format!("trace_{m}"),
            format!(
                "{m}: draws per chain (left) and rank histograms per chain (right; flat when the chains mix)"
            ),
            Box::new(move || render(&fig)),
        ));
    }
    Ok(jobs)
}

fn fmt_num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        Some(v) => format!("{v}"),
        None => "–".into(),
    }
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;\
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;\
padding:4px 8px;text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}figure{margin:2em 0}\
figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:90%}.warn{color:#a40}\
.ok{color:#070}code{background:#f6f6f6;padding:1px 4px}";

/// Whether to trust a method's answer, in a few words with the remedy,
/// from its summary: convergence, then the likelihood's own reliability.
fn trust_verdict(name: &str, m: &Value) -> (bool, String) {
    if name == "exact" {
        return (true, "yes: the exact posterior".into());
    }
    if name == "naive" {
        return (
            false,
            "no: medians carry the measurement noise, so the population comes out too wide".into(),
        );
    }
    let params = m["params"].as_object().cloned().unwrap_or_default();
    let r_hat = params
        .values()
        .filter_map(|p| p["r_hat"].as_f64())
        .fold(f64::NAN, f64::max);
    let ess = params
        .values()
        .filter_map(|p| p["ess_bulk"].as_f64())
        .fold(f64::NAN, f64::min);
    let divergences = m
        .pointer("/sampler/divergences")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if r_hat > 1.01 || ess < 400.0 || divergences > 0 {
        return (
            false,
            format!(
                "not yet: R-hat {r_hat:.3}, bulk-ESS {ess:.0}, {divergences} divergent transition(s); run longer or raise \
                 the target acceptance"
            ),
        );
    }
    if let Some(is) = m.pointer("/diagnostics/importance_sampling/worst") {
        let var = is["var_ln_l"].as_f64().unwrap_or(f64::NAN);
        let k = is["n_k_hat_above_threshold"].as_u64().unwrap_or(0);
        if var.is_nan() || var > 1.0 || k > 0 {
            return (
                false,
                format!(
                    "converged, but the importance weights are unreliable (Var(ln L) = {var:.2}, {k} objects \
                     with high k-hat): use --likelihood gmm, or more samples"
                ),
            );
        }
        return (
            true,
            format!("yes: converged, importance weights reliable (Var(ln L) = {var:.2})"),
        );
    }
    if let Some(g) = m.pointer("/diagnostics/gmm") {
        let poor = g["n_poor_fit"].as_u64().unwrap_or(0);
        if poor > 0 {
            return (
                false,
                format!(
                    "converged, but {poor} objects' mixtures describe their samples poorly: compare with \
                     --likelihood importance"
                ),
            );
        }
        return (
            true,
            "yes: converged, every object's mixture describes its samples".into(),
        );
    }
    (true, "yes: converged".into())
}

fn report_html(run: &RunOutputs, figures: &[(String, String)]) -> String {
    let s = &run.summary;
    let methods = s["methods"].as_object().cloned().unwrap_or_default();
    let mut h = String::new();
    let title = if run.is_demo {
        "popinf demo report"
    } else {
        "popinf fit report"
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(d) = s.get("data") {
        // "file: 1000 objects, 100 samples each (alpha = 1, seed 42)".
        let mut parts = Vec::new();
        if let Some(f) = d.get("file").and_then(Value::as_str) {
            parts.push(format!("<code>{}</code>:", html_escape(f)));
        }
        if let Some(n) = d.get("n_obj").and_then(Value::as_u64) {
            parts.push(format!("{n} objects"));
        }
        if let Some(sm) = d.get("n_samp").and_then(Value::as_u64) {
            parts.push(format!("× {sm} posterior samples"));
        } else if let Some(t) = d.get("n_samples_total").and_then(Value::as_u64) {
            parts.push(format!("({t} posterior samples in all)"));
        }
        let extra: Vec<String> = ["alpha", "seed"]
            .iter()
            .filter_map(|k| d.get(*k).map(|v| format!("{k} = {v}")))
            .collect();
        if !extra.is_empty() {
            parts.push(format!("({})", extra.join(", ")));
        }
        let _ = write!(h, "<p>Data: {}", parts.join(" "));
        if !run.is_demo {
            let m = match run.model.support() {
                Some((lo, hi)) => format!("{} on [{lo}, {hi}]", run.model.name()),
                None => run.model.name().to_string(),
            };
            let _ = write!(h, "; population model <code>{}</code>", html_escape(&m));
        }
        if !run.truth.is_empty() {
            let t: Vec<String> = run
                .truth
                .iter()
                .map(|(k, v)| format!("{} = {v}", RichLabel::from_name(k).html()))
                .collect();
            let _ = write!(h, "; truth: {}", t.join(", "));
        }
        h.push_str(".</p>\n");
    }
    // The comparison table.
    h.push_str("<h2>Results</h2>\n<table><tr><th class=\"l\">method</th>");
    for p in &run.hyper {
        let _ = write!(h, "<th>{} (mean ± sd)</th>", RichLabel::from_name(p).html());
    }
    let exact = methods.get("exact");
    if exact.is_some() {
        for p in &run.hyper {
            let _ = write!(
                h,
                "<th>{} − exact, in exact sd</th>",
                RichLabel::from_name(p).html()
            );
        }
    }
    if !run.truth.is_empty() {
        for p in &run.hyper {
            let _ = write!(
                h,
                "<th>{} − truth, in its sd</th>",
                RichLabel::from_name(p).html()
            );
        }
    }
    h.push_str("<th>trust it?</th><th>wall time (s)</th><th>min bulk-ESS / s</th><th>warnings</th></tr>\n");
    for (name, _) in run.traces.iter() {
        let m = &methods[name];
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", html_escape(name));
        for p in &run.hyper {
            let ps = &m["params"][p];
            let _ = write!(
                h,
                "<td>{} ± {}</td>",
                fmt_num(ps["mean"].as_f64(), 4),
                fmt_num(ps["sd"].as_f64(), 4)
            );
        }
        if let Some(e) = exact {
            for p in &run.hyper {
                let gap = match (
                    m["params"][p]["mean"].as_f64(),
                    e["params"][p]["mean"].as_f64(),
                    e["params"][p]["sd"].as_f64(),
                ) {
                    (Some(a), Some(b), Some(sd)) if sd > 0.0 => Some((a - b) / sd),
                    _ => None,
                };
                let flag = if gap.is_some_and(|g| g.abs() > 3.0) {
                    " class=\"warn\""
                } else {
                    ""
                };
                let _ = write!(h, "<td{flag}>{}</td>", fmt_num(gap, 2));
            }
        }
        if !run.truth.is_empty() {
            for p in &run.hyper {
                let off = match (
                    run.truth.get(p),
                    m["params"][p]["mean"].as_f64(),
                    m["params"][p]["sd"].as_f64(),
                ) {
                    (Some(t), Some(a), Some(sd)) if sd > 0.0 => Some((a - t) / sd),
                    _ => None,
                };
                let flag = if off.is_some_and(|g| g.abs() > 3.0) {
                    " class=\"warn\""
                } else {
                    ""
                };
                let _ = write!(h, "<td{flag}>{}</td>", fmt_num(off, 2));
            }
        }
        let (ok, why) = trust_verdict(name, m);
        let _ = write!(
            h,
            "<td class=\"l{}\">{}</td>",
            if ok { "" } else { " warn" },
            html_escape(&why)
        );
        let n_warn = m["warnings"].as_array().map_or(0, Vec::len);
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            fmt_num(m["wall_s"].as_f64(), 2),
            fmt_num(
                m.pointer("/sampler/min_ess_bulk_per_s").and_then(Value::as_f64),
                0
            ),
            n_warn
        );
    }
    h.push_str("</table>\n");
    for (stem, caption) in figures {
        let _ = writeln!(
            h,
            "<figure><a href=\"{stem}.svg\"><img src=\"{stem}.png\" alt=\"{}\"></a><figcaption>{} \
             (<a href=\"{stem}.svg\">SVG</a>)</figcaption></figure>",
            html_escape(caption),
            html_escape(caption)
        );
    }
    h.push_str(
        "<figure><img src=\"graph.svg\" alt=\"the model in plate notation\"><figcaption>The hierarchical \
         model in plate notation (Graphviz source: <a href=\"graph.dot\">graph.dot</a>)</figcaption></figure>\n",
    );
    // ArviZ's columns.
    h.push_str(
        "<h2>Diagnostics</h2>\n<table><tr><th class=\"l\">method</th><th class=\"l\">param</th><th>mean</th>\
         <th>sd</th><th>hdi_3%</th><th>hdi_97%</th><th>mcse_mean</th><th>mcse_sd</th><th>ess_bulk</th>\
         <th>ess_tail</th><th>r_hat</th></tr>\n",
    );
    for (name, _) in &run.traces {
        for p in &run.hyper {
            let ps = &methods[name]["params"][p];
            if ps.get("r_hat").is_none() {
                continue;
            }
            let r_hat = ps["r_hat"].as_f64();
            let flag = if r_hat.is_some_and(|r| r > 1.01) {
                " class=\"warn\""
            } else {
                ""
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{flag}>{}</td></tr>",
                html_escape(name),
                RichLabel::from_name(p).html(),
                fmt_num(ps["mean"].as_f64(), 4),
                fmt_num(ps["sd"].as_f64(), 4),
                fmt_num(ps["hdi_3"].as_f64(), 4),
                fmt_num(ps["hdi_97"].as_f64(), 4),
                fmt_num(ps["mcse_mean"].as_f64(), 5),
                fmt_num(ps["mcse_sd"].as_f64(), 5),
                fmt_num(ps["ess_bulk"].as_f64(), 0),
                fmt_num(ps["ess_tail"].as_f64(), 0),
                fmt_num(r_hat, 3)
            );
        }
    }
    h.push_str("</table>\n");
    // Samplers and importance-sampling reliability.
    h.push_str(
        "<table><tr><th class=\"l\">method</th><th class=\"l\">sampler</th><th>chains</th><th>tune</th>\
         <th>draws</th><th>divergences</th><th>gradients</th><th>acceptance</th></tr>\n",
    );
    for (name, _) in &run.traces {
        let m = &methods[name];
        let Some(sm) = m.get("sampler") else { continue };
        let acc = m
            .pointer("/diagnostics/acceptance_fraction")
            .or_else(|| m.pointer("/diagnostics/mean_acceptance"))
            .and_then(Value::as_f64);
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            html_escape(name),
            html_escape(sm["name"].as_str().unwrap_or("")),
            sm["chains"],
            sm["tune"],
            sm["draws"],
            sm["divergences"],
            sm["grad_evals"],
            fmt_num(acc, 3)
        );
    }
    h.push_str("</table>\n");
    for (name, _) in &run.traces {
        let Some(is) = methods[name].pointer("/diagnostics/importance_sampling") else {
            continue;
        };
        let _ = write!(
            h,
            "<h3>Importance-sampling reliability ({}), over {} posterior draws</h3>\n<table><tr>\
             <th class=\"l\">at</th><th>ESS min</th><th>ESS median</th><th>objects with ESS &lt; 20</th>\
             <th>Var(ln L)</th><th>max k-hat</th><th>objects above the k-hat threshold</th></tr>\n",
            html_escape(name),
            is["n_draws_checked"]
        );
        for (label, key) in [("median draw", "at_median"), ("worst draw", "worst")] {
            let r = &is[key];
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                fmt_num(r["ess_min"].as_f64(), 1),
                fmt_num(r["ess_median"].as_f64(), 1),
                r["n_ess_below_20"],
                fmt_num(r["var_ln_l"].as_f64(), 2),
                fmt_num(r["k_hat_max"].as_f64(), 2),
                r["n_k_hat_above_threshold"]
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Warnings</h2>\n");
    let mut any = false;
    for (name, _) in &run.traces {
        let warnings = methods[name]["warnings"].as_array().cloned().unwrap_or_default();
        if warnings.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(h, "<h3>{}</h3>\n<ul>\n", html_escape(name));
        for w in warnings {
            let _ = writeln!(
                h,
                "<li class=\"warn\">{}</li>",
                html_escape(w.as_str().unwrap_or(""))
            );
        }
        h.push_str("</ul>\n");
    }
    if !any {
        h.push_str("<p class=\"ok\">None: every threshold was met.</p>\n");
    }
    let _ = write!(
        h,
        "<p style=\"color:#888;font-size:85%\">Made by popinf {} from the files in this directory; \
         rebuild with <code>{}</code>.</p>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        html_escape(&run.rebuild)
    );
    h
}
