//! `popinf graph`: the hierarchical model in plate notation.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GraphArgs {
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
}

pub fn run(args: GraphArgs) -> popinf::Result<()> {
    if args.model != "gaussian" {
        return Err(popinf::Error::Invalid(format!(
            "unknown population model '{}' (available: gaussian)",
            args.model
        )));
    }
    let [mu, sigma] = popinf::model::prior::NOTEBOOK_PRIORS;
    let g = popinf::report::graph::ModelGraph::gaussian(&mu, &sigma, args.n_obj);
    let Some(out) = args.out else {
        print!("{}", g.dot());
        return Ok(());
    };
    let (dot, svg) = (out.with_extension("dot"), out.with_extension("svg"));
    popinf::data::files::write_atomically(&dot, g.dot().as_bytes())?;
    popinf::data::files::write_atomically(&svg, g.svg().as_bytes())?;
    println!("wrote {} and {}", dot.display(), svg.display());
    Ok(())
}
