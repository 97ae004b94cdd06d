//! Reading catalogs: per-object posterior samples (CSV wide or long, .npy,
//! .npz) and measurements (CSV `x,sigma`, .npy). Pure Rust. Errors name the
//! file, the line or object and sample, the value, and what to do.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::data::npy::{Npy, NpyError, NpzReader};

use crate::data::catalog::{Measurements, SampleCatalog};
use crate::error::{Error, Result};
use crate::invalid;
use crate::model::prior::Hyperprior;

/// Where ln pi of each sample comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InterimPriorSpec {
    /// Flat: ln pi = 0 (a constant shift of ln L).
    Flat,
    /// A column of the file (`ln_prior` in CSV long or .npz).
    Column,
    /// A named distribution, applied to every component of mu.
    Named(Hyperprior),
}

impl std::str::FromStr for InterimPriorSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "flat" => Ok(Self::Flat),
            "column" => Ok(Self::Column),
            other => Ok(Self::Named(other.parse().map_err(|e: Error| {
                Error::Invalid(format!(
                    "interim prior: {e} (or use 'flat', or 'column' for a per-sample ln_prior column)"
                ))
            })?)),
        }
    }
}

fn open(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return invalid!("{}: the file is empty", path.display());
    }
    Ok(file)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Reads per-object posterior samples; the format follows the extension
/// (`.csv`, `.npy`, `.npz`). A CSV whose header starts with `object` is in
/// long form (`object,value[,ln_prior]`, ragged), otherwise wide (one row
/// per object, one column per sample).
pub fn read_samples(path: &Path, interim: &InterimPriorSpec) -> Result<SampleCatalog> {
    let shown = path.display().to_string();
    let (dim, values, offsets, column) = match extension(path).as_str() {
        "csv" | "txt" => read_samples_csv(path)?,
        "npy" => {
            let (dim, values, offsets) = read_samples_npy(path)?;
            (dim, values, offsets, None)
        }
        "npz" => read_samples_npz(path)?,
        #[cfg(feature = "fits")]
        "fits" | "fit" | "fz" => read_samples_fits(path)?,
        #[cfg(feature = "hdf5")]
        "h5" | "hdf5" | "he5" => read_samples_hdf5(path)?,
        #[cfg(not(feature = "fits"))]
        "fits" | "fit" | "fz" => {
            return invalid!(
                "{shown}: FITS support is not built in; rebuild with --features fits (needs libcfitsio-dev)"
            );
        }
        #[cfg(not(feature = "hdf5"))]
        "h5" | "hdf5" | "he5" => {
            return invalid!(
                "{shown}: HDF5 support is not built in; rebuild with --features hdf5 (needs libhdf5-dev)"
            );
        }
        other => {
            return invalid!("{shown}: unknown sample format '.{other}' (use .csv, .npy or .npz)");
        }
    };
    build_catalog(&shown, dim, values, offsets, column, interim)
}

