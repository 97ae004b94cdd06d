//! `popinf bench`: timings, printed as a table and then one JSON line.

use clap::Subcommand;
use popinf::likelihood::fused::SampleStorage;
use popinf::run::bench::{
    BenchModel, FIT_BENCH_NUTS, FitBenchSettings, LikelihoodBench, LikelihoodBenchSettings, bench_likelihood,
    likelihood_scaling,
};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Time NUTS on the notebook's full hierarchical model (4 chains x 2000 iterations).
    Hierarchical {
        #[arg(long, default_value_t = 1000)]
        n_obj: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Repetitions (the median run is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Time a complete importance-sampled fit of the notebook's toy (NUTS,
    /// 2 chains x (150 + 500), until bulk-ESS >= 400 and R-hat < 1.01):
    /// wall time, likelihood evaluations, bulk-ESS per second, peak memory.
    Fit {
        /// Objects; several comma-separated sizes run one after another.
        #[arg(long, value_delimiter = ',', default_value = "100000")]
        n_obj: Vec<usize>,
        #[arg(long, default_value_t = 100)]
        n_samp: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Stream the samples as float32 (float64 arithmetic).
        #[arg(long)]
        f32: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// NUTS chains.
        #[arg(long, default_value_t = FIT_BENCH_NUTS.0)]
        chains: usize,
        /// Tuning iterations per chain.
        #[arg(long, default_value_t = FIT_BENCH_NUTS.1)]
        tune: u64,
        /// Kept draws per chain (doubled while the targets are missed).
        #[arg(long, default_value_t = FIT_BENCH_NUTS.2)]
        draws: u64,
    },
    /// Time one evaluation of the importance-sampled log-likelihood, with
    /// the bare vectorised exp and the memory read as references; prints a
    /// table, then one JSON line (last).
    Likelihood {
        #[arg(long, default_value_t = 100_000)]
        n_obj: usize,
        #[arg(long, default_value_t = 100)]
        n_samp: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed repetitions (the median is reported).
        #[arg(long, default_value_t = 30)]
        reps: usize,
        /// Stream the samples as float32 (float64 arithmetic).
        #[arg(long)]
        f32: bool,
        /// Use the general chunked kernel instead of the fused one.
        #[arg(long)]
        general: bool,
        /// Also time 1e3, 1e4, 1e5 and 1e6 objects on 1 thread and on all,
        /// and fit the log-log slope of time against size.
        #[arg(long)]
        scaling: bool,
        /// The population model; other than the Gaussian, its time is also
        /// given over the Gaussian fused kernel's in the same run.
        #[arg(long, default_value = "gaussian", value_parser = model_names())]
        model: String,
        /// `gmm`: also time the Gaussian-mixture likelihood of the same
        /// catalog beside importance sampling, in the same repetitions.
        #[arg(long, value_parser = ["importance", "gmm"], default_value = "importance")]
        likelihood: String,
    },
}

/// The models `--model` accepts, as the library names them.
fn model_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(BenchModel::ALL.map(BenchModel::name))
}

/// The storage `--f32` selects.
fn storage_flag(f32: bool) -> SampleStorage {
    if f32 {
        SampleStorage::F32
    } else {
        SampleStorage::F64
    }
}

fn threads_or_all(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(rayon::current_num_threads)
}

pub fn run(what: BenchCommand) -> popinf::Result<()> {
    match what {
        BenchCommand::Hierarchical { n_obj, threads, reps } => {
            let b = popinf::run::bench::bench_hierarchical(n_obj, threads_or_all(threads), reps)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&b).expect("plain numbers serialise")
            );
            Ok(())
        }
        BenchCommand::Fit {
            n_obj,
            n_samp,
            threads,
            f32,
            seed,
            chains,
            tune,
            draws,
        } => fit(
            &n_obj,
            FitBenchSettings {
                n_obj: 0,
                n_samp,
                threads: threads_or_all(threads),
                storage: storage_flag(f32),
                seed,
                nuts: (chains, tune, draws),
            },
        ),
        BenchCommand::Likelihood {
            n_obj,
            n_samp,
            threads,
            reps,
            f32,
            general,
            scaling,
            model,
            likelihood: kind,
        } => likelihood(
            LikelihoodBenchSettings {
                n_obj,
                n_samp,
                threads: threads_or_all(threads),
                reps,
                storage: storage_flag(f32),
                general_kernel: general,
                model: BenchModel::from_name(&model).expect("clap checked the name"),
                gmm: kind == "gmm",
            },
            scaling,
        ),
    }
}

