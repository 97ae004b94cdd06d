//! `popinf report`: a run's figures and HTML report redrawn from its saved
//! outputs alone (`summary.json`, the draws, the resolved run file, and for
//! the demo `data.npz`), so the report shows exactly what `popinf demo` or
//! `popinf fit` drew; and one report over several fits of one model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::inference::method::METHOD_ORDER;
use crate::invalid;
use crate::model::library::Population;
use crate::model::population::PopulationModel;
use crate::model::prior::Hyperprior;
use crate::report::html::{DemoData, ReportFiles, RunOutputs, write_report};
use crate::run::fit::{FitConfig, FitResult};

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: not valid JSON: {e}", path.display())))
}

fn read_data_npz(path: &Path) -> Result<DemoData> {
    let mut vectors = crate::data::input::read_npz_vectors(path, &["mu_true", "x", "sigma"])?.into_iter();
    let (mu_true, x, sigma) = (
        vectors.next().expect("three arrays"),
        vectors.next().expect("three arrays"),
        vectors.next().expect("three arrays"),
    );
    let (shape, values) = crate::data::input::read_npz_grid(path, "samples")?;
    let [_, n_samp] = shape[..] else {
        return invalid!(
            "{}: array 'samples' has shape {shape:?}; it must be 2-D",
            path.display()
        );
    };
    let rows: Vec<&[f64]> = values.chunks(n_samp.max(1)).collect();
    let medians = rows
        .iter()
        .map(|r| crate::math::stats::median_in_place(&mut r.to_vec()))
        .collect();
    let first_samples = rows.iter().take(5).map(|r| r.to_vec()).collect();
    Ok(DemoData {
        mu_true,
        x,
        sigma,
        first_samples,
        medians,
    })
}

/// What [`finish_fit`] wrote, and what went wrong without failing the fit.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub written: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// The end of a fit (here, not in `run::fit`, which this module reads
/// from): its outputs, then the report (a figure that cannot be
/// drawn is a warning, not a failed fit: the results are written), then
/// the checkpoint removed (the results are complete: it has done its job).
pub fn finish_fit(cfg: &FitConfig, result: &FitResult) -> Result<Finished> {
    let mut done = Finished {
        written: crate::run::fit::write_outputs(cfg, result)?,
        ..Finished::default()
    };
    match build_report(&cfg.out) {
        Ok(report) => done.written.push(report.report),
        Err(e) => done.warnings.push(format!("the report could not be drawn: {e}")),
    }
    for name in [
        crate::run::fit::CHECKPOINT_NAME,
        crate::run::fit::CHECKPOINT_BIN_NAME,
        crate::run::fit::CHECKPOINT_NUTS_NAME,
    ] {
        let _ = std::fs::remove_file(cfg.out.join(name));
    }
    Ok(done)
}