/// Checks every value, applies the interim prior, and builds the catalog,
/// with errors naming the object and sample.
fn build_catalog(
    shown: &str,
    dim: usize,
    values: Vec<f64>,
    offsets: Vec<usize>,
    column: Option<Vec<f64>>,
    interim: &InterimPriorSpec,
) -> Result<SampleCatalog> {
    if offsets.len() < 2 {
        return invalid!("{shown}: no objects found");
    }
    let locate = |flat: usize| {
        let object = offsets.partition_point(|&o| o <= flat) - 1;
        (object, flat - offsets[object])
    };
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        let (object, sample) = locate(bad / dim);
        return invalid!(
            "{shown}: object {object}, sample {sample}: value {} is not finite; remove or fix that sample",
            values[bad]
        );
    }
    let catalog = match interim {
        InterimPriorSpec::Flat => {
            if column.is_some() {
                return invalid!(
                    "{shown}: the file has an ln_prior column but the interim prior is set to 'flat'; \
                     set interim_prior = \"column\" to use it"
                );
            }
            SampleCatalog::with_flat_prior(dim, values, 0.0, offsets)
        }
        InterimPriorSpec::Column => {
            let Some(lp) = column else {
                return invalid!(
                    "{shown}: interim_prior = \"column\" but the file has no ln_prior column; \
                     add one, or name the interim prior (e.g. \"uniform(7, 13)\")"
                );
            };
            if let Some(bad) = lp.iter().position(|v| !v.is_finite()) {
                let (object, sample) = locate(bad);
                return invalid!(
                    "{shown}: object {object}, sample {sample}: ln interim prior {} is not finite \
                     (a sample outside the interim prior's support cannot come from that posterior)",
                    lp[bad]
                );
            }
            SampleCatalog::new(dim, values, lp, offsets)
        }
        InterimPriorSpec::Named(prior) => {
            if column.is_some() {
                return invalid!(
                    "{shown}: the file has an ln_prior column and a named interim prior {prior} is set; \
                     use one: interim_prior = \"column\" or remove the column"
                );
            }
            let n = values.len() / dim;
            let mut lp = Vec::with_capacity(n);
            for j in 0..n {
                let mut total = 0.0;
                for &v in &values[j * dim..(j + 1) * dim] {
                    let l = prior.ln_pdf(v);
                    if !l.is_finite() {
                        let (object, sample) = locate(j);
                        return invalid!(
                            "{shown}: object {object}, sample {sample}: value {v} is outside the interim \
                             prior {prior}; the samples cannot come from a posterior under that prior"
                        );
                    }
                    total += l;
                }
                lp.push(total);
            }
            // A constant density (uniform) needs no per-sample column.
            if lp.iter().all(|&v| v == lp[0]) {
                SampleCatalog::with_flat_prior(dim, values, lp[0], offsets)
            } else {
                SampleCatalog::new(dim, values, lp, offsets)
            }
        }
    };
    catalog.map_err(|e| Error::Invalid(format!("{shown}: {e}")))
}

type Columns = (usize, Vec<f64>, Vec<usize>, Option<Vec<f64>>);

fn parse_number(shown: &str, line: usize, column: &str, field: &str) -> Result<f64> {
    field.trim().parse::<f64>().map_err(|_| {
        Error::Invalid(format!(
            "{shown}, line {line}, column {column}: '{}' is not a number",
            field.trim()
        ))
    })
}

fn read_samples_csv(path: &Path) -> Result<Columns> {
    let shown = path.display().to_string();
    let file = open(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let mut records = reader.records();
    let first = match records.next() {
        Some(r) => r.map_err(|e| Error::Invalid(format!("{shown}, line 1: {e}")))?,
        None => return invalid!("{shown}: the file is empty"),
    };
    let is_header = first.iter().any(|f| f.parse::<f64>().is_err());
    if is_header && first.get(0) == Some("object") {
        return read_long_csv(&shown, &first, records);
    }
    // Wide: one row per object; empty trailing fields make rows ragged.
    let mut values = Vec::new();
    let mut offsets = vec![0];
    let mut push_row = |line: usize, record: &csv::StringRecord| -> Result<()> {
        let start = values.len();
        for (k, field) in record.iter().enumerate() {
            if field.is_empty() {
                continue;
            }
            values.push(parse_number(&shown, line, &format!("{}", k + 1), field)?);
        }
        if values.len() == start {
            return invalid!(
                "{shown}, line {line}: object {} has no samples",
                offsets.len() - 1
            );
        }
        offsets.push(values.len());
        Ok(())
    };
    if !is_header {
        push_row(1, &first)?;
    }
    for (row, record) in records.enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| Error::Invalid(format!("{shown}, line {line}: {e}")))?;
        push_row(line, &record)?;
    }
    Ok((1, values, offsets, None))
}

