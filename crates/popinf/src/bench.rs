//! Timing of the importance-sampled likelihood (`popinf bench likelihood`).

use std::time::Instant;

use serde::Serialize;

use crate::catalog::SampleCatalog;
use crate::error::Result;
use crate::invalid;
use crate::likelihood::{HyperLikelihood, ImportanceLikelihood};
use crate::population::Gaussian;
use crate::simulate::{ToySettings, simulate_gaussian_toy};

#[derive(Debug, Clone, Serialize)]
pub struct LikelihoodBench {
    pub n_obj: usize,
    pub n_samp: usize,
    pub threads: usize,
    pub ms_value: f64,
    pub ms_value_grad: f64,
    pub ns_per_element_value: f64,
    pub ns_per_element_value_grad: f64,
    pub repetitions: usize,
}

/// Median wall time of `f` in ms over `reps` runs after `warmup` runs.
fn median_ms(warmup: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    crate::stats::median_in_place(&mut times)
}

/// Times ln L and ln L + gradient on the notebook's toy at the given size,
/// on a pool of `threads` threads.
pub fn bench_likelihood(n_obj: usize, n_samp: usize, threads: usize, reps: usize) -> Result<LikelihoodBench> {
    if threads == 0 {
        return invalid!("threads must be at least 1, got 0");
    }
    if reps == 0 {
        return invalid!("repetitions must be at least 1, got 0");
    }
    let toy = simulate_gaussian_toy(&ToySettings {
        n_obj,
        n_samp,
        ..ToySettings::default()
    })?;
    // A flat interim prior written out as a real column (ln 1/20, as for
    // U(-10, 10)): an all-zero vector from calloc would map every page to
    // the kernel's shared zero page and make its reads unrealistically cheap.
    let cat = &toy.catalog;
    let catalog = SampleCatalog::new(
        1,
        cat.values().to_vec(),
        vec![-(20f64.ln()); cat.total_samples()],
        cat.offsets().to_vec(),
    )?;
    let like = ImportanceLikelihood::new(&catalog, Gaussian)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::Error::Invalid(format!("could not start {threads} threads: {e}")))?;
    let theta = [0.05, 0.97];
    let (ms_value, ms_value_grad) = pool.install(|| {
        let mut sink = 0.0;
        let v = median_ms(3, reps, || sink += like.ln_likelihood(&theta));
        let mut g = [0.0; 2];
        let vg = median_ms(3, reps, || sink += like.ln_likelihood_grad(&theta, &mut g));
        std::hint::black_box(sink);
        (v, vg)
    });
    let elements = (n_obj * n_samp) as f64;
    Ok(LikelihoodBench {
        n_obj,
        n_samp,
        threads,
        ms_value,
        ms_value_grad,
        ns_per_element_value: ms_value * 1e6 / elements,
        ns_per_element_value_grad: ms_value_grad * 1e6 / elements,
        repetitions: reps,
    })
}

/// Timing of NUTS on the notebook's full hierarchical model.
#[derive(Debug, Clone, Serialize)]
pub struct HierarchicalBench {
    pub n_obj: usize,
    /// Parameters sampled: theta_mu, theta_sigma and every latent z_i.
    pub dim: usize,
    pub chains: usize,
    pub iterations_per_chain: u64,
    pub threads: usize,
    /// Median wall time of the sampling run over the repetitions.
    pub wall_s: f64,
    pub grad_evals: u64,
    /// Smallest bulk-ESS of the two hyperparameters, in the median run.
    pub min_ess_bulk: f64,
    pub ess_bulk_per_s: f64,
    pub divergences: usize,
    pub repetitions: usize,
}

/// Runs NUTS (4 chains x 1000 tuning + 1000 draws by default) on the
/// non-centred latent model of the toy with `n_obj` objects, `reps` times.
pub fn bench_hierarchical(n_obj: usize, threads: usize, reps: usize) -> Result<HierarchicalBench> {
    use crate::demo::NOTEBOOK_PRIORS;
    use crate::latent::{LatentGaussianModel, Parametrisation};
    use crate::sampler::{NutsSettings, Silent, sample_nuts};

    if threads == 0 || reps == 0 {
        return invalid!("threads and repetitions must be at least 1");
    }
    let toy = simulate_gaussian_toy(&ToySettings {
        n_obj,
        n_samp: 1,
        ..ToySettings::default()
    })?;
    let model = LatentGaussianModel::new(
        &toy.measurements,
        NOTEBOOK_PRIORS[0],
        NOTEBOOK_PRIORS[1],
        Parametrisation::NonCentred,
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::Error::Invalid(format!("could not start {threads} threads: {e}")))?;
    let settings = NutsSettings::default();
    let mut runs = Vec::with_capacity(reps);
    for rep in 0..reps {
        let s = NutsSettings {
            seed: rep as u64,
            ..settings.clone()
        };
        let t = Instant::now();
        let run = pool.install(|| sample_nuts(&model, &s, &Silent))?;
        let wall = t.elapsed().as_secs_f64();
        let min_ess = run
            .trace
            .summaries_of(&["theta_mu", "theta_sigma"])?
            .iter()
            .map(|p| p.convergence.map_or(f64::NAN, |c| c.ess_bulk))
            .fold(f64::INFINITY, f64::min);
        runs.push((wall, run.grad_evals, min_ess, run.stats.divergences()));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall_s, grad_evals, min_ess_bulk, divergences) = runs[runs.len() / 2];
    Ok(HierarchicalBench {
        n_obj,
        dim: n_obj + 2,
        chains: settings.chains,
        iterations_per_chain: settings.tune + settings.draws,
        threads,
        wall_s,
        grad_evals,
        min_ess_bulk,
        ess_bulk_per_s: min_ess_bulk / wall_s,
        divergences,
        repetitions: reps,
    })
}