/// `popinf bench fit`: one row per size as it finishes, then one JSON line.
fn fit(sizes: &[usize], settings: FitBenchSettings) -> popinf::Result<()> {
    println!(
        "{:>9} {:>7} {:>9} {:>9} {:>7} {:>8} {:>7} {:>9} {:>9} {:>8}",
        "objects", "storage", "fit s", "evals", "ms/eval", "min ESS", "R-hat", "ESS/s", "peak MB", "reached"
    );
    let mut runs = Vec::new();
    for &n_obj in sizes {
        let b = popinf::run::bench::bench_fit(&FitBenchSettings { n_obj, ..settings })?;
        println!(
            "{:>9} {:>7} {:>9.1} {:>9} {:>7.2} {:>8.0} {:>7.4} {:>9.1} {:>9.0} {:>8}",
            b.n_obj,
            b.storage,
            b.fit_s,
            b.likelihood_evals,
            b.ms_per_eval,
            b.min_ess_bulk,
            b.max_r_hat,
            b.ess_bulk_per_s,
            b.peak_rss_mb.unwrap_or(f64::NAN),
            b.reached
        );
        runs.push(b);
    }
    println!("{}", serde_json::json!({ "runs": runs }));
    Ok(())
}

/// `popinf bench likelihood`: one row per configuration as it finishes,
/// then the JSON line.
fn likelihood(main: LikelihoodBenchSettings, scaling: bool) -> popinf::Result<()> {
    println!(
        "{:>9} {:>5} {:>7} {:>11} {:>11} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "objects",
        "thr",
        "storage",
        "value ms",
        "v+grad ms",
        "ns/samp",
        "exp ns",
        "v+g/exp",
        "v+g/read",
        "ln Z ms"
    );
    let row = |b: &LikelihoodBench| {
        println!(
            "{:>9} {:>5} {:>7} {:>11.3} {:>11.3} {:>8.3} {:>8.3} {:>9.2} {:>9.2} {:>9.4}",
            b.n_obj,
            b.threads,
            b.storage,
            b.ms_value,
            b.ms_value_grad,
            b.ns_per_element_value_grad,
            b.exp_ns_per_element,
            b.value_grad_over_exp,
            b.value_grad_over_read,
            b.ms_normalisation
        );
        if let Some(g) = &b.gmm {
            println!(
                "{:>9} gmm ({}, {} components, {} nodes): v+grad {:.3} ms = {:.2}x importance; mixtures fitted in {:.0} ms",
                "",
                g.form,
                g.components,
                g.nodes,
                g.ms_value_grad,
                g.value_grad_over_importance,
                g.ms_fit_mixtures
            );
        }
    };
    let scaled = if scaling {
        Some(likelihood_scaling(&main, row)?)
    } else {
        None
    };
    let found = scaled
        .as_ref()
        .and_then(|s| {
            s.rows
                .iter()
                .find(|b| b.n_obj == main.n_obj && b.threads == main.threads)
        })
        .cloned();
    let result = match found {
        Some(b) => b,
        None => {
            let b = bench_likelihood(&main)?;
            row(&b);
            b
        }
    };
    let mut line = serde_json::to_value(&result).expect("plain numbers serialise");
    if let Some(s) = scaled {
        let obj = line.as_object_mut().expect("a struct serialises to an object");
        obj.insert(
            "scaling".into(),
            serde_json::to_value(&s.rows).expect("plain numbers serialise"),
        );
        obj.insert(
            "log_log_slope_value_grad".into(),
            serde_json::to_value(&s.log_log_slope_value_grad).expect("plain numbers serialise"),
        );
    }
    println!("{line}");
    Ok(())
}