/// Reads a `popinf demo` or `popinf fit` output directory.
pub fn load_outputs(dir: &Path) -> Result<RunOutputs> {
    let summary_path = dir.join("summary.json");
    if !summary_path.exists() {
        return invalid!(
            "{}: no summary.json here; give the output directory of `popinf demo` or `popinf fit`",
            dir.display()
        );
    }
    let summary = read_json(&summary_path)?;
    let Some(methods) = summary.get("methods").and_then(Value::as_object) else {
        return invalid!("{}: has no \"methods\" object", summary_path.display());
    };
    let is_demo = summary.get("truth").is_some();
    let mut names: Vec<String> = METHOD_ORDER
        .iter()
        .filter(|m| methods.contains_key(**m))
        .map(|m| m.to_string())
        .collect();
    names.extend(
        methods
            .keys()
            .filter(|k| !METHOD_ORDER.contains(&k.as_str()))
            .cloned(),
    );
    let Some(first) = names.first() else {
        return invalid!("{}: \"methods\" is empty", summary_path.display());
    };
    let (model, priors) = if is_demo {
        (
            Population::Gaussian(crate::model::gaussian::Gaussian),
            crate::model::prior::NOTEBOOK_PRIORS.to_vec(),
        )
    } else {
        fit_model(dir)?
    };
    // The model's parameter order (summary.json's maps are sorted by
    // name), with a rate last when the counts form has one.
    let summarised: Vec<String> = methods[first]
        .get("params")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut hyper = model.param_names();
    if summarised.iter().any(|n| n == "rate") {
        hyper.push("rate".into());
    }
    if hyper.len() != summarised.len() || hyper.iter().any(|h| !summarised.contains(h)) {
        return invalid!(
            "{}: parameters {} do not match the {:?} model's {}",
            summary_path.display(),
            summarised.join(", "),
            model,
            hyper.join(", ")
        );
    }
    let hyper_refs: Vec<&str> = hyper.iter().map(String::as_str).collect();
    let mut traces = Vec::new();
    for name in &names {
        let path = if is_demo {
            dir.join(format!("draws_{name}.csv"))
        } else {
            dir.join("draws.csv")
        };
        if !path.exists() {
            return invalid!(
                "{}: missing; the report needs the draws of method '{name}' (rerun the demo or fit)",
                path.display()
            );
        }
        let trace = crate::inference::trace::read_draws_csv(&path)?.select(&hyper_refs)?;
        traces.push((name.clone(), trace));
    }
    let mut truth: BTreeMap<String, f64> = summary
        .get("truth")
        .and_then(Value::as_object)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let data = if is_demo {
        Some(read_data_npz(&dir.join("data.npz"))?)
    } else {
        None
    };
    // A simulated catalogue's truth.json, beside the run or one level
    // up (`popinf simulate` writes it there), names the same parameters.
    if truth.is_empty() {
        for candidate in [dir.join("truth.json"), dir.join("..").join("truth.json")] {
            if candidate.is_file() {
                let v = read_json(&candidate)?;
                if let Some(t) = v.as_object() {
                    truth = t
                        .iter()
                        .filter(|(k, _)| hyper.contains(k))
                        .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                        .collect();
                }
                break;
            }
        }
    }
    let n_obj = summary
        .pointer("/data/n_obj")
        .and_then(Value::as_u64)
        .map(|n| n as usize);
    Ok(RunOutputs {
        dir: dir.to_path_buf(),
        is_demo,
        summary,
        traces,
        hyper,
        truth,
        data,
        model,
        priors,
        n_obj,
        rebuild: format!("popinf report {}", dir.display()),
    })
}

/// The population model and priors of a fit, from its `run.resolved.toml`.
fn fit_model(dir: &Path) -> Result<(Population, Vec<Hyperprior>)> {
    let path = dir.join("run.resolved.toml");
    let cfg = crate::run::fit::RunFile::load(&path)?
        .resolve()
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    Ok((cfg.model, cfg.priors))
}

/// Draws every figure of the run in `dir` and writes `report.html` there.
pub fn build_report(dir: &Path) -> Result<ReportFiles> {
    let started = Instant::now();
    let run = load_outputs(dir)?;
    write_report(&run, dir, started)
}

/// One report over several fits of the same model (e.g. `popinf fit` with
/// the importance-sampled and the naive likelihood on one catalogue): the
/// table side by side, every figure overlaid, written into `out`.
pub fn build_comparison(dirs: &[PathBuf], out: &Path) -> Result<ReportFiles> {
    let started = Instant::now();
    let runs: Vec<RunOutputs> = dirs.iter().map(|d| load_outputs(d)).collect::<Result<_>>()?;
    let Some(first) = runs.first() else {
        return invalid!("report: no run directories given");
    };
    let mut methods = serde_json::Map::new();
    let mut traces = Vec::new();
    for (run, dir) in runs.iter().zip(dirs) {
        if run.hyper != first.hyper || run.model != first.model {
            return invalid!(
                "report: {} fits a different model ({}: {}) from {} ({}: {}); compare fits of one model",
                dir.display(),
                run.model.name(),
                run.hyper.join(", "),
                dirs[0].display(),
                first.model.name(),
                first.hyper.join(", ")
            );
        }
        for (name, trace) in &run.traces {
            let mut label = name.clone();
            if methods.contains_key(&label) {
                label = format!(
                    "{name} ({})",
                    dir.file_name()
                        .map_or("run".into(), |f| f.to_string_lossy().to_string())
                );
            }
            methods.insert(label.clone(), run.summary["methods"][name].clone());
            traces.push((label, trace.clone()));
        }
    }
    let mut summary = first.summary.clone();
    summary["methods"] = Value::Object(methods);
    let merged = RunOutputs {
        dir: out.to_path_buf(),
        is_demo: false,
        summary,
        traces,
        hyper: first.hyper.clone(),
        truth: runs
            .iter()
            .map(|r| r.truth.clone())
            .find(|t| !t.is_empty())
            .unwrap_or_default(),
        data: None,
        model: first.model.clone(),
        priors: first.priors.clone(),
        n_obj: first.n_obj,
        rebuild: format!(
            "popinf report {} --out {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            out.display()
        ),
    };
    write_report(&merged, out, started)
}
