//! The `popinf` command: parses arguments, calls the library, prints.
//! Each subcommand is a module of [`cmd`]; no numerics live here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod print;
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
    Demo(cmd::demo::DemoArgs),
    /// Fit a population model to a catalog (a run file and/or flags).
    Fit(Box<cmd::fit::FitArgs>),
    /// ArviZ's summary table for posterior draws from any sampler.
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Simulation-based calibration: are a method's posteriors calibrated?
    Sbc(cmd::sbc::SbcArgs),
    /// Simulate a catalogue (smf: a stellar mass function survey).
    Simulate {
        #[command(subcommand)]
        what: cmd::simulate::SimulateCommand,
    },
    /// Redraw the figures and report.html of a demo or fit output
    /// directory; given several fit directories, one report comparing them.
    Report(cmd::report::ReportArgs),
    /// The hierarchical model in plate notation, as Graphviz DOT and SVG.
    Graph(cmd::graph::GraphArgs),
    /// Time parts of popinf.
    Bench {
        #[command(subcommand)]
        what: cmd::bench::BenchCommand,
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
        Command::Demo(args) => cmd::demo::run(args),
        Command::Fit(args) => cmd::fit::run(*args),
        Command::Diagnose(args) => cmd::diagnose::run(args),
        Command::Sbc(args) => cmd::sbc::run(args),
        Command::Simulate { what } => cmd::simulate::run(what),
        Command::Report(args) => cmd::report::run(args),
        Command::Graph(args) => cmd::graph::run(args),
        Command::Bench { what } => cmd::bench::run(what),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popinf: error: {e}");
            ExitCode::from(2)
        }
    }
}
