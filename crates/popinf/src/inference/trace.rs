//! Posterior draws in natural units: chains x draws x parameters.

use std::collections::BTreeMap;
use std::path::Path;

use crate::data::files::io_error;
use crate::diagnostics::convergence::Convergence;
use crate::diagnostics::summary::ParamSummary;
use crate::error::{Error, Result};
use crate::invalid;

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub param_names: Vec<String>,
    pub n_chains: usize,
    pub n_draws: usize,
    /// `draws[(chain * n_draws + draw) * n_params + k]`.
    pub draws: Vec<f64>,
}

impl Trace {
    pub fn n_params(&self) -> usize {
        self.param_names.len()
    }

    /// One parameter's draws of one chain, in draw order.
    pub fn chain_param(&self, chain: usize, k: usize) -> Vec<f64> {
        let p = self.n_params();
        (0..self.n_draws)
            .map(|d| self.draws[(chain * self.n_draws + d) * p + k])
            .collect()
    }

    /// One parameter's draws of all chains, chain after chain.
    pub fn param(&self, k: usize) -> Vec<f64> {
        self.draws
            .iter()
            .skip(k)
            .step_by(self.n_params())
            .copied()
            .collect()
    }

    /// A trace of the named parameters only, in the order given.
    pub fn select(&self, names: &[&str]) -> crate::Result<Trace> {
        let idx: Vec<usize> = names
            .iter()
            .map(|name| {
                self.param_names
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| crate::Error::Invalid(format!("trace has no parameter named '{name}'")))
            })
            .collect::<crate::Result<_>>()?;
        let p = self.n_params();
        Ok(Trace {
            param_names: names.iter().map(|n| n.to_string()).collect(),
            n_chains: self.n_chains,
            n_draws: self.n_draws,
            draws: self
                .draws
                .chunks(p)
                .flat_map(|row| idx.iter().map(move |&k| row[k]))
                .collect(),
        })
    }

    /// Summaries of the named parameters, in the order given.
    pub fn summaries_of(&self, names: &[&str]) -> crate::Result<Vec<ParamSummary>> {
        names
            .iter()
            .map(|name| {
                let k =
                    self.param_names.iter().position(|p| p == name).ok_or_else(|| {
                        crate::Error::Invalid(format!("trace has no parameter named '{name}'"))
                    })?;
                Ok(self.summary(k))
            })
            .collect()
    }

    /// Every parameter's summary, with ArviZ's convergence diagnostics.
    pub fn summaries(&self) -> Vec<ParamSummary> {
        (0..self.n_params()).map(|k| self.summary(k)).collect()
    }

    /// One parameter's summary, with ArviZ's convergence diagnostics.
    pub fn summary(&self, k: usize) -> ParamSummary {
        let chains: Vec<Vec<f64>> = (0..self.n_chains).map(|c| self.chain_param(c, k)).collect();
        let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
        ParamSummary {
            convergence: Some(Convergence::from_chains(&refs)),
            ..ParamSummary::from_draws(&self.param(k))
        }
    }
}

/// Reads posterior draws from a CSV file with columns `chain,draw,<param>...`
/// (what PyMC's `trace_to_dataframe` or popinf's `draws.csv` hold). Rows may
/// come in any order; every chain needs the same number of draws.
pub fn read_draws_csv(path: &Path) -> Result<Trace> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("{shown}: cannot read the header line: {e}")))?
        .iter()
        .map(String::from)
        .collect();
    if header.len() < 3 || header[0] != "chain" || header[1] != "draw" {
        return invalid!(
            "{shown}: the header must be 'chain,draw,<param>,...' (got '{}')",
            header.join(",")
        );
    }
    let names = header[2..].to_vec();
    // chain -> (draw index, values)
    let mut chains: BTreeMap<u64, Vec<(u64, Vec<f64>)>> = BTreeMap::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| Error::Invalid(format!("{shown}, line {line}: {e}")))?;
        if record.len() != header.len() {
            return invalid!(
                "{shown}, line {line}: {} fields, but the header has {}",
                record.len(),
                header.len()
            );
        }
        let index = |k: usize| -> Result<u64> {
            record[k].parse::<u64>().map_err(|_| {
                Error::Invalid(format!(
                    "{shown}, line {line}, column '{}': '{}' is not a non-negative integer",
                    header[k], &record[k]
                ))
            })
        };
        let (chain, draw) = (index(0)?, index(1)?);
        let mut values = Vec::with_capacity(names.len());
        for k in 2..record.len() {
            let v: f64 = record[k].parse().map_err(|_| {
                Error::Invalid(format!(
                    "{shown}, line {line}, column '{}': '{}' is not a number",
                    header[k], &record[k]
                ))
            })?;
            if !v.is_finite() {
                return invalid!(
                    "{shown}, line {line}, column '{}': value {v} is not finite",
                    header[k]
                );
            }
            values.push(v);
        }
        chains.entry(chain).or_default().push((draw, values));
    }
    if chains.is_empty() {
        return invalid!("{shown}: no draws (the file has only a header)");
    }
    let n_draws = chains.values().next().map_or(0, |c| c.len());
    for (chain, rows) in &chains {
        if rows.len() != n_draws {
            return invalid!(
                "{shown}: chain {chain} has {} draws but chain {} has {n_draws}; every chain needs the same number",
                rows.len(),
                chains.keys().next().expect("non-empty")
            );
        }
    }
    let mut draws = Vec::with_capacity(chains.len() * n_draws * names.len());
    for (chain, mut rows) in chains.clone() {
        rows.sort_by_key(|r| r.0);
        if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
            return invalid!("{shown}: chain {chain} has draw {} twice", w[0].0);
        }
        for (_, values) in rows {
            draws.extend(values);
        }
    }
    Ok(Trace {
        param_names: names,
        n_chains: chains.len(),
        n_draws,
        draws,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("popinf-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_draws_in_any_row_order() {
        let p = write("ok.csv", "chain,draw,a,b\n1,0,5,6\n0,1,3,4\n0,0,1,2\n1,1,7,8\n");
        let t = read_draws_csv(&p).unwrap();
        assert_eq!((t.n_chains, t.n_draws), (2, 2));
        assert_eq!(t.chain_param(0, 0), vec![1.0, 3.0]);
        assert_eq!(t.chain_param(1, 1), vec![6.0, 8.0]);
    }

    #[test]
    fn errors_name_file_line_and_value() {
        let cases = [
            ("h.csv", "a,b\n1,2\n", "header must be"),
            (
                "n.csv",
                "chain,draw,a\n0,0,1\n0,1,x\n",
                "line 3, column 'a': 'x' is not a number",
            ),
            (
                "f.csv",
                "chain,draw,a\n0,0,inf\n",
                "line 2, column 'a': value inf is not finite",
            ),
            (
                "u.csv",
                "chain,draw,a\n0,0,1\n0,1,1\n1,0,1\n",
                "chain 1 has 1 draws but chain 0 has 2",
            ),
            ("e.csv", "chain,draw,a\n", "no draws"),
            ("d.csv", "chain,draw,a\n0,0,1\n0,0,2\n", "draw 0 twice"),
        ];
        for (name, text, needle) in cases {
            let p = write(name, text);
            let err = read_draws_csv(&p).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(name), "{name}: {err}");
        }
    }
}
