//! Reading and writing files. Every error names the file, the line and the
//! value at fault, and says what to do.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::invalid;
use crate::trace::Trace;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
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

/// Writes `bytes` to a temporary file beside `path`, then renames it into
/// place, so a crash never leaves a half-written file.
/// Writes each (file name, contents) into `dir` with [`write_atomically`],
/// in order; returns the paths written.
pub fn write_files<N: AsRef<Path>>(dir: &Path, files: Vec<(N, Vec<u8>)>) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomically(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("popinf-io-{}", std::process::id()));
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
