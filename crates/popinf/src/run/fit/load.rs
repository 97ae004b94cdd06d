//! Reading what a resolved run names: the catalog or measurements, and the
//! selection's files; checks that the samples lie in the model's support.

use std::path::Path;

use super::config::{DataSource, FitConfig, SelectionSpec};
use crate::data::catalog::{Measurements, SampleCatalog};
use crate::data::input::{read_measurements, read_samples};
use crate::error::{Error, Result};
use crate::invalid;
use crate::model::library::Population;
use crate::model::selection::Selection;

/// The data, loaded and checked before anything is written.
pub enum LoadedData {
    Samples {
        catalog: SampleCatalog,
        selection: Selection,
    },
    Measurements(Measurements),
}

/// Reads a selection's files.
pub fn load_selection(spec: &SelectionSpec) -> Result<Selection> {
    let shown = |p: &Path| p.display().to_string();
    let selection = match spec {
        SelectionSpec::None => Selection::None,
        SelectionSpec::Limit(l) => Selection::Limit(*l),
        SelectionSpec::Table(path) => {
            let mut cols = crate::data::input::read_csv_columns(path, &["x", "completeness"])?;
            let c = cols.pop().expect("two columns");
            let x = cols.pop().expect("two columns");
            let table = Selection::Table { x, c };
            table
                .validate()
                .map_err(|e| Error::Invalid(format!("{}: {e}", shown(path))))?;
            table
        }
        SelectionSpec::Injections {
            path,
            n_draw,
            min_neff_per_object,
            reject,
        } => {
            let names = ["values", "ln_p_draw"];
            let mut cols = if path.extension().is_some_and(|e| e == "npz") {
                crate::data::input::read_npz_vectors(path, &names)?
            } else {
                crate::data::input::read_csv_columns(path, &names)?
            };
            let ln_p_draw = cols.pop().expect("two columns");
            let values = cols.pop().expect("two columns");
            let inj = Selection::Injections {
                values,
                ln_p_draw,
                n_draw: *n_draw,
                min_neff_per_object: *min_neff_per_object,
                reject: *reject,
            };
            inj.validate()
                .map_err(|e| Error::Invalid(format!("{}: {e}", shown(path))))?;
            inj
        }
    };
    Ok(selection)
}

/// Every object needs a sample inside the population model's support.
/// `ids[i]` is object i's index in the input file.
pub(crate) fn check_support(
    file: &str,
    catalog: &SampleCatalog,
    ids: &[usize],
    model: &Population,
) -> Result<()> {
    // The supports of bounded models are fixed settings, not parameters.
    let Some((lo, hi)) = model.support() else {
        return Ok(());
    };
    for (i, &id) in ids.iter().enumerate() {
        let obj = catalog.object(i);
        if !obj.values.iter().any(|&x| x >= lo && x <= hi) {
            let (min, max) = obj
                .values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            return invalid!(
                "{file}: object {}: none of its {} samples (from {min} to {max}) lies inside the population \
                 model's support [{lo}, {hi}]; widen model.support or remove the object",
                id,
                obj.n_samples()
            );
        }
    }
    Ok(())
}

pub fn load_data(cfg: &FitConfig) -> Result<LoadedData> {
    match &cfg.data {
        DataSource::Samples(p) => Ok(LoadedData::Samples {
            catalog: read_samples(p, &cfg.interim_prior)?,
            selection: load_selection(&cfg.selection)?,
        }),
        DataSource::Measurements(p) => Ok(LoadedData::Measurements(read_measurements(p)?)),
    }
}
