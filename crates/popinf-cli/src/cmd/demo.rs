//! `popinf demo`: the notebook's analysis on its toy universe.

use std::path::PathBuf;

use popinf::inference::latent::Parametrisation;
use popinf::inference::method::MethodSummary;
use popinf::run::demo::{DemoSettings, DemoSummary, METHOD_ORDER, SamplerChoice, run_demo_full};

use crate::print::print_methods;
use crate::progress::ProgressBars;

#[derive(clap::Args)]
pub struct DemoArgs {
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

pub fn run(args: DemoArgs) -> popinf::Result<()> {
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
        ParamArg::NonCentred => Parametrisation::NonCentred,
        ParamArg::Centred => Parametrisation::Centred,
    };
    let started = std::time::Instant::now();
    let bars = ProgressBars::new(args.quiet);
    let run = run_demo_full(&settings, &bars)?;
    popinf::run::demo::write_run(&args.out, &run)?;
    let report = popinf::run::report::build_report(&args.out)?;
    if !args.quiet {
        print_table(&run.summary);
        let methods: Vec<(&str, &MethodSummary)> = METHOD_ORDER
            .iter()
            .filter_map(|name| run.summary.methods.get(*name).map(|m| (*name, m)))
            .collect();
        print_methods(&methods);
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
    let off = |method: &str, p: &str| s.exact_sd_offset(method, p);
    if let (Some(mu), Some(sigma)) = (
        off("hierarchical", "theta_mu"),
        off("hierarchical", "theta_sigma"),
    ) {
        println!(
            "\nhierarchical (NUTS over theta and all {} latent mu_i): within {:.2} and {:.2} exact sd of the exact answer.",
            s.data.n_obj,
            mu.abs(),
            sigma.abs()
        );
    }
    if let (Some(naive), Some(mu), Some(sigma)) = (
        off("naive", "theta_sigma"),
        off("importance", "theta_mu"),
        off("importance", "theta_sigma"),
    ) {
        println!(
            "naive (fit to per-object medians): theta_sigma is {naive:+.1} exact sd from the exact answer — \
             medians carry the measurement noise, so it estimates sqrt(theta_sigma^2 + alpha^2) = {:.2}.",
            s.naive_theta_sigma_expected()
        );
        println!(
            "importance (per-object samples): within {:.2} and {:.2} exact sd of the exact answer for theta_mu and theta_sigma.",
            mu.abs(),
            sigma.abs()
        );
    }
    if let (Some(mu), Some(sigma)) = (off("gmm", "theta_mu"), off("gmm", "theta_sigma")) {
        println!(
            "gmm (a Gaussian mixture per object, from the same samples): within {:.2} and {:.2} exact sd.",
            mu.abs(),
            sigma.abs()
        );
    }
    if !s.advice.is_empty() {
        println!("which to believe: {}.", s.advice);
    }
}