fn read_long_csv(
    shown: &str,
    header: &csv::StringRecord,
    records: csv::StringRecordsIter<'_, BufReader<File>>,
) -> Result<Columns> {
    let names: Vec<&str> = header.iter().collect();
    let ln_prior_col = names.iter().position(|n| *n == "ln_prior");
    let value_cols: Vec<usize> = (1..names.len()).filter(|&k| Some(k) != ln_prior_col).collect();
    if value_cols.is_empty() {
        return invalid!(
            "{shown}: long form needs 'object' and at least one value column (e.g. object,value)"
        );
    }
    let dim = value_cols.len();
    // Objects in order of first appearance; rows of one object need not be
    // contiguous.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut per_object: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for (row, record) in records.enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| Error::Invalid(format!("{shown}, line {line}: {e}")))?;
        if record.len() != names.len() {
            return invalid!(
                "{shown}, line {line}: {} fields, but the header has {}",
                record.len(),
                names.len()
            );
        }
        let label = record[0].to_string();
        let next = index.len();
        let i = *index.entry(label).or_insert(next);
        if i == per_object.len() {
            per_object.push((Vec::new(), Vec::new()));
        }
        for &k in &value_cols {
            let v = parse_number(shown, line, &format!("'{}'", names[k]), &record[k])?;
            per_object[i].0.push(v);
        }
        if let Some(k) = ln_prior_col {
            let v = parse_number(shown, line, "'ln_prior'", &record[k])?;
            per_object[i].1.push(v);
        }
    }
    if per_object.is_empty() {
        return invalid!("{shown}: no samples (the file has only a header)");
    }
    let mut values = Vec::new();
    let mut column = ln_prior_col.map(|_| Vec::new());
    let mut offsets = vec![0];
    for (v, lp) in per_object {
        values.extend(v);
        if let Some(c) = column.as_mut() {
            c.extend(lp);
        }
        offsets.push(values.len() / dim);
    }
    Ok((dim, values, offsets, column))
}

/// An array's shape and its values in C order.
type Grid = (Vec<usize>, Vec<f64>);

/// An .npy or .npz array of float64 or float32 as f64, in C order; the
/// error names the file (and the array) and says what to do.
fn float_grid(npy: std::result::Result<Npy, NpyError>, shown: &str, array: Option<&str>) -> Result<Grid> {
    let which = array.map_or(String::new(), |a| format!(" array '{a}'"));
    match npy.and_then(Npy::into_f64_c_order) {
        Ok(grid) => Ok(grid),
        Err(NpyError::Dtype(desc)) => invalid!(
            "{shown}:{which} has unsupported dtype {desc}; save the samples as float64 or float32 \
             (e.g. np.save(path, samples.astype(np.float64)))"
        ),
        Err(NpyError::Format(e)) if array.is_some() => invalid!("{shown}: cannot read{which}: {e}"),
        Err(NpyError::Format(e)) => invalid!("{shown}: not a readable .npy file: {e}"),
    }
}

fn read_npy_grid(path: &Path) -> Result<Grid> {
    let file = open(path)?;
    float_grid(Npy::read(BufReader::new(file)), &path.display().to_string(), None)
}

/// (dim, values, offsets) from a 2-D objects x samples or 3-D objects x
/// samples x dims array.
fn rectangular(shown: &str, (shape, values): Grid) -> Result<(usize, Vec<f64>, Vec<usize>)> {
    let (n_obj, n_samp, dim) = match shape.as_slice() {
        [n, s] => (*n, *s, 1),
        [n, s, d] => (*n, *s, *d),
        _ => {
            return invalid!(
                "{shown}: samples array has shape {shape:?}; expected objects x samples (2-D) \
                 or objects x samples x dims (3-D)"
            );
        }
    };
    if n_obj == 0 || n_samp == 0 || dim == 0 {
        return invalid!("{shown}: samples array of shape {shape:?} is empty");
    }
    let offsets = (0..=n_obj).map(|i| i * n_samp).collect();
    Ok((dim, values, offsets))
}

fn read_samples_npy(path: &Path) -> Result<(usize, Vec<f64>, Vec<usize>)> {
    rectangular(&path.display().to_string(), read_npy_grid(path)?)
}

