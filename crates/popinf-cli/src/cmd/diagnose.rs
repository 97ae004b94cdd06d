//! `popinf diagnose`: ArviZ's summary table for posterior draws from any
//! sampler.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DiagnoseArgs {
    /// CSV with columns chain,draw,<param>...
    draws: PathBuf,
    /// Print JSON: {"<param>": {"mean", "sd", "r_hat", "ess_bulk", ...}}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DiagnoseArgs) -> popinf::Result<()> {
    let path = &args.draws;
    let trace = popinf::inference::trace::read_draws_csv(path)?;
    let summaries = trace.summaries();
    if args.json {
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
        if !c.meets_targets() {
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
