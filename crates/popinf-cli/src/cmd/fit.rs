//! `popinf fit`: a population fit from a run file, flags, or both.

use std::path::PathBuf;

use popinf::inference::method::MethodSummary;
use popinf::run::fit::{Checkpointing, RunFile, load_checkpoint, load_data, run_fit};
use popinf::run::report::finish_fit;

use crate::print::print_methods;
use crate::progress::ProgressBars;

#[derive(clap::Args)]
pub struct FitArgs {
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
    /// importance, gmm, naive or hierarchical.
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
    /// (finished chains are reused, unfinished ones replayed from their
    /// logs; the draws equal an uninterrupted run's). Without a checkpoint
    /// the run starts afresh.
    #[arg(long)]
    resume: bool,
    /// Seconds between checkpoints: of the ensemble sampler's state, and
    /// of each NUTS chain's log of density evaluations (a chain is also
    /// saved as it finishes).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    checkpoint_every: f64,
    #[arg(long, short)]
    quiet: bool,
}

/// The flags as a run file, to lay over the one given.
fn flags(args: &FitArgs) -> popinf::Result<RunFile> {
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
    Ok(flags)
}

pub fn run(args: FitArgs) -> popinf::Result<()> {
    let file = match &args.run {
        Some(path) => RunFile::load(path)?,
        None => RunFile::default(),
    };
    let cfg = file.override_with(flags(&args)?).resolve()?;
    // Everything is read and checked before any output is written.
    let t_load = std::time::Instant::now();
    let data = load_data(&cfg)?;
    let load_s = t_load.elapsed().as_secs_f64();
    let bars = ProgressBars::new(args.quiet);
    let checkpoint = if args.resume { load_checkpoint(&cfg)? } else { None };
    if args.resume && !args.quiet {
        match &checkpoint {
            None => eprintln!(
                "popinf: --resume: no checkpoint in {}; starting afresh",
                cfg.out.display()
            ),
            Some(c) => match &c.ensemble {
                Some(state) => eprintln!("popinf: resuming the ensemble at step {}", state.step),
                None => eprintln!(
                    "popinf: resuming with {} finished chain(s) and {} replayed from their logs",
                    c.chains.len(),
                    c.logs.len()
                ),
            },
        }
    }
    let resume = checkpoint.unwrap_or_default();
    let checkpointing = Checkpointing::new(&cfg, &bars, &resume.chains, args.checkpoint_every);
    let result = run_fit(&cfg, &data, &checkpointing, resume)?;
    if let Some(e) = checkpointing.take_error() {
        eprintln!("popinf: warning: could not save a checkpoint: {e}");
    }
    let done = finish_fit(&cfg, &result)?;
    for w in &done.warnings {
        eprintln!("popinf: warning: {w}");
    }
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
            done.written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
