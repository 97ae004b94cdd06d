//! `popinf simulate`: mock catalogues.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum SimulateCommand {
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

pub fn run(what: SimulateCommand) -> popinf::Result<()> {
    let SimulateCommand::Smf {
        out,
        n_gal,
        n_samp,
        seed,
    } = what;
    let mut s = popinf::run::smf::SmfSettings::leja2020(n_gal as f64, seed);
    s.n_samp = n_samp;
    let c = popinf::run::smf::simulate_smf(&s)?;
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
}
