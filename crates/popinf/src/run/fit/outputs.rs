//! What a fit writes: summary.json, the draws (CSV and .npz), the sampler's
//! statistics, objects.csv with each object's population-informed posterior.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::config::FitConfig;
use crate::data::catalog::SampleCatalog;
use crate::error::{Error, Result};
use crate::inference::method::MethodSummary;
use crate::inference::sampler::NutsDrawStats;
use crate::inference::trace::Trace;
use crate::model::library::Population;
use crate::model::population::PopulationModel;

#[derive(Debug, Clone, Serialize)]
pub struct FitDataInfo {
    pub file: String,
    pub n_obj: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_samples_total: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FitSummary {
    pub data: FitDataInfo,
    pub methods: BTreeMap<String, MethodSummary>,
}

/// What a fit produced.
pub struct FitResult {
    pub summary: FitSummary,
    pub trace: Trace,
    /// NUTS per-draw statistics (None for the ensemble).
    pub nuts_stats: Option<NutsDrawStats>,
    /// Ensemble: ln posterior of each kept draw, chain-major.
    pub ensemble_ln_prob: Option<Vec<f64>>,
    /// Importance fits: the population-informed per-object summaries.
    pub objects_csv: Option<Vec<u8>>,
    /// gmm fits: each object's fitted mixture (`gmm.csv`), for auditing.
    pub gmm_csv: Option<Vec<u8>>,
}

/// Weighted quantile: the sample-midpoint CDF, interpolated linearly.
fn weighted_quantile(sorted: &[(f64, f64)], total: f64, q: f64) -> f64 {
    let mut cum = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for &(x, w) in sorted {
        let c = (cum + 0.5 * w) / total;
        cum += w;
        if c >= q {
            return match prev {
                Some((px, pc)) if c > pc => px + (x - px) * (q - pc) / (c - pc),
                _ => x,
            };
        }
        prev = Some((x, c));
    }
    sorted.last().map_or(f64::NAN, |s| s.0)
}

/// `objects.csv`: each object's posterior under the inferred population,
/// its samples re-weighted by p(mu | theta) P_det / pi, the normalised
/// weights averaged over up to 100 hyperposterior draws.
/// `ids[i]` is object i's index in the input file.
pub fn objects_csv(
    catalog: &SampleCatalog,
    ids: &[usize],
    model: &Population,
    trace: &Trace,
) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    let p = model.n_params();
    let draws: Vec<Vec<f64>> = spread_draws(trace, 100)
        .into_iter()
        .map(|d| d[..p].to_vec())
        .collect();
    let dim = catalog.dim();
    let rows: Vec<String> = (0..catalog.n_obj())
        .into_par_iter()
        .map(|i| {
            let obj = catalog.object(i);
            let s = obj.n_samples();
            let mut weight = vec![0.0; s];
            let mut ln_w = vec![0.0; s];
            for theta in &draws {
                model.ln_pdf_batch(theta, obj.values, &mut ln_w);
                for (j, lw) in ln_w.iter_mut().enumerate() {
                    *lw -= obj.ln_prior(j);
                }
                let m = ln_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let total: f64 = ln_w.iter().map(|lw| (lw - m).exp()).sum();
                for (w, lw) in weight.iter_mut().zip(&ln_w) {
                    *w += (lw - m).exp() / total;
                }
            }
            let total: f64 = weight.iter().sum();
            let ess = total * total / weight.iter().map(|w| w * w).sum::<f64>();
            let mut row = format!("{}", ids[i]);
            for k in 0..dim {
                let mut pairs: Vec<(f64, f64)> =
                    (0..s).map(|j| (obj.values[j * dim + k], weight[j])).collect();
                let mean = pairs.iter().map(|(x, w)| x * w).sum::<f64>() / total;
                let var = pairs.iter().map(|(x, w)| w * (x - mean).powi(2)).sum::<f64>() / total;
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let q = |q| weighted_quantile(&pairs, total, q);
                row.push_str(&format!(
                    ",{mean:?},{:?},{:?},{:?},{:?}",
                    var.sqrt(),
                    q(0.16),
                    q(0.5),
                    q(0.84)
                ));
            }
            row.push_str(&format!(",{ess:.1}\n"));
            row
        })
        .collect();
    let mut out = String::from("object");
    for k in 0..dim {
        let suffix = if dim == 1 { String::new() } else { format!("_{k}") };
        for col in ["mean", "sd", "q16", "q50", "q84"] {
            out.push_str(&format!(",{col}{suffix}"));
        }
    }
    out.push_str(",ess\n");
    for r in rows {
        out.push_str(&r);
    }
    Ok(out.into_bytes())
}

