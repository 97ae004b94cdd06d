//! Timing of the importance-sampled likelihood (`popinf bench likelihood`).

use std::time::Instant;

use serde::Serialize;

use crate::data::simulate::{ToySettings, simulate_gaussian_toy};
use crate::error::Result;
use crate::invalid;
use crate::likelihood::fused::SampleStorage;
use crate::likelihood::importance::{HyperLikelihood, ImportanceLikelihood};
use crate::model::gaussian::Gaussian;
use crate::model::library::Population;

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
    /// The instruction set the kernels ran with (avx512, avx2, portable).
    pub isa: &'static str,
    /// "fused" (single pass: the Gaussian and the Schechter family) or
    /// "general" (chunked).
    pub kernel: &'static str,
    /// "f64" or "f32" sample storage.
    pub storage: &'static str,
    /// The population model timed (gaussian, schechter, double_schechter,
    /// mixture).
    pub model: &'static str,
    /// For a model other than the Gaussian: its value+gradient time over
    /// the Gaussian fused kernel's on the same catalog shape, timed in the
    /// same repetitions (median of per-repetition ratios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_grad_over_gaussian: Option<f64>,
    /// The model's normalisation ln Z(theta) with its gradient, computed
    /// once per evaluation whatever the catalog's size (0 for a normalised
    /// model such as the Gaussian): not in the kernel times above.
    pub ms_normalisation: f64,
    /// The bare vectorised exp (the kernels' exp over an L1-resident
    /// buffer, as many elements as samples, same threads): ns per element.
    pub exp_ns_per_element: f64,
    /// Reading the stored samples once (a plain sum, same threads): ns per
    /// element, and the bandwidth that is.
    pub read_ns_per_element: f64,
    pub read_gb_per_s: f64,
    /// Kernel time over each reference (1 = at that hardware limit).
    pub value_over_exp: f64,
    pub value_grad_over_exp: f64,
    pub value_over_read: f64,
    pub value_grad_over_read: f64,
    /// `--likelihood gmm`: the Gaussian-mixture likelihood of the same
    /// catalog, timed in the same repetitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gmm: Option<GmmBench>,
}

/// The gmm likelihood beside importance sampling.
#[derive(Debug, Clone, Serialize)]
pub struct GmmBench {
    /// "closed form" or "quadrature".
    pub form: &'static str,
    /// Mixture components over all objects, and quadrature nodes (0 for
    /// the closed form): the cost is O(components x nodes), not O(samples).
    pub components: usize,
    pub nodes: usize,
    pub ms_value_grad: f64,
    /// Its value+gradient time over importance sampling's (median of
    /// per-repetition ratios).
    pub value_grad_over_importance: f64,
    /// Fitting every object's mixture, once at load.
    pub ms_fit_mixtures: f64,
}

/// What to time: the catalog size, the pool and the kernel options.
#[derive(Debug, Clone)]
pub struct LikelihoodBenchSettings {
    pub n_obj: usize,
    pub n_samp: usize,
    pub threads: usize,
    pub reps: usize,
    pub storage: SampleStorage,
    /// Use the general chunked kernel even for the Gaussian (the
    /// straightforward implementation, for comparison).
    pub general_kernel: bool,
    pub model: BenchModel,
    /// Also time the gmm likelihood on the same catalog.
    pub gmm: bool,
}

/// The population models `bench likelihood --model` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BenchModel {
    #[default]
    Gaussian,
    Schechter,
    DoubleSchechter,
    Mixture,
}

impl BenchModel {
    pub const ALL: [BenchModel; 4] = [
        BenchModel::Gaussian,
        BenchModel::Schechter,
        BenchModel::DoubleSchechter,
        BenchModel::Mixture,
    ];