fn open_npz(path: &Path) -> Result<NpzReader<BufReader<File>>> {
    NpzReader::new(BufReader::new(open(path)?))
        .map_err(|e| Error::Invalid(format!("{}: not a readable .npz file: {e}", path.display())))
}

fn npz_array(npz: &mut NpzReader<BufReader<File>>, shown: &str, name: &str) -> Result<Option<Grid>> {
    match npz.by_name(name) {
        Ok(None) => Ok(None),
        found => float_grid(found.map(|a| a.expect("found")), shown, Some(name)).map(Some),
    }
}

fn read_samples_npz(path: &Path) -> Result<Columns> {
    let shown = path.display().to_string();
    let mut npz = open_npz(path)?;
    let Some(samples) = npz_array(&mut npz, &shown, "samples")? else {
        return invalid!("{shown}: no array named 'samples' (optional: 'ln_prior', 'counts')");
    };
    let counts = read_counts(&mut npz, &shown)?;
    let ln_prior = npz_array(&mut npz, &shown, "ln_prior")?.map(|(_, v)| v);
    assemble(&shown, samples, counts, ln_prior)
}

/// The catalog's flat storage from a `samples` array (objects x samples
/// [x dims], or flat with per-object `counts`) and an optional `ln_prior`;
/// shared by the .npz and HDF5 readers, which hold the same arrays.
fn assemble(
    shown: &str,
    samples: Grid,
    counts: Option<Vec<usize>>,
    ln_prior: Option<Vec<f64>>,
) -> Result<Columns> {
    let (dim, values, offsets) = match counts {
        None => rectangular(shown, samples)?,
        Some(counts) => {
            // Ragged: samples flat, (total,) or (total, dims).
            let (shape, values) = samples;
            let (total, dim) = match shape.as_slice() {
                [t] => (*t, 1),
                [t, d] => (*t, *d),
                _ => {
                    return invalid!(
                        "{shown}: with 'counts', 'samples' must be flat: (total,) or (total, dims), got {shape:?}"
                    );
                }
            };
            let mut offsets = Vec::with_capacity(counts.len() + 1);
            offsets.push(0);
            for (i, &c) in counts.iter().enumerate() {
                if c == 0 {
                    return invalid!("{shown}: object {i} has no samples (counts[{i}] = 0)");
                }
                offsets.push(offsets[i] + c);
            }
            if offsets[counts.len()] != total {
                return invalid!(
                    "{shown}: 'counts' add up to {} but 'samples' holds {total}; they must match",
                    offsets[counts.len()]
                );
            }
            (dim, values, offsets)
        }
    };
    if let Some(lp) = &ln_prior {
        let n = values.len() / dim;
        if lp.len() != n {
            return invalid!(
                "{shown}: 'ln_prior' has {} values for {n} samples; they must match",
                lp.len()
            );
        }
    }
    Ok((dim, values, offsets, ln_prior))
}

/// Non-negative per-object sample counts.
fn checked_counts(shown: &str, counts: &[i64]) -> Result<Vec<usize>> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            usize::try_from(c).map_err(|_| Error::Invalid(format!("{shown}: counts[{i}] = {c} is negative")))
        })
        .collect()
}

fn read_counts(npz: &mut NpzReader<BufReader<File>>, shown: &str) -> Result<Option<Vec<usize>>> {
    match npz
        .by_name("counts")
        .and_then(|a| a.map(Npy::into_integers).transpose())
    {
        Ok(None) => Ok(None),
        Ok(Some(counts)) => checked_counts(shown, &counts).map(Some),
        Err(e) => invalid!("{shown}: 'counts' must be an integer array (int64 or int32): {e}"),
    }
}

