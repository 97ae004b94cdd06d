//! The `popinf` command: parses arguments, calls the library, prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use popinf::inference::method::MethodSummary;
use popinf::run::demo::{DemoSettings, DemoSummary, METHOD_ORDER, SamplerChoice, run_demo_full};

mod progress;

#[derive(Parser)]
#[command(
    name = "popinf",
    version,
    about = "Hierarchical Bayesian population inference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the notebook's analysis: naive (medians) vs importance-sampled vs exact.
    Demo(DemoArgs),
    /// Fit a population model to a catalog (a run file and/or flags).
    Fit(Box<FitArgs>),
    /// ArviZ's summary table for posterior draws from any sampler.
    Diagnose {
        /// CSV with columns chain,draw,<param>...
        draws: PathBuf,
        /// Print JSON: {"<param>": {"mean", "sd", "r_hat", "ess_bulk", ...}}.
        #[arg(long)]
        json: bool,
    },
    /// Simulation-based calibration: are a method's posteriors calibrated?
    Sbc(SbcArgs),
    /// Simulate a catalogue (smf: a stellar mass function survey).
    Simulate {
        #[command(subcommand)]
        what: SimulateCommand,
    },
    /// Redraw the figures and report.html of a demo or fit output
    /// directory; given several fit directories, one report comparing them.
    Report {
        /// The directory (or directories) `popinf demo` or `popinf fit` wrote.
        #[arg(required = true)]
        run_dirs: Vec<PathBuf>,
        /// Where a comparison of several runs goes (default: the first run's
        /// parent directory, in "comparison").
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The hierarchical model in plate notation, as Graphviz DOT and SVG.
    Graph {
        /// Population model.
        #[arg(long, default_value = "gaussian")]
        model: String,
        /// Number of objects shown on the plate (N if not given).
        #[arg(long)]
        n_obj: Option<usize>,
        /// Output file: .svg or .dot (both are written, beside each other);
        /// without it the DOT goes to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Time parts of popinf.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Seed of the simulation and the samplers.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of objects.
    #[arg(long, default_value_t = 1000)]
    n_obj: usize,
    /// Posterior samples per object.
    #[arg(long, default_value_t = 100)]
    n_samp: usize,
    /// Measurement noise alpha (x_i = mu_i + alpha * eps).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    alpha: f64,
    /// Output directory: summary.json, draws, data, figures, report.html.
    #[arg(long, default_value = "popinf-demo")]
    out: PathBuf,
    /// Sampler for the importance-sampled fit.
    #[arg(long, value_enum, default_value_t = SamplerArg::Nuts)]
    sampler: SamplerArg,
    /// Parametrisation of the hierarchical (latent-variable) model.
    #[arg(long, value_enum, default_value_t = ParamArg::NonCentred)]
    parametrisation: ParamArg,
    /// Use the plain importance-sampling estimator ln(mean weight), without
    /// the sigma_i^2/2 correction of its Monte Carlo bias.
    #[arg(long)]
    no_bias_correction: bool,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct FitArgs {
    /// Run file (TOML); flags override its values.
    run: Option<PathBuf>,
    /// Per-object posterior samples (.csv wide or long, .npy, .npz).
    #[arg(long)]
    samples: Option<PathBuf>,
    /// Measurements x, sigma (.csv, .npy), for the hierarchical likelihood.
    #[arg(long)]
    measurements: Option<PathBuf>,
    /// Interim prior of the samples: flat, column, or e.g. 'uniform(7, 13)'.
    #[arg(long)]
    interim_prior: Option<String>,
    /// Population model (gaussian).
    #[arg(long)]
    model: Option<String>,
    /// A hyperprior, NAME=SPEC, e.g. 'theta_sigma=halfnormal(1)'; repeat for each.
    #[arg(long = "prior", value_name = "NAME=SPEC")]
    priors: Vec<String>,
    /// importance, naive or hierarchical.
    #[arg(long)]
    likelihood: Option<String>,
    /// nuts or ensemble.
    #[arg(long)]
    sampler: Option<String>,
    #[arg(long)]
    chains: Option<usize>,
    #[arg(long)]
    tune: Option<u64>,
    #[arg(long)]
    draws: Option<u64>,
    #[arg(long)]
    target_accept: Option<f64>,
    /// Ensemble walkers.
    #[arg(long)]
    walkers: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue a killed run from the checkpoint in its output directory
    /// (finished chains are reused; the draws equal an uninterrupted run's).
    #[arg(long)]
    resume: bool,
    /// Seconds between checkpoints of the ensemble sampler's state (NUTS
    /// saves each chain as it finishes).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    checkpoint_every: f64,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct SbcArgs {
    /// The method to calibrate.
    #[arg(long, value_enum, default_value_t = SbcMethodArg::Importance)]
    method: SbcMethodArg,
    /// The simulated universe: the notebook's Gaussian toy, or a Schechter
    /// mass function above a completeness limit (log_m_star, alpha).
    #[arg(long, value_enum, default_value_t = SbcModelArg::Gaussian)]
    model: SbcModelArg,
    /// Replications (prior draw, simulated catalog, fit).
    #[arg(long, default_value_t = 100)]
    reps: usize,
    #[arg(long, default_value_t = 30)]
    n_obj: usize,
    #[arg(long, default_value_t = 100)]
    n_samp: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON: {"method", "reps", "params": {"<name>": {"ranks", "p_value", ...}}}.
    #[arg(long)]
    json: bool,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SbcModelArg {
    Gaussian,
    Schechter,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SbcMethodArg {
    Naive,
    Importance,
    Hierarchical,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ParamArg {
    NonCentred,
    Centred,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SamplerArg {
    Nuts,
    Ensemble,
}

#[derive(Subcommand)]
enum SimulateCommand {
    /// Galaxies from the Leja et al. (2020) z ~ 0.2 double Schechter mass
    /// function above log M = 9, each with 100 posterior samples of log M
    /// (skewed, wider at low mass, 5% bimodal) under an interim prior
    /// uniform in M (∝ 10^logM); writes samples.npz, truth.json, run.toml,
    /// run_naive.toml.
    Smf {
        #[arg(long)]
        out: PathBuf,
        /// Expected number of detected galaxies.
        #[arg(long, default_value_t = 5000)]
        n_gal: usize,
        #[arg(long, default_value_t = 100)]
        n_samp: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
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
        #[arg(long, default_value_t = popinf::run::bench::FIT_BENCH_NUTS.0)]
        chains: usize,
        /// Tuning iterations per chain.
        #[arg(long, default_value_t = popinf::run::bench::FIT_BENCH_NUTS.1)]
        tune: u64,
        /// Kept draws per chain (doubled while the targets are missed).
        #[arg(long, default_value_t = popinf::run::bench::FIT_BENCH_NUTS.2)]
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
    },
}

fn main() -> ExitCode {
    progress::install_ctrl_c();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line, like every other error popinf prints.
            let text = e.to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
                })
                .collect();
            eprintln!(
                "popinf: {} (see popinf --help)",
                lines.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Demo(args) => demo(args),
        Command::Diagnose { draws, json } => diagnose(&draws, json),
        Command::Sbc(args) => sbc(args),
        Command::Fit(args) => fit(*args),
        Command::Report { run_dirs, out } => if run_dirs.len() == 1 && out.is_none() {
            popinf::run::report::build_report(&run_dirs[0])
        } else {
            let out = out.unwrap_or_else(|| {
                run_dirs[0]
                    .parent()
                    .map_or_else(|| PathBuf::from("comparison"), |p| p.join("comparison"))
            });
            popinf::run::report::build_comparison(&run_dirs, &out)
        }
        .map(|r| {
            println!(
                "wrote {} and {} figure files ({:.2} s)",
                r.report.display(),
                r.figures.len(),
                r.seconds
            );
        }),
        Command::Graph { model, n_obj, out } => graph(&model, n_obj, out),
        Command::Simulate {
            what:
                SimulateCommand::Smf {
                    out,
                    n_gal,
                    n_samp,
                    seed,
                },
        } => {
            let mut s = popinf::run::smf::SmfSettings::leja2020(n_gal as f64, seed);
            s.n_samp = n_samp;
            popinf::run::smf::simulate_smf(&s).and_then(|c| {
                let written = popinf::run::smf::write_smf(&out, &s, &c)?;
                println!(
                    "simulated {} galaxies above log M = {} in {:.4e} Mpc^3; wrote {}",
                    c.samples.len(),
                    s.limit,
                    c.volume,
                    written
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                println!("fit them with: popinf fit {}", out.join("run.toml").display());
                Ok(())
            })
        }
        Command::Bench {
            what: BenchCommand::Hierarchical { n_obj, threads, reps },
        } => {
            let threads = threads.unwrap_or_else(rayon::current_num_threads);
            popinf::run::bench::bench_hierarchical(n_obj, threads, reps).map(|b| {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&b).expect("plain numbers serialise")
                );
            })
        }
        Command::Bench {
            what:
                BenchCommand::Fit {
                    n_obj,
                    n_samp,
                    threads,
                    f32,
                    seed,
                    chains,
                    tune,
                    draws,
                },
        } => bench_fit(
            &n_obj,
            popinf::run::bench::FitBenchSettings {
                n_obj: 0,
                n_samp,
                threads: threads.unwrap_or_else(rayon::current_num_threads),
                storage: storage_flag(f32),
                seed,
                nuts: (chains, tune, draws),
            },
        ),
        Command::Bench {
            what:
                BenchCommand::Likelihood {
                    n_obj,
                    n_samp,
                    threads,
                    reps,
                    f32,
                    general,
                    scaling,
                },
        } => bench_likelihood(
            popinf::run::bench::LikelihoodBenchSettings {
                n_obj,
                n_samp,
                threads: threads.unwrap_or_else(rayon::current_num_threads),
                reps,
                storage: storage_flag(f32),
                general_kernel: general,
            },
            scaling,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popinf: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The storage `--f32` selects.
fn storage_flag(f32: bool) -> popinf::likelihood::fused::SampleStorage {
    if f32 {
        popinf::likelihood::fused::SampleStorage::F32
    } else {
        popinf::likelihood::fused::SampleStorage::F64
    }
}

/// `popinf bench fit`: one row per size as it finishes, then one JSON line.
fn bench_fit(sizes: &[usize], settings: popinf::run::bench::FitBenchSettings) -> popinf::Result<()> {
    println!(
        "{:>9} {:>7} {:>9} {:>9} {:>7} {:>8} {:>7} {:>9} {:>9} {:>8}",
        "objects", "storage", "fit s", "evals", "ms/eval", "min ESS", "R-hat", "ESS/s", "peak MB", "reached"
    );
    let mut runs = Vec::new();
    for &n_obj in sizes {
        let b = popinf::run::bench::bench_fit(&popinf::run::bench::FitBenchSettings { n_obj, ..settings })?;
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
fn bench_likelihood(main: popinf::run::bench::LikelihoodBenchSettings, scaling: bool) -> popinf::Result<()> {
    use popinf::run::bench::{LikelihoodBench, LikelihoodBenchSettings, bench_likelihood, log_log_slope};
    println!(
        "{:>9} {:>5} {:>7} {:>11} {:>11} {:>8} {:>8} {:>9} {:>9}",
        "objects", "thr", "storage", "value ms", "v+grad ms", "ns/samp", "exp ns", "v+g/exp", "v+g/read"
    );
    let row = |b: &LikelihoodBench| {
        println!(
            "{:>9} {:>5} {:>7} {:>11.3} {:>11.3} {:>8.3} {:>8.3} {:>9.2} {:>9.2}",
            b.n_obj,
            b.threads,
            b.storage,
            b.ms_value,
            b.ms_value_grad,
            b.ns_per_element_value_grad,
            b.exp_ns_per_element,
            b.value_grad_over_exp,
            b.value_grad_over_read
        );
    };
    let mut rows = Vec::new();
    let mut slopes = serde_json::Map::new();
    if scaling {
        let mut thread_counts = vec![1, main.threads];
        thread_counts.dedup();
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
                row(&b);
                points.push((n_obj as f64, b.ms_value_grad));
                rows.push(b);
            }
            slopes.insert(format!("threads_{threads}"), log_log_slope(&points).into());
        }
    }
    let found = rows
        .iter()
        .find(|b| b.n_obj == main.n_obj && b.threads == main.threads)
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
    if scaling {
        let obj = line.as_object_mut().expect("a struct serialises to an object");
        obj.insert(
            "scaling".into(),
            serde_json::to_value(&rows).expect("plain numbers serialise"),
        );
        obj.insert("log_log_slope_value_grad".into(), slopes.into());
    }
    println!("{line}");
    Ok(())
}

fn fit(args: FitArgs) -> popinf::Result<()> {
    use popinf::run::fit::{
        CheckpointFile, Checkpointing, RunFile, load_checkpoint, load_data, run_fit, write_outputs,
    };
    let file = match &args.run {
        Some(path) => RunFile::load(path)?,
        None => RunFile::default(),
    };
    let mut flags = RunFile {
        seed: args.seed,
        out: args.out.clone(),
        ..RunFile::default()
    };
    flags.data.samples = args.samples.clone();
    flags.data.measurements = args.measurements.clone();
    flags.data.interim_prior = args.interim_prior.clone();
    flags.model.population = args.model.clone();
    flags.likelihood.kind = args.likelihood.clone();
    flags.sampler.name = args.sampler.clone();
    flags.sampler.chains = args.chains;
    flags.sampler.tune = args.tune;
    flags.sampler.draws = args.draws;
    flags.sampler.target_accept = args.target_accept;
    flags.sampler.walkers = args.walkers;
    for p in &args.priors {
        let Some((name, spec)) = p.split_once('=') else {
            return Err(popinf::Error::Invalid(format!(
                "--prior '{p}': expected NAME=SPEC, e.g. --prior 'theta_mu=uniform(-5, 5)'"
            )));
        };
        flags
            .priors
            .insert(name.trim().to_string(), spec.trim().to_string());
    }
    let cfg = file.override_with(flags).resolve()?;
    // Everything is read and checked before any output is written.
    let t_load = std::time::Instant::now();
    let data = load_data(&cfg)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let bars = progress::ProgressBars::new(args.quiet);
    let resume = if args.resume {
        load_checkpoint(&cfg)?
    } else {
        CheckpointFile::default()
    };
    if args.resume && !args.quiet {
        match &resume.ensemble {
            Some(state) => eprintln!("popinf: resuming the ensemble at step {}", state.step),
            None => eprintln!("popinf: resuming with {} finished chain(s)", resume.chains.len()),
        }
    }
    let checkpointing = Checkpointing::new(&cfg, &bars, &resume.chains, args.checkpoint_every);
    let result = run_fit(&cfg, &data, &checkpointing, resume)?;
    if let Some(e) = checkpointing.take_error() {
        eprintln!("popinf: warning: could not save a checkpoint: {e}");
    }
    let mut written = write_outputs(&cfg, &result)?;
    // The results are written; a figure that cannot be drawn is a warning,
    // not a failed fit.
    match popinf::run::report::build_report(&cfg.out) {
        Ok(report) => written.push(report.report),
        Err(e) => eprintln!("popinf: warning: the report could not be drawn: {e}"),
    }
    // The results are complete: the checkpoint has done its job.
    let _ = std::fs::remove_file(cfg.out.join(popinf::run::fit::CHECKPOINT_NAME));
    let _ = std::fs::remove_file(cfg.out.join(popinf::run::fit::CHECKPOINT_BIN_NAME));
    if !args.quiet {
        let d = &result.summary.data;
        println!(
            "popinf fit: {} ({} objects{}, read in {load_s:.2} s), {} likelihood, {} population\n",
            d.file,
            d.n_obj,
            d.n_samples_total
                .map_or(String::new(), |n| format!(", {n} samples")),
            cfg.likelihood,
            cfg.population
        );
        let methods: Vec<(&str, &MethodSummary)> = result
            .summary
            .methods
            .iter()
            .map(|(k, m)| (k.as_str(), m))
            .collect();
        print_methods(&methods);
        println!(
            "\nwrote {}",
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn sbc(args: SbcArgs) -> popinf::Result<()> {
    use popinf::run::sbc::{SbcMethod, SbcSettings, run_sbc};
    let settings = SbcSettings {
        method: match args.method {
            SbcMethodArg::Naive => SbcMethod::Naive,
            SbcMethodArg::Importance => SbcMethod::Importance,
            SbcMethodArg::Hierarchical => SbcMethod::Hierarchical,
        },
        model: match args.model {
            SbcModelArg::Gaussian => popinf::run::sbc::SbcModel::Gaussian,
            SbcModelArg::Schechter => popinf::run::sbc::SbcModel::Schechter,
        },
        reps: args.reps,
        n_obj: args.n_obj,
        n_samp: args.n_samp,
        seed: args.seed,
        ..SbcSettings::default()
    };
    let bars = progress::ProgressBars::new(args.quiet || args.json);
    popinf::inference::sampler::SamplerObserver::on_stage(&bars, "sbc replications");
    let result = run_sbc(&settings, &bars)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("plain numbers serialise")
        );
        return Ok(());
    }
    println!(
        "simulation-based calibration of '{:?}': {} replications, {} objects x {} samples, ranks among {} draws\n",
        settings.method, result.reps, result.n_obj, result.n_samp, result.n_rank_draws
    );
    let per_bin = (result.n_rank_draws + 1) / settings.n_bins;
    for (name, p) in &result.params {
        let verdict = if p.p_value < 0.01 {
            "NOT uniform: miscalibrated"
        } else {
            "consistent with uniform"
        };
        println!("{name}: chi2 = {:.1}, p = {:.3e} ({verdict})", p.chi2, p.p_value);
        let max = p.histogram.iter().copied().max().unwrap_or(1).max(1);
        for (b, &count) in p.histogram.iter().enumerate() {
            let bar = "#".repeat((count * 40).div_ceil(max));
            println!(
                "  ranks {:>3}-{:<3} {:>4} {bar}",
                b * per_bin,
                (b + 1) * per_bin - 1,
                count
            );
        }
        println!();
    }
    Ok(())
}

fn diagnose(path: &std::path::Path, json: bool) -> popinf::Result<()> {
    let trace = popinf::inference::trace::read_draws_csv(path)?;
    let summaries = trace.summaries();
    if json {
        let map: serde_json::Map<String, serde_json::Value> = trace
            .param_names
            .iter()
            .zip(&summaries)
            .map(|(name, p)| {
                let c = p.convergence.expect("sampled draws have diagnostics");
                let row = serde_json::json!({
                    "mean": p.mean, "sd": p.sd, "r_hat": c.r_hat, "ess_bulk": c.ess_bulk,
                    "ess_tail": c.ess_tail, "mcse_mean": c.mcse_mean, "mcse_sd": c.mcse_sd,
                    "hdi_3": c.hdi_3, "hdi_97": c.hdi_97,
                });
                (name.clone(), row)
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&map).expect("plain numbers serialise")
        );
        return Ok(());
    }
    println!(
        "{}: {} chains x {} draws, {} parameters\n",
        path.display(),
        trace.n_chains,
        trace.n_draws,
        trace.n_params()
    );
    let width = trace
        .param_names
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$} {:>10} {:>9} {:>10} {:>10} {:>9} {:>8} {:>8} {:>8} {:>6}",
        "", "mean", "sd", "hdi_3%", "hdi_97%", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"
    );
    let mut bad = Vec::new();
    for (name, p) in trace.param_names.iter().zip(&summaries) {
        let c = p.convergence.expect("sampled draws have diagnostics");
        println!(
            "{:<width$} {:>10.4} {:>9.4} {:>10.4} {:>10.4} {:>9.5} {:>8.5} {:>8.0} {:>8.0} {:>6.3}",
            name, p.mean, p.sd, c.hdi_3, c.hdi_97, c.mcse_mean, c.mcse_sd, c.ess_bulk, c.ess_tail, c.r_hat
        );
        if c.r_hat > 1.01 || c.ess_bulk < 400.0 || c.ess_tail < 400.0 {
            bad.push(name.as_str());
        }
    }
    if !bad.is_empty() {
        println!(
            "\nwarning: r_hat > 1.01 or ESS < 400 for {}: the chains have not converged or are too short; \
             run longer before trusting these numbers",
            bad.join(", ")
        );
    }
    Ok(())
}

fn demo(args: DemoArgs) -> popinf::Result<()> {
    let mut settings = DemoSettings::with_seed(args.seed);
    settings.toy.n_obj = args.n_obj;
    settings.toy.n_samp = args.n_samp;
    settings.toy.alpha = args.alpha;
    settings.bias_correction = !args.no_bias_correction;
    settings.importance_sampler = match args.sampler {
        SamplerArg::Nuts => SamplerChoice::Nuts,
        SamplerArg::Ensemble => SamplerChoice::Ensemble,
    };
    settings.parametrisation = match args.parametrisation {
        ParamArg::NonCentred => popinf::inference::latent::Parametrisation::NonCentred,
        ParamArg::Centred => popinf::inference::latent::Parametrisation::Centred,
    };
    let started = std::time::Instant::now();
    let bars = progress::ProgressBars::new(args.quiet);
    let run = run_demo_full(&settings, &bars)?;
    popinf::run::demo::write_run(&args.out, &run)?;
    let report = popinf::run::report::build_report(&args.out)?;
    if !args.quiet {
        print_table(&run.summary);
        print_diagnostics(&run.summary);
        println!(
            "\nwrote {} with its figures ({:.2} s to draw) in {} ({:.2} s in all)",
            report.report.display(),
            report.seconds,
            args.out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn graph(model: &str, n_obj: Option<usize>, out: Option<PathBuf>) -> popinf::Result<()> {
    if model != "gaussian" {
        return Err(popinf::Error::Invalid(format!(
            "unknown population model '{model}' (available: gaussian)"
        )));
    }
    let [mu, sigma] = popinf::model::prior::NOTEBOOK_PRIORS;
    let g = popinf::report::graph::ModelGraph::gaussian(&mu, &sigma, n_obj);
    let Some(out) = out else {
        print!("{}", g.dot());
        return Ok(());
    };
    let (dot, svg) = (out.with_extension("dot"), out.with_extension("svg"));
    popinf::data::files::write_atomically(&dot, g.dot().as_bytes())?;
    popinf::data::files::write_atomically(&svg, g.svg().as_bytes())?;
    println!("wrote {} and {}", dot.display(), svg.display());
    Ok(())
}

/// ArviZ's summary columns for every sampled method, then its sampler's
/// figures and any warnings.
fn print_diagnostics(s: &DemoSummary) {
    let methods: Vec<(&str, &MethodSummary)> = METHOD_ORDER
        .iter()
        .filter_map(|name| s.methods.get(*name).map(|m| (*name, m)))
        .collect();
    print_methods(&methods);
}

/// ArviZ's summary columns, the sampler's figures and the warnings of
/// each method.
fn print_methods(methods: &[(&str, &MethodSummary)]) {
    println!(
        "\n{:<12} {:<12} {:>8} {:>7} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>6}",
        "method",
        "param",
        "mean",
        "sd",
        "hdi_3%",
        "hdi_97%",
        "mcse_mean",
        "mcse_sd",
        "ess_bulk",
        "ess_tail",
        "r_hat"
    );
    for &(name, m) in methods {
        for (param, p) in &m.params {
            let Some(c) = p.convergence else { continue };
            println!(
                "{:<12} {:<12} {:>8.4} {:>7.4} {:>8.4} {:>8.4} {:>9.5} {:>8.5} {:>8.0} {:>8.0} {:>6.3}",
                name,
                param,
                p.mean,
                p.sd,
                c.hdi_3,
                c.hdi_97,
                c.mcse_mean,
                c.mcse_sd,
                c.ess_bulk,
                c.ess_tail,
                c.r_hat
            );
        }
    }
    println!();
    for &(name, m) in methods {
        let diag = m.diagnostics.clone().unwrap_or_default();
        if let Some(x) = &m.sampler {
            let mut line = format!(
                "{name}: {} {} chains x {} draws ({} tuning), {:.0} bulk-ESS/s (slowest parameter)",
                x.name, x.chains, x.draws, x.tune, x.min_ess_bulk_per_s
            );
            if x.name == "nuts" {
                let min_bfmi = diag
                    .bfmi
                    .as_ref()
                    .map_or(f64::NAN, |b| b.iter().cloned().fold(f64::INFINITY, f64::min));
                line += &format!(
                    ", {} divergences, {} max-depth hits, min E-BFMI {:.2}, {} gradients",
                    x.divergences,
                    diag.max_tree_depth_hits.unwrap_or(0),
                    min_bfmi,
                    x.grad_evals
                );
            } else if let Some(acc) = diag.acceptance_fraction {
                line += &format!(", acceptance {acc:.2}");
            }
            println!("{line}");
        }
        if let Some(report) = &diag.importance_sampling {
            for (label, r) in [("median", &report.at_median), ("worst", &report.worst)] {
                println!(
                    "  importance weights at the {label} of {} posterior draws: per-object ESS min {:.1}, \
                     median {:.1} ({} below 20); Var(ln L) = {:.2}; max k-hat {:.2} ({} objects above \
                     threshold)",
                    report.n_draws_checked,
                    r.ess_min,
                    r.ess_median,
                    r.n_ess_below_20,
                    r.var_ln_l,
                    r.k_hat_max,
                    r.n_k_hat_above_threshold
                );
            }
        }
        for w in &m.warnings {
            println!("  warning ({name}): {w}");
        }
    }
}

fn print_table(s: &DemoSummary) {
    println!(
        "popinf demo: {} objects, {} posterior samples each, alpha = {}, seed {}",
        s.data.n_obj, s.data.n_samp, s.data.alpha, s.data.seed
    );
    println!(
        "truth: theta_mu = {}, theta_sigma = {}\n",
        s.truth["theta_mu"], s.truth["theta_sigma"]
    );
    println!(
        "{:<12} {:^36} {:^36} {:>8}  sampler",
        "method", "theta_mu", "theta_sigma", "wall"
    );
    println!(
        "{:<12} {:^36} {:^36} {:>8}",
        "", "mean ± sd   [5%, 95%]", "mean ± sd   [5%, 95%]", ""
    );
    for name in METHOD_ORDER {
        let Some(m) = s.methods.get(name) else {
            continue;
        };
        let cell = |p: &str| {
            let p = &m.params[p];
            format!("{:7.4} ± {:.4}  [{:7.4}, {:7.4}]", p.mean, p.sd, p.q05, p.q95)
        };
        let sampler = m.sampler.as_ref().map_or("quadrature".to_string(), |x| {
            if x.name == "nuts" {
                format!("NUTS {}x{}, {} divergences", x.chains, x.draws, x.divergences)
            } else {
                format!("ensemble {} walkers x {}", x.chains, x.draws)
            }
        });
        println!(
            "{:<12} {:^36} {:^36} {:>6.2} s  {}",
            name,
            cell("theta_mu"),
            cell("theta_sigma"),
            m.wall_s,
            sampler
        );
    }
    if let (Some(hier), Some(exact)) = (s.methods.get("hierarchical"), s.methods.get("exact")) {
        let off = |p: &str| (hier.params[p].mean - exact.params[p].mean).abs() / exact.params[p].sd;
        println!(
            "\nhierarchical (NUTS over theta and all {} latent mu_i): within {:.2} and {:.2} exact sd of the exact answer.",
            s.data.n_obj,
            off("theta_mu"),
            off("theta_sigma")
        );
    }
    if let (Some(naive), Some(imp), Some(exact)) = (
        s.methods.get("naive"),
        s.methods.get("importance"),
        s.methods.get("exact"),
    ) {
        let off = |m: &MethodSummary, p: &str| (m.params[p].mean - exact.params[p].mean) / exact.params[p].sd;
        println!(
            "naive (fit to per-object medians): theta_sigma is {:+.1} exact sd from the exact answer — \
             medians carry the measurement noise, so it estimates sqrt(theta_sigma^2 + alpha^2) = {:.2}.",
            off(naive, "theta_sigma"),
            (s.truth["theta_sigma"].powi(2) + s.data.alpha.powi(2)).sqrt()
        );
        println!(
            "importance (per-object samples): within {:.2} and {:.2} exact sd of the exact answer for theta_mu and theta_sigma.",
            off(imp, "theta_mu").abs(),
            off(imp, "theta_sigma").abs()
        );
    }
}
