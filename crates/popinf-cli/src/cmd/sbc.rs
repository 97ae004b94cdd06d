//! `popinf sbc`: simulation-based calibration of a method.

use popinf::run::sbc::{SbcMethod, SbcModel, SbcSettings, run_sbc};

use crate::progress::ProgressBars;

#[derive(clap::Args)]
pub struct SbcArgs {
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
    Gmm,
    Hierarchical,
}

pub fn run(args: SbcArgs) -> popinf::Result<()> {
    let settings = SbcSettings {
        method: match args.method {
            SbcMethodArg::Naive => SbcMethod::Naive,
            SbcMethodArg::Importance => SbcMethod::Importance,
            SbcMethodArg::Gmm => SbcMethod::Gmm,
            SbcMethodArg::Hierarchical => SbcMethod::Hierarchical,
        },
        model: match args.model {
            SbcModelArg::Gaussian => SbcModel::Gaussian,
            SbcModelArg::Schechter => SbcModel::Schechter,
        },
        reps: args.reps,
        n_obj: args.n_obj,
        n_samp: args.n_samp,
        seed: args.seed,
        ..SbcSettings::default()
    };
    let bars = ProgressBars::new(args.quiet || args.json);
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