/// Reads the named numeric columns of a CSV file with a header line.
pub fn read_csv_columns(path: &Path, names: &[&str]) -> Result<Vec<Vec<f64>>> {
    let shown = path.display().to_string();
    let file = open(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Invalid(format!("{shown}: {e}")))?
        .iter()
        .map(String::from)
        .collect();
    let mut idx = Vec::new();
    for name in names {
        match header.iter().position(|h| h == name) {
            Some(i) => idx.push(i),
            None => {
                return invalid!(
                    "{shown}: the header needs columns {} (got '{}')",
                    names
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    header.join(",")
                );
            }
        }
    }
    let mut cols = vec![Vec::new(); names.len()];
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| Error::Invalid(format!("{shown}, line {line}: {e}")))?;
        for (k, &i) in idx.iter().enumerate() {
            let what = format!("'{}'", names[k]);
            cols[k].push(parse_number(&shown, line, &what, record.get(i).unwrap_or(""))?);
        }
    }
    Ok(cols)
}

/// Reads one float64 (or float32) array of an .npz file: its shape and
/// its values in C order.
pub fn read_npz_grid(path: &Path, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    let shown = path.display().to_string();
    match npz_array(&mut open_npz(path)?, &shown, name)? {
        Some(grid) => Ok(grid),
        None => invalid!("{shown}: no array named '{name}'"),
    }
}

/// Reads named 1-D float64 (or float32) arrays from an .npz file.
pub fn read_npz_vectors(path: &Path, names: &[&str]) -> Result<Vec<Vec<f64>>> {
    let shown = path.display().to_string();
    let mut npz = open_npz(path)?;
    names
        .iter()
        .map(|name| match npz_array(&mut npz, &shown, name)? {
            Some((shape, values)) if shape.len() == 1 => Ok(values),
            Some((shape, _)) => invalid!("{shown}: array '{name}' has shape {shape:?}; it must be 1-D"),
            None => invalid!("{shown}: no array named '{name}'"),
        })
        .collect()
}

/// Reads measurements: CSV with columns `x,sigma` (header required), or an
/// .npy array of shape (N, 2).
pub fn read_measurements(path: &Path) -> Result<Measurements> {
    let shown = path.display().to_string();
    let (x, sigma) = match extension(path).as_str() {
        "csv" | "txt" => {
            let mut cols = read_csv_columns(path, &["x", "sigma"])?;
            let sigma = cols.pop().expect("two columns");
            (cols.pop().expect("two columns"), sigma)
        }
        "npy" => {
            let (shape, data) = read_npy_grid(path)?;
            if shape.len() != 2 || shape[1] != 2 {
                return invalid!(
                    "{shown}: measurements array has shape {shape:?}; expected (N, 2) with columns x, sigma"
                );
            }
            (
                data.iter().step_by(2).copied().collect(),
                data.iter().skip(1).step_by(2).copied().collect(),
            )
        }
        other => return invalid!("{shown}: unknown measurements format '.{other}' (use .csv or .npy)"),
    };
    Measurements::new(x, sigma).map_err(|e| Error::Invalid(format!("{shown}: {e}")))
}

