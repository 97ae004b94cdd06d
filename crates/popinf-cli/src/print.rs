//! What `demo` and `fit` both print: ArviZ's summary columns for every
//! sampled method, each sampler's figures, and the warnings.

use popinf::inference::method::MethodSummary;

/// ArviZ's summary columns, the sampler's figures and the warnings of
/// each method.
pub fn print_methods(methods: &[(&str, &MethodSummary)]) {
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