/// `n` draws (natural units, hyperparameters only) spread evenly over a trace.
pub fn spread_draws(trace: &Trace, n: usize) -> Vec<Vec<f64>> {
    let total = trace.n_chains * trace.n_draws;
    let p = trace.n_params();
    (0..n.min(total))
        .map(|j| trace.draws[(j * total / n) * p..][..p].to_vec())
        .collect()
}

/// `draws.csv`: `chain,draw,<params>`, what PyMC's `trace_to_dataframe` gave.
pub fn draws_csv(trace: &Trace) -> Vec<u8> {
    let mut out = String::with_capacity(trace.draws.len() * 20);
    out.push_str("chain,draw,");
    out.push_str(&trace.param_names.join(","));
    out.push('\n');
    let p = trace.n_params();
    for c in 0..trace.n_chains {
        for d in 0..trace.n_draws {
            out.push_str(&format!("{c},{d}"));
            for v in &trace.draws[(c * trace.n_draws + d) * p..][..p] {
                out.push(',');
                out.push_str(&format!("{v:?}"));
            }
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// `draws.npz`: each hyperparameter as a chains x draws array (ArviZ's
/// layout); the latent values of a hierarchical fit as one array `mu` of
/// shape chains x draws x objects.
pub fn draws_npz(trace: &Trace, n_hyper: usize) -> Result<Vec<u8>> {
    use crate::data::npy::{NpyData, NpzWriter};
    let (chains, draws, p) = (trace.n_chains, trace.n_draws, trace.n_params());
    let write = || -> std::io::Result<Vec<u8>> {
        let mut npz = NpzWriter::new();
        for k in 0..n_hyper.min(p) {
            // The trace is draw-major, parameters fastest: one column, in
            // (chain, draw) order.
            let column: Vec<f64> = trace.draws.iter().skip(k).step_by(p).copied().collect();
            npz.add(&trace.param_names[k], &[chains, draws], NpyData::F64(&column))?;
        }
        let n_latent = p.saturating_sub(n_hyper);
        if n_latent > 0 {
            let latent: Vec<f64> = trace
                .draws
                .chunks(p)
                .flat_map(|row| row[n_hyper..].iter().copied())
                .collect();
            npz.add("mu", &[chains, draws, n_latent], NpyData::F64(&latent))?;
        }
        npz.finish()
    };
    write().map_err(|e| Error::Invalid(format!("writing draws.npz: {e}")))
}

/// `stats.csv`: NUTS per-draw statistics, or the ensemble's ln posterior.
pub fn stats_csv(result: &FitResult) -> Vec<u8> {
    let t = &result.trace;
    let mut out = String::new();
    if let Some(s) = &result.nuts_stats {
        out.push_str(
            "chain,draw,diverging,tree_depth,max_depth_reached,step_size,energy,acceptance,n_steps\n",
        );
        for c in 0..t.n_chains {
            for d in 0..t.n_draws {
                let i = c * t.n_draws + d;
                out.push_str(&format!(
                    "{c},{d},{},{},{},{:?},{:?},{:?},{}\n",
                    u8::from(s.diverging[i]),
                    s.tree_depth[i],
                    u8::from(s.max_depth_reached[i]),
                    s.step_size[i],
                    s.energy[i],
                    s.acceptance[i],
                    s.n_steps[i]
                ));
            }
        }
    } else if let Some(lp) = &result.ensemble_ln_prob {
        out.push_str("chain,draw,ln_posterior\n");
        for c in 0..t.n_chains {
            for d in 0..t.n_draws {
                out.push_str(&format!("{c},{d},{:?}\n", lp[c * t.n_draws + d]));
            }
        }
    }
    out.into_bytes()
}

/// Writes every output file into `cfg.out`, each atomically.
pub fn write_outputs(cfg: &FitConfig, result: &FitResult) -> Result<Vec<PathBuf>> {
    let dir = &cfg.out;
    let n_hyper = cfg.param_names.len();
    let json = serde_json::to_string_pretty(&result.summary).expect("plain numbers serialise");
    let resolved = toml::to_string_pretty(&cfg.resolved)
        .map_err(|e| Error::Invalid(format!("cannot write the resolved run file: {e}")))?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("summary.json", json.into_bytes()),
        ("draws.csv", draws_csv(&result.trace)),
        ("draws.npz", draws_npz(&result.trace, n_hyper)?),
        ("stats.csv", stats_csv(result)),
        ("run.resolved.toml", resolved.into_bytes()),
    ];
    let mut files = files;
    if let Some(objects) = &result.objects_csv {
        files.push(("objects.csv", objects.clone()));
    }
    if let Some(gmm) = &result.gmm_csv {
        files.push(("gmm.csv", gmm.clone()));
    }
    crate::data::files::write_files(dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Under a N(0, 1) population, an object measured as x = 1.5 with
    /// sigma = 1 (posterior samples N(1.5, 1), flat interim prior) has the
    /// population-informed posterior N(0.75, sqrt(1/2)).
    #[test]
    fn objects_csv_gives_the_shrunk_posterior() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(9);
        let samples: Vec<Vec<f64>> = [1.5, -0.4]
            .iter()
            .map(|&x| {
                (0..20_000)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        x + e
                    })
                    .collect()
            })
            .collect();
        let catalog = SampleCatalog::from_objects(&samples, None).unwrap();
        // A hyperposterior concentrated at the truth.
        let trace = Trace {
            param_names: vec!["theta_mu".into(), "theta_sigma".into()],
            n_chains: 1,
            n_draws: 10,
            draws: [0.0, 1.0].repeat(10),
        };
        let csv = String::from_utf8(
            objects_csv(
                &catalog,
                &[7, 8],
                &Population::Gaussian(crate::model::gaussian::Gaussian),
                &trace,
            )
            .unwrap(),
        )
        .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "object,mean,sd,q16,q50,q84,ess");
        let sd = 0.5f64.sqrt();
        for (line, (id, x)) in lines[1..].iter().zip([(7, 1.5), (8, -0.4)]) {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
            assert_eq!(v[0], f64::from(id));
            let mean = x / 2.0;
            // Monte Carlo error ~ sd / sqrt(ESS ~ 10^4) ~ 0.01.
            assert!((v[1] - mean).abs() < 0.04, "{line}");
            assert!((v[2] - sd).abs() < 0.04, "{line}");
            assert!((v[3] - (mean - sd)).abs() < 0.05, "{line}");
            assert!((v[4] - mean).abs() < 0.05, "{line}");
            assert!((v[5] - (mean + sd)).abs() < 0.05, "{line}");
        }
    }

    #[test]
    fn weighted_quantiles_of_equal_weights_interpolate() {
        let pairs: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), 1.0)).collect();
        // Midpoint CDF: 0.1, 0.3, 0.5, 0.7, 0.9 at 0..4.
        assert!((weighted_quantile(&pairs, 5.0, 0.5) - 2.0).abs() < 1e-12);
        assert!((weighted_quantile(&pairs, 5.0, 0.2) - 0.5).abs() < 1e-12);
    }
}