/// FITS: the first binary table (or the HDU named SAMPLES) holds either a
/// vector column `samples` (one row per object, a fixed number of samples)
/// with an optional vector column `ln_prior`, or the long form: scalar
/// columns `object` (integer), `value` and optional `ln_prior`, ragged.
#[cfg(feature = "fits")]
fn read_samples_fits(path: &Path) -> Result<Columns> {
    use fitsio::hdu::HduInfo;
    let shown = path.display().to_string();
    open(path)?;
    let fits_err = |e: fitsio::errors::Error| Error::Invalid(format!("{shown}: {e}"));
    let mut f = fitsio::FitsFile::open(path).map_err(fits_err)?;
    let hdu = match f.hdu("SAMPLES") {
        Ok(h) => h,
        Err(_) => f.hdu(1).map_err(|_| {
            Error::Invalid(format!(
                "{shown}: no binary table HDU (expected HDU 1 or one named SAMPLES)"
            ))
        })?,
    };
    let HduInfo::TableInfo {
        column_descriptions,
        num_rows,
        ..
    } = &hdu.info
    else {
        return invalid!("{shown}: the samples HDU is not a binary table");
    };
    let column = |name: &str| {
        column_descriptions
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    let n_rows = *num_rows;
    if n_rows == 0 {
        return invalid!("{shown}: the samples table has no rows");
    }
    if let Some(col) = column("samples") {
        let name = col.name.clone();
        let repeat = col.data_type.repeat.max(1);
        let values: Vec<f64> = hdu.read_col(&mut f, &name).map_err(fits_err)?;
        let ln_prior = match column("ln_prior") {
            Some(c) => Some(hdu.read_col::<f64>(&mut f, &c.name.clone()).map_err(fits_err)?),
            None => None,
        };
        let offsets = (0..=n_rows).map(|i| i * repeat).collect();
        return Ok((1, values, offsets, ln_prior));
    }
    let (Some(obj_col), Some(val_col)) = (column("object"), column("value")) else {
        return invalid!(
            "{shown}: the table needs a vector column 'samples', or columns 'object' and 'value'"
        );
    };
    let (obj_name, val_name) = (obj_col.name.clone(), val_col.name.clone());
    let objects: Vec<i64> = hdu.read_col(&mut f, &obj_name).map_err(fits_err)?;
    let values: Vec<f64> = hdu.read_col(&mut f, &val_name).map_err(fits_err)?;
    let ln_prior: Option<Vec<f64>> = match column("ln_prior") {
        Some(c) => Some(hdu.read_col(&mut f, &c.name.clone()).map_err(fits_err)?),
        None => None,
    };
    // Group rows by object id, in order of first appearance.
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for (r, id) in objects.iter().enumerate() {
        let next = index.len();
        let i = *index.entry(*id).or_insert(next);
        if i == rows.len() {
            rows.push(Vec::new());
        }
        rows[i].push(r);
    }
    let mut out_values = Vec::with_capacity(values.len());
    let mut out_prior = ln_prior.as_ref().map(|_| Vec::with_capacity(values.len()));
    let mut offsets = vec![0];
    for r in rows {
        for &k in &r {
            out_values.push(values[k]);
            if let (Some(o), Some(lp)) = (out_prior.as_mut(), ln_prior.as_ref()) {
                o.push(lp[k]);
            }
        }
        offsets.push(out_values.len());
    }
    Ok((1, out_values, offsets, out_prior))
}

/// HDF5: datasets `samples` (objects x samples [x dims], or flat with an
/// integer dataset `counts`) and optional `ln_prior`, as in .npz; float32
/// is converted on reading.
#[cfg(feature = "hdf5")]
fn read_samples_hdf5(path: &Path) -> Result<Columns> {
    let shown = path.display().to_string();
    open(path)?;
    let h5_err = |e: hdf5_metno::Error| Error::Invalid(format!("{shown}: {e}"));
    let file = hdf5_metno::File::open(path).map_err(h5_err)?;
    let Ok(ds) = file.dataset("samples") else {
        return invalid!("{shown}: no dataset named 'samples' (optional: 'ln_prior', 'counts')");
    };
    let shape = ds.shape();
    let dtype = ds.dtype().map_err(h5_err)?;
    if !matches!(
        dtype.to_descriptor(),
        Ok(hdf5_metno::types::TypeDescriptor::Float(_))
    ) {
        return invalid!("{shown}: dataset 'samples' is not floating point; store float64 or float32");
    }
    // read_raw gives the values in C order, as the dataset stores them.
    let data: Vec<f64> = ds.read_raw().map_err(h5_err)?;
    if data.len() != shape.iter().product::<usize>() {
        return invalid!(
            "{shown}: dataset 'samples' holds {} values for its shape {shape:?}",
            data.len()
        );
    }
    let samples = (shape, data);
    let counts = match file.dataset("counts") {
        Ok(c) => Some(checked_counts(&shown, &c.read_raw::<i64>().map_err(h5_err)?)?),
        Err(_) => None,
    };
    let ln_prior = match file.dataset("ln_prior") {
        Ok(lp) => Some(lp.read_raw::<f64>().map_err(h5_err)?),
        Err(_) => None,
    };
    assemble(&shown, samples, counts, ln_prior)
}
