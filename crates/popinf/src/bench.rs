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