    /// The run file's name of the model.
    pub fn name(self) -> &'static str {
        match self {
            BenchModel::Gaussian => "gaussian",
            BenchModel::Schechter => "schechter",
            BenchModel::DoubleSchechter => "double_schechter",
            BenchModel::Mixture => "mixture",
        }
    }

    pub fn from_name(name: &str) -> Option<BenchModel> {
        BenchModel::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The model, a theta near the catalog's population, and the shift
    /// that moves the toy's values (mu ~ N(0, 1) plus noise) to where the
    /// model lives (log10 M ~ 10.5 for the Schechter family, whose support
    /// [3, 18] holds every sample).
    fn setup(self) -> (Population, Vec<f64>, f64) {
        use crate::model::{mixture::Mixture, schechter};
        match self {
            BenchModel::Gaussian => (Population::Gaussian(Gaussian), vec![0.05, 0.97], 0.0),
            BenchModel::Schechter => (
                Population::Schechter(schechter::Schechter {
                    lo: 3.0,
                    hi: 18.0,
                    amplitude: false,
                }),
                vec![10.6, -1.3],
                10.5,
            ),
            BenchModel::DoubleSchechter => (
                Population::DoubleSchechter(schechter::DoubleSchechter { lo: 3.0, hi: 18.0 }),
                vec![10.8, -0.3, -1.5, -2.4, -2.9],
                10.5,
            ),
            BenchModel::Mixture => (
                Population::Mixture(Mixture { k: 2 }),
                vec![-0.5, 0.5, 0.8, 0.8, 0.5],
                0.0,
            ),
        }
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    if threads == 0 {
        return invalid!("threads must be at least 1, got 0");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| crate::Error::Invalid(format!("could not start {threads} threads: {e}")))
}

/// Elements of the L1-resident buffer the exp reference cycles over
/// (32 KB: fits any L1 data cache it runs on).
const EXP_BUFFER: usize = 4096;

/// Wall time of one call in ms.
fn time_ms(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e3
}

/// Times ln L and ln L + gradient on the notebook's toy at the given size,
/// on a pool of `threads` threads, with the two hardware references
/// measured in the same run: each repetition times the value, the value
/// and gradient, the bare exp and the memory read back to back, so all
/// four see the same machine (this one is shared and its speed drifts);
/// medians are reported, and the ratios are medians of per-repetition
/// ratios.
pub fn bench_likelihood(s: &LikelihoodBenchSettings) -> Result<LikelihoodBench> {
    use rayon::prelude::*;
    if s.reps == 0 {
        return invalid!("repetitions must be at least 1, got 0");
    }
    let pool = pool(s.threads)?;
    let toy = simulate_gaussian_toy(&ToySettings {
        n_obj: s.n_obj,
        n_samp: s.n_samp,
        ..ToySettings::default()
    })?;
    // The toy's interim prior is flat: the kernels read no ln pi column.
    let (model, theta, shift) = s.model.setup();
    let shifted;
    let catalog = if shift == 0.0 {
        &toy.catalog
    } else {
        let c = &toy.catalog;
        let values: Vec<f64> = c.values().iter().map(|v| v + shift).collect();
        shifted = crate::data::catalog::SampleCatalog::with_flat_prior(1, values, 0.0, c.offsets().to_vec())?;
        &shifted
    };
    // The kernel alone: ln Z is timed apart (once per evaluation, not per sample).
    let mut like = ImportanceLikelihood::new(catalog, model.clone())?
        .with_storage(s.storage)?
        .without_normalisation();
    // The Gaussian fused kernel on the toy itself, timed beside another model.
    let gaussian = (s.model != BenchModel::Gaussian)
        .then(|| ImportanceLikelihood::new(&toy.catalog, Gaussian))
        .transpose()?;
    if s.general_kernel {
        if s.storage == SampleStorage::F32 {
            return invalid!("the general kernel reads float64 samples only; drop --f32 or --general");
        }
        like = like.without_fused_kernel();
    }
    // The gmm likelihood of the same catalog: mixtures fitted once, then
    // the closed form or the importance kernel over fixed nodes.
    let t_fit = Instant::now();
    let mixtures = s
        .gmm
        .then(|| {
            pool.install(|| {
                crate::likelihood::gmm::ObjectMixtures::fit(
                    catalog,
                    &crate::math::gmm::GmmSettings::default(),
                )
            })
        })
        .transpose()?;
    let ms_fit_mixtures = t_fit.elapsed().as_secs_f64() * 1e3;
    let plan = mixtures
        .as_ref()
        .map(|m| {
            crate::likelihood::gmm::GmmPlan::new(
                m,
                &model,
                &crate::model::selection::Selection::None,
                crate::likelihood::gmm::DEFAULT_NODES,
                true,
            )
        })
        .transpose()?;
    let node_like = match &plan {
        Some(crate::likelihood::gmm::GmmPlan::Nodes { catalog, .. }) => Some(
            ImportanceLikelihood::new(catalog, model.clone())?
                .with_storage(s.storage)?
                .without_normalisation(),
        ),
        _ => None,
    };
    let gmm_like: Option<&dyn HyperLikelihood> = match (&plan, &node_like) {
        (Some(crate::likelihood::gmm::GmmPlan::ClosedForm(c)), _) => Some(c),
        (Some(crate::likelihood::gmm::GmmPlan::Adaptive(a)), _) => Some(a),
        (_, Some(l)) => Some(l),
        _ => None,
    };
    let mut g_gmm = vec![0.0; theta.len()];
    let elements = catalog.total_samples();
    // The memory reference reads exactly what the kernel streams.
    let stored = like.stored_samples();
    let bytes = stored.bytes();
    let read_chunk = elements.div_ceil(s.threads * 16).max(1);
    // Arguments spread over [-30, 0], as scaled log-weights are.
    let exp_buf: Vec<f64> = (0..EXP_BUFFER)
        .map(|i| -30.0 * (i as f64 + 0.5) / EXP_BUFFER as f64)
        .collect();
    let passes = elements.div_ceil(EXP_BUFFER).max(1);
    let exp_scale = elements as f64 / (passes * EXP_BUFFER) as f64;
    let mut sink = 0.0;
    let mut g = vec![0.0; theta.len()];
    let (theta_g, mut g_g) = ([0.05, 0.97], [0.0; 2]);
    let mut g_norm = vec![0.0; theta.len()];
    let mut rows: Vec<[f64; 7]> = Vec::with_capacity(s.reps);
    pool.install(|| {
        let threads = s.threads;
        // Calls per timing: enough for ~2 ms, so that a small catalog is
        // timed back to back as a sampler calls it (threads awake), not
        // dominated by waking the pool once per call.
        let first = time_ms(&mut || sink += like.ln_likelihood_grad(&theta, &mut g));
        let batch = ((2.0 / first.max(1e-6)).ceil() as usize).clamp(1, 1000);
        let time_ms = |f: &mut dyn FnMut()| {
            time_ms(&mut || {
                for _ in 0..batch {
                    f()
                }
            }) / batch as f64
        };
        let mut times = [0.0; 7];
        for rep in 0..s.reps + 3 {
            times[0] = time_ms(&mut || sink += like.ln_likelihood(&theta));
            times[1] = time_ms(&mut || sink += like.ln_likelihood_grad(&theta, &mut g));
            times[2] = exp_scale
                * time_ms(&mut || {
                    sink += (0..threads)
                        .into_par_iter()
                        .map(|t| {
                            let mine = passes / threads + usize::from(t < passes % threads);
                            (0..mine)
                                .map(|_| {
                                    crate::likelihood::fused::exp_reference_sum(std::hint::black_box(
                                        &exp_buf,
                                    ))
                                })
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                });
            times[3] = time_ms(&mut || sink += stored.read_all(read_chunk));
            if let Some(gaussian) = &gaussian {
                times[4] = time_ms(&mut || sink += gaussian.ln_likelihood_grad(&theta_g, &mut g_g));
            }
            times[5] = time_ms(&mut || sink += model.ln_norm_grad(&theta, &mut g_norm));
            if let Some(gmm) = &gmm_like {
                times[6] = time_ms(&mut || sink += gmm.ln_likelihood_grad(&theta, &mut g_gmm));
            }
            // The first three rounds warm caches, pages and threads.
            if rep >= 3 {
                rows.push(times);
            }
        }
    });
    std::hint::black_box(sink);
    let median = |f: &dyn Fn(&[f64; 7]) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        crate::math::stats::median_in_place(&mut v)
    };
    let (ms_value, ms_value_grad) = (median(&|r| r[0]), median(&|r| r[1]));
    let (ms_exp, ms_read) = (median(&|r| r[2]), median(&|r| r[3]));
    let per = |ms: f64| ms * 1e6 / elements as f64;
    Ok(LikelihoodBench {
        n_obj: s.n_obj,
        n_samp: s.n_samp,
        threads: s.threads,
        ms_value,
        ms_value_grad,
        ns_per_element_value: per(ms_value),
        ns_per_element_value_grad: per(ms_value_grad),
        repetitions: s.reps,
        isa: like.isa().name(),
        kernel: if like.storage().is_some() {
            "fused"
        } else {
            "general"
        },
        storage: like.storage().unwrap_or_default().name(),
        model: s.model.name(),
        value_grad_over_gaussian: gaussian.is_some().then(|| median(&|r| r[1] / r[4])),
        ms_normalisation: median(&|r| r[5]),
        exp_ns_per_element: per(ms_exp),
        read_ns_per_element: per(ms_read),
        read_gb_per_s: bytes as f64 / (ms_read * 1e6),
        value_over_exp: median(&|r| r[0] / r[2]),
        value_grad_over_exp: median(&|r| r[1] / r[2]),
        value_over_read: median(&|r| r[0] / r[3]),
        value_grad_over_read: median(&|r| r[1] / r[3]),
        gmm: plan.as_ref().zip(mixtures.as_ref()).map(|(plan, m)| GmmBench {
            form: plan.form(),
            components: m.fits.iter().map(|f| f.mixture.n_components()).sum(),
            nodes: match plan {
                crate::likelihood::gmm::GmmPlan::Nodes { catalog, .. } => catalog.total_samples(),
                crate::likelihood::gmm::GmmPlan::ClosedForm(_)
                | crate::likelihood::gmm::GmmPlan::Adaptive(_) => 0,
            },
            ms_value_grad: median(&|r| r[6]),
            value_grad_over_importance: median(&|r| r[6] / r[1]),
            ms_fit_mixtures,
        }),
    })
}

/// `--scaling`: 1e3, 1e4, 1e5 and 1e6 objects on 1 thread and on
/// `main.threads`, each row passed to `on_row` as it finishes.
#[derive(Debug, Clone, Serialize)]
pub struct LikelihoodScaling {
    pub rows: Vec<LikelihoodBench>,
    /// Log-log slope of value+gradient time against size, per thread count
    /// (`threads_<T>`).
    pub log_log_slope_value_grad: std::collections::BTreeMap<String, f64>,
}

pub fn likelihood_scaling(
    main: &LikelihoodBenchSettings,
    mut on_row: impl FnMut(&LikelihoodBench),
) -> Result<LikelihoodScaling> {
    let mut thread_counts = vec![1, main.threads];
    thread_counts.dedup();
    let mut rows = Vec::new();
    let mut slopes = std::collections::BTreeMap::new();
    for &threads in &thread_counts {
        let mut points = Vec::new();
        for n_obj in [1_000, 10_000, 100_000, 1_000_000] {
            // Fewer repetitions where one evaluation takes long.
            let reps = if n_obj >= 1_000_000 {
                main.reps.div_ceil(6)
            } else {
                main.reps
            };
            let b = bench_likelihood(&LikelihoodBenchSettings {
                n_obj,
                threads,
                reps: reps.max(3),
                ..main.clone()
            })?;
            on_row(&b);
            points.push((n_obj as f64, b.ms_value_grad));
            rows.push(b);
        }
        slopes.insert(format!("threads_{threads}"), log_log_slope(&points));
    }
    Ok(LikelihoodScaling {
        rows,
        log_log_slope_value_grad: slopes,
    })
}

/// Least-squares slope of ln y on ln x.
pub fn log_log_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x.ln() / n, b + y.ln() / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        let dx = x.ln() - mx;
        (a + dx * (y.ln() - my), b + dx * dx)
    });
    sxy / sxx
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
    use crate::inference::latent::{LatentGaussianModel, Parametrisation};
    use crate::inference::sampler::{NutsSettings, Silent, sample_nuts};
    use crate::model::prior::NOTEBOOK_PRIORS;

    if reps == 0 {
        return invalid!("repetitions must be at least 1, got 0");
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
    let pool = pool(threads)?;
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

/// One end-to-end importance-sampled fit (`popinf bench fit`).
#[derive(Debug, Clone, Serialize)]
pub struct FitBench {
    pub n_obj: usize,
    pub n_samp: usize,
    pub threads: usize,
    pub storage: &'static str,
    pub chains: usize,
    pub tune: u64,
    pub draws: u64,
    /// Runs needed (each doubling the draws) to reach the targets.
    pub attempts: usize,
    /// Simulating the catalog (not part of the fit).
    pub simulate_s: f64,
    /// Building the likelihood, sampling and the convergence summaries.
    pub fit_s: f64,
    pub likelihood_evals: u64,
    pub ms_per_eval: f64,
    pub min_ess_bulk: f64,
    pub max_r_hat: f64,
    pub ess_bulk_per_s: f64,
    pub divergences: usize,
    /// Whether min bulk-ESS >= 400 and max R-hat < 1.01.
    pub reached: bool,
    /// Peak resident memory of the process so far (Linux), MB.
    pub peak_rss_mb: Option<f64>,
    pub theta_mu: f64,
    pub theta_sigma: f64,
}

/// The settings `popinf bench fit` starts from: 2 chains x (150 tuning +
/// 500 kept) NUTS iterations. On this 2-D, nearly Gaussian hyperposterior
/// NUTS takes about 3 gradients per iteration and a draw is worth about one
/// independent one, so 1000 draws give bulk-ESS 800-1300, twice the
/// target. R-hat is what decides the length: its noise falls with the draws
/// per (split) chain, not with the number of chains, and warm-up is paid
/// per chain, so two long chains are the cheap way below 1.01. Measured at
/// 1e4 objects over six seeds each: 4 x (300 + 250) missed R-hat < 1.01 in
/// two of five (1.011, 1.014; a rerun doubles the cost), 2 x (150 + 500)
/// reached it in all six (max R-hat 1.0048) with 3800-4000 gradients.
pub const FIT_BENCH_NUTS: (usize, u64, u64) = (2, 150, 500);

/// What `popinf bench fit` runs.
#[derive(Debug, Clone, Copy)]
pub struct FitBenchSettings {
    pub n_obj: usize,
    pub n_samp: usize,
    pub threads: usize,
    pub storage: SampleStorage,
    pub seed: u64,
    /// NUTS chains, tuning and kept iterations per chain.
    pub nuts: (usize, u64, u64),
}

/// Bulk-ESS and R-hat targets of `popinf bench fit`.
pub const FIT_BENCH_MIN_ESS: f64 = 400.0;
pub const FIT_BENCH_MAX_R_HAT: f64 = 1.01;

/// Peak resident set size of this process in MB (VmHWM), where the OS
/// reports it.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Simulates the notebook's toy with `n_obj` objects x `n_samp` samples
/// and fits it with the importance-sampled likelihood and NUTS until every
/// hyperparameter has bulk-ESS >= 400 and R-hat < 1.01 (doubling the kept
/// draws if a run falls short, at most three times).
///
/// The chains start at the moment estimate (mean of the per-object sample
/// means; their variance less the mean within-object variance) with a
/// jitter of 3/sqrt(N) in unconstrained units, a few posterior widths.
pub fn bench_fit(s: &FitBenchSettings) -> Result<FitBench> {
    let FitBenchSettings {
        n_obj,
        n_samp,
        threads,
        storage,
        seed,
        nuts: (chains, tune, draws),
    } = *s;
    use crate::inference::posterior::Hyperposterior;
    use crate::inference::sampler::{NutsSettings, Silent, sample_nuts};
    use crate::model::prior::NOTEBOOK_PRIORS;

    let pool = pool(threads)?;
    pool.install(|| {
        let t = Instant::now();
        let toy = simulate_gaussian_toy(&ToySettings {
            n_obj,
            n_samp,
            seed,
            ..ToySettings::default()
        })?;
        let simulate_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let cat = &toy.catalog;
        let like = ImportanceLikelihood::new(cat, Gaussian)?
            .with_bias_correction(true)
            .with_storage(storage)?;
        let (mut means, mut within) = (Vec::with_capacity(n_obj), 0.0);
        for i in 0..n_obj {
            let (m, sd) = crate::math::stats::mean_sd(cat.object(i).values);
            means.push(m);
            within += if sd.is_finite() { sd * sd } else { 0.0 } / n_obj as f64;
        }
        let (mu0, sd_means) = crate::math::stats::mean_sd(&means);
        let sigma0 = (sd_means * sd_means - within)
            .max(0.01 * sd_means * sd_means)
            .sqrt();
        let post = Hyperposterior::new(like, NOTEBOOK_PRIORS.to_vec())?
            .with_initial_point(&[mu0, sigma0.clamp(1e-3, 9.0)])?;
        let mut draws = draws;
        let mut attempts = 0;
        let mut evals = 0;
        loop {
            attempts += 1;
            let settings = NutsSettings {
                chains,
                tune,
                draws,
                seed,
                init_jitter: 3.0 / (n_obj as f64).sqrt(),
                ..NutsSettings::default()
            };
            let run = sample_nuts(&post, &settings, &Silent)?;
            evals += run.grad_evals;
            let summaries = run.trace.summaries_of(&["theta_mu", "theta_sigma"])?;
            let conv: Vec<_> = summaries.iter().filter_map(|p| p.convergence).collect();
            let min_ess = conv.iter().map(|c| c.ess_bulk).fold(f64::INFINITY, f64::min);
            let max_r_hat = conv.iter().map(|c| c.r_hat).fold(0.0, f64::max);
            let reached = conv.len() == 2 && min_ess >= FIT_BENCH_MIN_ESS && max_r_hat < FIT_BENCH_MAX_R_HAT;
            if !reached && attempts < 4 {
                eprintln!(
                    "bench fit: {n_obj} objects, {chains} x ({tune} + {draws}): min bulk-ESS {min_ess:.0}, \
                     max R-hat {max_r_hat:.4}; doubling the draws"
                );
            }
            if reached || attempts == 4 {
                let fit_s = t.elapsed().as_secs_f64();
                return Ok(FitBench {
                    n_obj,
                    n_samp,
                    threads,
                    storage: storage.name(),
                    chains,
                    tune,
                    draws,
                    attempts,
                    simulate_s,
                    fit_s,
                    likelihood_evals: evals,
                    ms_per_eval: fit_s * 1e3 / evals as f64,
                    min_ess_bulk: min_ess,
                    max_r_hat,
                    ess_bulk_per_s: min_ess / fit_s,
                    divergences: run.stats.divergences(),
                    reached,
                    peak_rss_mb: peak_rss_mb(),
                    theta_mu: summaries[0].mean,
                    theta_sigma: summaries[1].mean,
                });
            }
            draws *= 2;
        }
    })
}
