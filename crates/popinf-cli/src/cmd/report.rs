//! `popinf report`: figures and report.html redrawn from saved outputs.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The directory (or directories) `popinf demo` or `popinf fit` wrote.
    #[arg(required = true)]
    run_dirs: Vec<PathBuf>,
    /// Where a comparison of several runs goes (default: the first run's
    /// parent directory, in "comparison").
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> popinf::Result<()> {
    let ReportArgs { run_dirs, out } = args;
    let report = if run_dirs.len() == 1 && out.is_none() {
        popinf::run::report::build_report(&run_dirs[0])?
    } else {
        let out = out.unwrap_or_else(|| {
            run_dirs[0]
                .parent()
                .map_or_else(|| PathBuf::from("comparison"), |p| p.join("comparison"))
        });
        popinf::run::report::build_comparison(&run_dirs, &out)?
    };
    println!(
        "wrote {} and {} figure files ({:.2} s)",
        report.report.display(),
        report.figures.len(),
        report.seconds
    );
    Ok(())
}
