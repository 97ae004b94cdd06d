//! `popinf fit`: a run file (TOML) or flags name the data, the population
//! model and its priors, the likelihood and the sampler; the run writes the
//! hyperposterior and its diagnostics to an output directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::catalog::{Measurements, SampleCatalog};
use crate::data::input::{InterimPriorSpec, read_measurements, read_samples};
use crate::error::{Error, Result};
use crate::inference::latent::{LatentGaussianModel, Parametrisation};
use crate::inference::method::{MethodSummary, ensemble_method, nuts_method, with_ess_rate};
use crate::inference::posterior::{Hyperposterior, LogDensity, SampleableModel};
use crate::inference::sampler::{
    ChainRecord, EnsembleSettings, EnsembleState, NutsDrawStats, NutsSettings, SamplerObserver,
};
use crate::inference::trace::Trace;
use crate::invalid;
use crate::likelihood::fused::SampleStorage;
use crate::likelihood::importance::ImportanceLikelihood;
use crate::likelihood::population::PopulationLikelihood;
use crate::model::library::{MODEL_NAMES, Population};
use crate::model::population::ModelSettings;
use crate::model::population::PopulationModel;
use crate::model::prior::Hyperprior;
use crate::model::selection::{Counts, Selection};

/// The run file as written: every key optional; defaults fill the gaps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Seed of the sampler's random numbers.
    pub seed: Option<u64>,
    /// Output directory.
    pub out: Option<PathBuf>,
    #[serde(default)]
    pub data: DataSection,
    #[serde(default)]
    pub model: ModelSection,
    /// Hyperparameter name -> prior, e.g. theta_mu = "uniform(-5, 5)".
    #[serde(default)]
    pub priors: BTreeMap<String, String>,
    #[serde(default)]
    pub likelihood: LikelihoodSection,
    #[serde(default)]
    pub sampler: SamplerSection,
    #[serde(default, skip_serializing_if = "is_default")]
    pub selection: SelectionSection,
    #[serde(default, skip_serializing_if = "is_default")]
    pub counts: CountsSection,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Per-object posterior samples (.csv, .npy, .npz).
    pub samples: Option<PathBuf>,
    /// Measurements x, sigma (.csv, .npy), for the hierarchical likelihood.
    pub measurements: Option<PathBuf>,
    /// "flat", "column", or a distribution such as "uniform(7, 13)".
    pub interim_prior: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Population model: one of [`MODEL_NAMES`].
    pub population: Option<String>,
    /// [lo, hi] of a bounded model (truncated_normal, schechter,
    /// double_schechter, power_law, broken_power_law).
    pub support: Option<[f64; 2]>,
    /// Mixture: number of Gaussian components.
    pub components: Option<usize>,
    /// Binned: bin edges.
    pub edges: Option<Vec<f64>>,
    /// Binned: sd of the Gaussian prior on neighbouring log heights.
    pub smoothness: Option<f64>,
}

/// Selection effects on the true values (one of limit, completeness,
/// injections).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectionSection {
    /// Completeness limit: objects are detected if and only if mu > limit.
    pub limit: Option<f64>,
    /// CSV with columns x, completeness (linear interpolation).
    pub completeness: Option<PathBuf>,
    /// Found injections: .npz with 1-D arrays `values`, `ln_p_draw`, or a
    /// CSV with those columns.
    pub injections: Option<PathBuf>,
    /// Injections drawn in all (found or not).
    pub n_draw: Option<f64>,
    /// Require Neff_sel > this times the number of objects (default 4).
    pub min_neff_per_object: Option<f64>,
    /// Reject hyperparameters where that fails (default true).
    pub reject_low_neff: Option<bool>,
}

/// How the number of objects enters: "shape" (default), "rate" (Poisson
/// with a free expected number), "volume" (Poisson for a model with an
/// amplitude over a survey volume).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsSection {
    pub form: Option<String>,
    /// Survey volume (e.g. Mpc^3; phi* then comes in Mpc^-3 dex^-1).
    pub volume: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodSection {
    /// "importance", "naive" or "hierarchical".
    pub kind: Option<String>,
    /// Correct ln L_i by half its Monte Carlo variance (importance only).
    pub bias_correction: Option<bool>,
    /// "non-centred" or "centred" (hierarchical only).
    pub parametrisation: Option<String>,
    /// "f64" (default) or "f32": how the importance kernel streams the
    /// samples (gaussian model only; float64 arithmetic either way).
    pub storage: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSection {
    /// "nuts" or "ensemble".
    pub name: Option<String>,
    pub chains: Option<usize>,
    pub tune: Option<u64>,
    pub draws: Option<u64>,
    pub target_accept: Option<f64>,
    pub max_depth: Option<u64>,
    /// Ensemble only: walkers.
    pub walkers: Option<usize>,
}

/// Every key a run file may hold, for "did you mean" suggestions.
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "seed",
            "out",
            "data",
            "model",
            "priors",
            "likelihood",
            "sampler",
            "selection",
            "counts",
        ],
    ),
    ("data", &["samples", "measurements", "interim_prior"]),
    (
        "model",
        &["population", "support", "components", "edges", "smoothness"],
    ),
    (
        "selection",
        &[
            "limit",
            "completeness",
            "injections",
            "n_draw",
            "min_neff_per_object",
            "reject_low_neff",
        ],
    ),
    ("counts", &["form", "volume"]),
    (
        "likelihood",
        &["kind", "bias_correction", "parametrisation", "storage"],
    ),
    (
        "sampler",
        &[
            "name",
            "chains",
            "tune",
            "draws",
            "target_accept",
            "max_depth",
            "walkers",
        ],
    ),
];

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j + 1] + 1)
                .min(cur[j] + 1)
                .min(prev[j] + usize::from(ca != *cb));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " (did you mean 'x'?)" when a known name is close.
pub fn suggestion(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

fn check_keys(shown: &str, table: &toml::Table) -> Result<()> {
    for (section, known) in KNOWN_KEYS {
        let (table, prefix) = if section.is_empty() {
            (Some(table), String::new())
        } else {
            (
                table.get(*section).and_then(|v| v.as_table()),
                format!("{section}."),
            )
        };
        let Some(table) = table else { continue };
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                return invalid!(
                    "{shown}: unknown key '{prefix}{key}'{}; known keys here: {}",
                    suggestion(key, known),
                    known.join(", ")
                );
            }
        }
    }
    Ok(())
}

impl RunFile {
    /// Reads a run file; relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::Invalid(format!("{shown}: {e}")))?;
        check_keys(&shown, &table)?;
        let mut run: RunFile = toml::from_str(&text).map_err(|e| Error::Invalid(format!("{shown}: {e}")))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let rebase = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        };
        rebase(&mut run.data.samples);
        rebase(&mut run.data.measurements);
        rebase(&mut run.out);
        rebase(&mut run.selection.completeness);
        rebase(&mut run.selection.injections);
        Ok(run)
    }

    /// Values set in `other` replace those here (flags over the file).
    pub fn override_with(mut self, other: RunFile) -> Self {
        fn take<T>(a: &mut Option<T>, b: Option<T>) {
            if b.is_some() {
                *a = b;
            }
        }
        let flag_samples = other.data.samples.is_some() && other.data.measurements.is_none();
        let flag_measurements = other.data.measurements.is_some() && other.data.samples.is_none();
        take(&mut self.seed, other.seed);
        take(&mut self.out, other.out);
        take(&mut self.data.samples, other.data.samples);
        take(&mut self.data.measurements, other.data.measurements);
        take(&mut self.data.interim_prior, other.data.interim_prior);
        take(&mut self.model.population, other.model.population);
        take(&mut self.model.support, other.model.support);
        take(&mut self.counts.volume, other.counts.volume);
        take(&mut self.selection.limit, other.selection.limit);
        take(&mut self.likelihood.kind, other.likelihood.kind);
        take(
            &mut self.likelihood.bias_correction,
            other.likelihood.bias_correction,
        );
        take(
            &mut self.likelihood.parametrisation,
            other.likelihood.parametrisation,
        );
        take(&mut self.likelihood.storage, other.likelihood.storage);
        take(&mut self.sampler.name, other.sampler.name);
        take(&mut self.sampler.chains, other.sampler.chains);
        take(&mut self.sampler.tune, other.sampler.tune);
        take(&mut self.sampler.draws, other.sampler.draws);
        take(&mut self.sampler.target_accept, other.sampler.target_accept);
        take(&mut self.sampler.max_depth, other.sampler.max_depth);
        take(&mut self.sampler.walkers, other.sampler.walkers);
        self.priors.extend(other.priors);
        // A flag giving measurements replaces samples from the file, and
        // the other way round.
        if flag_samples {
            self.data.measurements = None;
        }
        if flag_measurements {
            self.data.samples = None;
        }
        self
    }

    /// Every default filled in and every name checked.
    pub fn resolve(&self) -> Result<FitConfig> {
        let population = self.model.population.clone().unwrap_or_else(|| "gaussian".into());
        let counts = self.counts_form()?;
        let model = self.population_model(&population, matches!(counts, Counts::Volume(_)))?;
        let data = match (&self.data.samples, &self.data.measurements) {
            (Some(s), None) => DataSource::Samples(s.clone()),
            (None, Some(m)) => DataSource::Measurements(m.clone()),
            (Some(_), Some(_)) => {
                return invalid!("give either samples or measurements, not both");
            }
            (None, None) => {
                return invalid!(
                    "no data: set data.samples (per-object posterior samples) or data.measurements (x, sigma)"
                );
            }
        };
        let default_kind = match data {
            DataSource::Samples(_) => "importance",
            DataSource::Measurements(_) => "hierarchical",
        };
        let kind = self
            .likelihood
            .kind
            .clone()
            .unwrap_or_else(|| default_kind.into());
        let kinds = ["importance", "naive", "hierarchical"];
        if !kinds.contains(&kind.as_str()) {
            return invalid!(
                "unknown likelihood '{kind}'{} (use importance, naive or hierarchical)",
                suggestion(&kind, &kinds)
            );
        }
        match (&data, kind.as_str()) {
            (DataSource::Samples(_), "hierarchical") => {
                return invalid!(
                    "the hierarchical likelihood needs measurements (x, sigma): set data.measurements, \
                     or use likelihood importance for samples"
                );
            }
            (DataSource::Measurements(_), "importance" | "naive") => {
                return invalid!(
                    "the {kind} likelihood needs per-object samples: set data.samples, or use the \
                     hierarchical likelihood for measurements"
                );
            }
            _ => {}
        }
        let interim_prior: InterimPriorSpec = match &self.data.interim_prior {
            Some(s) => s.parse()?,
            None => InterimPriorSpec::Flat,
        };
        if let (DataSource::Measurements(_), false) = (&data, population == "gaussian") {
            return invalid!(
                "the hierarchical likelihood over measurements supports the gaussian population only; \
                 give per-object samples for the {population} model"
            );
        }
        let mut param_names: Vec<String> = model.param_names();
        if counts == Counts::Rate {
            param_names.push("rate".into());
        }
        let mut priors = Vec::with_capacity(param_names.len());
        for name in &param_names {
            let Some(spec) = self.priors.get(name) else {
                return invalid!(
                    "hyperparameter {name} has no prior; add it, e.g. --prior '{name}=uniform(0, 2)' \
                     or under [priors] in the run file"
                );
            };
            let prior: Hyperprior = spec
                .parse()
                .map_err(|e: Error| Error::Invalid(format!("prior of {name}: {e}")))?;
            priors.push(prior);
        }
        let names: Vec<&str> = param_names.iter().map(String::as_str).collect();
        if let Some(extra) = self.priors.keys().find(|k| !param_names.contains(k)) {
            return invalid!(
                "prior given for '{extra}', which the {population} model does not have{} (its hyperparameters: {})",
                suggestion(extra, &names),
                param_names.join(", ")
            );
        }
        let sampler = self.sampler.name.clone().unwrap_or_else(|| "nuts".into());
        if !["nuts", "ensemble"].contains(&sampler.as_str()) {
            return invalid!(
                "unknown sampler '{sampler}'{} (use nuts or ensemble)",
                suggestion(&sampler, &["nuts", "ensemble"])
            );
        }
        let parametrisation = match self
            .likelihood
            .parametrisation
            .as_deref()
            .unwrap_or("non-centred")
        {
            "non-centred" | "noncentred" | "non-centered" => Parametrisation::NonCentred,
            "centred" | "centered" => Parametrisation::Centred,
            other => return invalid!("unknown parametrisation '{other}' (use non-centred or centred)"),
        };
        let storage = match self.likelihood.storage.as_deref().unwrap_or("f64") {
            "f64" | "float64" => SampleStorage::F64,
            // Checked here (the rule with_storage applies) so that the run
            // fails before any data is read.
            "f32" | "float32" => {
                let fused = crate::model::population::PopulationModel::has_quadratic_form(&model);
                SampleStorage::F32.check(fused, &format!("'{population}'"))?;
                SampleStorage::F32
            }
            other => return invalid!("unknown likelihood.storage '{other}' (use f64 or f32)"),
        };
        let defaults = NutsSettings::default();
        let selection = self.selection_spec()?;
        if matches!(data, DataSource::Measurements(_))
            && (selection != SelectionSpec::None || counts != Counts::Shape)
        {
            return invalid!("selection effects and counts need per-object samples (data.samples)");
        }
        let mut cfg = FitConfig {
            data,
            interim_prior,
            population,
            model,
            selection,
            counts,
            param_names,
            priors,
            likelihood: kind,
            bias_correction: self.likelihood.bias_correction.unwrap_or(true),
            parametrisation,
            storage,
            sampler,
            chains: self.sampler.chains.unwrap_or(defaults.chains),
            tune: self.sampler.tune.unwrap_or(defaults.tune),
            draws: self.sampler.draws.unwrap_or(defaults.draws),
            target_accept: self.sampler.target_accept.unwrap_or(defaults.target_accept),
            max_depth: self.sampler.max_depth.unwrap_or(defaults.max_depth),
            walkers: self.sampler.walkers.unwrap_or(32),
            seed: self.seed.unwrap_or(0),
            out: self.out.clone().unwrap_or_else(|| PathBuf::from("popinf-fit")),
            resolved: RunFile::default(),
        };
        cfg.resolved = self.resolved_file(&cfg);
        Ok(cfg)
    }

    fn counts_form(&self) -> Result<Counts> {
        let form = self.counts.form.clone().unwrap_or_else(|| {
            if self.counts.volume.is_some() {
                "volume"
            } else {
                "shape"
            }
            .into()
        });
        match (form.as_str(), self.counts.volume) {
            ("shape", None) => Ok(Counts::Shape),
            ("rate", None) => Ok(Counts::Rate),
            ("volume", Some(v)) if v > 0.0 && v.is_finite() => Ok(Counts::Volume(v)),
            ("volume", Some(v)) => invalid!("counts.volume must be positive and finite, got {v}"),
            ("volume", None) => invalid!("counts.form = \"volume\" needs counts.volume (e.g. in Mpc^3)"),
            ("shape" | "rate", Some(_)) => {
                invalid!("counts.volume is only used with counts.form = \"volume\"")
            }
            (other, _) => invalid!(
                "unknown counts form '{other}'{} (use shape, rate or volume)",
                suggestion(other, &["shape", "rate", "volume"])
            ),
        }
    }

    fn population_model(&self, name: &str, with_amplitude: bool) -> Result<Population> {
        let settings = ModelSettings {
            name: name.to_string(),
            support: self.model.support,
            components: self.model.components,
            edges: self.model.edges.clone(),
            smoothness: self.model.smoothness,
            with_amplitude,
        };
        let Some(model) = Population::from_settings(name, &settings)? else {
            return invalid!(
                "unknown population model '{name}'{} (available: {})",
                suggestion(name, MODEL_NAMES),
                MODEL_NAMES.join(", ")
            );
        };
        model.validate()?;
        model.check_size()?;
        Ok(model)
    }

    fn selection_spec(&self) -> Result<SelectionSpec> {
        let s = &self.selection;
        let given = [
            s.limit.is_some(),
            s.completeness.is_some(),
            s.injections.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return invalid!("give one of selection.limit, selection.completeness and selection.injections");
        }
        if let Some(l) = s.limit {
            if !l.is_finite() {
                return invalid!("selection.limit must be finite, got {l}");
            }
            return Ok(SelectionSpec::Limit(l));
        }
        if let Some(p) = &s.completeness {
            return Ok(SelectionSpec::Table(p.clone()));
        }
        if let Some(p) = &s.injections {
            let Some(n_draw) = s.n_draw else {
                return invalid!(
                    "selection.injections needs selection.n_draw, the number of injections drawn in all"
                );
            };
            return Ok(SelectionSpec::Injections {
                path: p.clone(),
                n_draw,
                min_neff_per_object: s.min_neff_per_object.unwrap_or(4.0),
                reject: s.reject_low_neff.unwrap_or(true),
            });
        }
        Ok(SelectionSpec::None)
    }

    /// The run file with every default filled in from the resolved `cfg`
    /// (so defaults live in one place), as saved beside the results.
    fn resolved_file(&self, cfg: &FitConfig) -> RunFile {
        let mut r = self.clone();
        r.seed = Some(cfg.seed);
        r.out = Some(cfg.out.clone());
        r.data.interim_prior.get_or_insert_with(|| "flat".into());
        r.model.population = Some(cfg.population.clone());
        r.likelihood.kind = Some(cfg.likelihood.clone());
        r.likelihood.bias_correction = Some(cfg.bias_correction);
        r.likelihood.storage = Some(cfg.storage.name().into());
        r.likelihood.parametrisation = Some(
            match cfg.parametrisation {
                Parametrisation::NonCentred => "non-centred",
                Parametrisation::Centred => "centred",
            }
            .into(),
        );
        r.sampler = SamplerSection {
            name: Some(cfg.sampler.clone()),
            chains: Some(cfg.chains),
            tune: Some(cfg.tune),
            draws: Some(cfg.draws),
            target_accept: Some(cfg.target_accept),
            max_depth: Some(cfg.max_depth),
            walkers: Some(cfg.walkers),
        };
        if let Counts::Volume(v) = cfg.counts {
            r.counts.volume = Some(v);
        }
        r.counts.form = Some(
            match cfg.counts {
                Counts::Shape => "shape",
                Counts::Rate => "rate",
                Counts::Volume(_) => "volume",
            }
            .into(),
        );
        // Absolute paths, so the saved file works from its own folder.
        for p in [
            &mut r.data.samples,
            &mut r.data.measurements,
            &mut r.out,
            &mut r.selection.completeness,
            &mut r.selection.injections,
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(abs) = std::path::absolute(&*p) {
                *p = abs;
            }
        }
        r
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    Samples(PathBuf),
    Measurements(PathBuf),
}

/// A selection effect as configured (files not yet read).
#[derive(Debug, Clone, PartialEq)]
pub enum SelectionSpec {
    None,
    Limit(f64),
    Table(PathBuf),
    Injections {
        path: PathBuf,
        n_draw: f64,
        min_neff_per_object: f64,
        reject: bool,
    },
}

/// A run with every choice made.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    pub data: DataSource,
    pub interim_prior: InterimPriorSpec,
    pub population: String,
    pub model: Population,
    pub selection: SelectionSpec,
    pub counts: Counts,
    pub param_names: Vec<String>,
    pub priors: Vec<Hyperprior>,
    pub likelihood: String,
    pub bias_correction: bool,
    pub parametrisation: Parametrisation,
    pub storage: SampleStorage,
    pub sampler: String,
    pub chains: usize,
    pub tune: u64,
    pub draws: u64,
    pub target_accept: f64,
    pub max_depth: u64,
    pub walkers: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub resolved: RunFile,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct FitDataInfo {
    pub file: String,
    pub n_obj: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_samples_total: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FitSummary {
    pub data: FitDataInfo,
    pub methods: BTreeMap<String, MethodSummary>,
}

/// What a fit produced.
pub struct FitResult {
    pub summary: FitSummary,
    pub trace: Trace,
    /// NUTS per-draw statistics (None for the ensemble).
    pub nuts_stats: Option<NutsDrawStats>,
    /// Ensemble: ln posterior of each kept draw, chain-major.
    pub ensemble_ln_prob: Option<Vec<f64>>,
    /// Importance fits: the population-informed per-object summaries.
    pub objects_csv: Option<Vec<u8>>,
}

/// Every object needs a sample inside the population model's support.
/// `ids[i]` is object i's index in the input file.
fn check_support(file: &str, catalog: &SampleCatalog, ids: &[usize], model: &Population) -> Result<()> {
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

/// xi at the posterior, and for injections the smallest Neff_sel over the
/// checked draws.
fn selection_diagnostics(
    like: &PopulationLikelihood<'_>,
    draws: &[Vec<f64>],
) -> Option<crate::inference::method::SelectionDiagnostics> {
    if matches!(like.selection, Selection::None) || draws.is_empty() {
        return None;
    }
    let p = like.model.n_params();
    let mut xi: Vec<f64> = Vec::new();
    let mut n_eff_min = f64::INFINITY;
    let mut g = vec![0.0; p];
    for d in draws {
        let (ln_xi, est) = like.selection.ln_xi_grad(&like.model, &d[..p], &mut g);
        xi.push(ln_xi.exp());
        if let Some(e) = est {
            n_eff_min = n_eff_min.min(e.n_eff);
        }
    }
    xi.sort_by(f64::total_cmp);
    let injections = matches!(like.selection, Selection::Injections { .. });
    Some(crate::inference::method::SelectionDiagnostics {
        xi_median: crate::math::stats::quantile_sorted(&xi, 0.5),
        n_eff_min: injections.then_some(n_eff_min),
        n_eff_per_object_min: injections.then_some(n_eff_min / like.n_obj as f64),
    })
}

/// Weighted quantile: the sample-midpoint CDF, interpolated linearly.
fn weighted_quantile(sorted: &[(f64, f64)], total: f64, q: f64) -> f64 {
    let mut cum = 0.0;
    let mut prev: Option<(f64, f64)> = None;
    for &(x, w) in sorted {
        let c = (cum + 0.5 * w) / total;
        cum += w;
        if c >= q {
            return match prev {
                Some((px, pc)) if c > pc => px + (x - px) * (q - pc) / (c - pc),
                _ => x,
            };
        }
        prev = Some((x, c));
    }
    sorted.last().map_or(f64::NAN, |s| s.0)
}

/// `objects.csv`: each object's posterior under the inferred population,
/// its samples re-weighted by p(mu | theta) P_det / pi, the normalised
/// weights averaged over up to 100 hyperposterior draws.
/// `ids[i]` is object i's index in the input file.
pub fn objects_csv(
    catalog: &SampleCatalog,
    ids: &[usize],
    model: &Population,
    trace: &Trace,
) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    let p = model.n_params();
    let draws: Vec<Vec<f64>> = spread_draws(trace, 100)
        .into_iter()
        .map(|d| d[..p].to_vec())
        .collect();
    let dim = catalog.dim();
    let rows: Vec<String> = (0..catalog.n_obj())
        .into_par_iter()
        .map(|i| {
            let obj = catalog.object(i);
            let s = obj.n_samples();
            let mut weight = vec![0.0; s];
            let mut ln_w = vec![0.0; s];
            for theta in &draws {
                model.ln_pdf_batch(theta, obj.values, &mut ln_w);
                for (j, lw) in ln_w.iter_mut().enumerate() {
                    *lw -= obj.ln_prior(j);
                }
                let m = ln_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    continue;
                }
                let total: f64 = ln_w.iter().map(|lw| (lw - m).exp()).sum();
                for (w, lw) in weight.iter_mut().zip(&ln_w) {
                    *w += (lw - m).exp() / total;
                }
            }
            let total: f64 = weight.iter().sum();
            let ess = total * total / weight.iter().map(|w| w * w).sum::<f64>();
            let mut row = format!("{}", ids[i]);
            for k in 0..dim {
                let mut pairs: Vec<(f64, f64)> =
                    (0..s).map(|j| (obj.values[j * dim + k], weight[j])).collect();
                let mean = pairs.iter().map(|(x, w)| x * w).sum::<f64>() / total;
                let var = pairs.iter().map(|(x, w)| w * (x - mean).powi(2)).sum::<f64>() / total;
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let q = |q| weighted_quantile(&pairs, total, q);
                row.push_str(&format!(
                    ",{mean:?},{:?},{:?},{:?},{:?}",
                    var.sqrt(),
                    q(0.16),
                    q(0.5),
                    q(0.84)
                ));
            }
            row.push_str(&format!(",{ess:.1}\n"));
            row
        })
        .collect();
    let mut out = String::from("object");
    for k in 0..dim {
        let suffix = if dim == 1 { String::new() } else { format!("_{k}") };
        for col in ["mean", "sd", "q16", "q50", "q84"] {
            out.push_str(&format!(",{col}{suffix}"));
        }
    }
    out.push_str(",ess\n");
    for r in rows {
        out.push_str(&r);
    }
    Ok(out.into_bytes())
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

/// What an interrupted run left: the chains it finished, and the run it
/// belonged to (the resolved run file without its output directory).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub fingerprint: String,
    /// NUTS: the chains finished so far (nuts-rs cannot save a chain
    /// mid-way, so NUTS checkpoints whole chains).
    pub chains: Vec<ChainRecord>,
    /// Ensemble: its exact state after the last checkpointed step.
    #[serde(default)]
    pub ensemble: Option<EnsembleState>,
}

pub const CHECKPOINT_NAME: &str = "checkpoint.json";
/// The ensemble's step history, raw little-endian f64: positions, then
/// ln posteriors.
pub const CHECKPOINT_BIN_NAME: &str = "checkpoint.bin";

fn f64s_to_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bytes_to_f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

impl FitConfig {
    /// The run's identity for resuming: everything but the output folder.
    pub fn fingerprint(&self) -> String {
        let mut r = self.resolved.clone();
        r.out = None;
        toml::to_string(&r).unwrap_or_default()
    }
}

/// Forwards to the caller's observer and saves every finished NUTS chain
/// to `checkpoint.json` in the output directory, so a killed run can
/// resume (`popinf fit --resume`) without sampling those chains again.
pub struct Checkpointing<'a> {
    inner: &'a dyn SamplerObserver,
    path: PathBuf,
    fingerprint: String,
    saved: std::sync::Mutex<Vec<ChainRecord>>,
    error: std::sync::Mutex<Option<Error>>,
    /// Ensemble: seconds between saves of its state, and the last save.
    every: std::time::Duration,
    last: std::sync::Mutex<Instant>,
}

impl<'a> Checkpointing<'a> {
    pub fn new(
        cfg: &FitConfig,
        inner: &'a dyn SamplerObserver,
        already: &[ChainRecord],
        every_secs: f64,
    ) -> Self {
        Self {
            inner,
            path: cfg.out.join(CHECKPOINT_NAME),
            fingerprint: cfg.fingerprint(),
            saved: std::sync::Mutex::new(already.to_vec()),
            error: std::sync::Mutex::new(None),
            every: std::time::Duration::from_secs_f64(every_secs.max(0.0)),
            last: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn write(&self, file: &CheckpointFile) {
        let json = serde_json::to_vec(file).expect("plain numbers serialise");
        if let Err(e) = crate::data::files::write_atomically(&self.path, &json) {
            self.error.lock().expect("checkpoint lock").get_or_insert(e);
        }
    }

    /// The first error met while writing a checkpoint, if any.
    pub fn take_error(&self) -> Option<Error> {
        self.error.lock().expect("checkpoint lock").take()
    }
}

impl SamplerObserver for Checkpointing<'_> {
    fn on_stage(&self, label: &str) {
        self.inner.on_stage(label)
    }
    fn on_start(&self, chains: usize, iterations: u64) {
        self.inner.on_start(chains, iterations)
    }
    fn on_draw(&self, chain: usize, tuning: bool, diverging: bool) {
        self.inner.on_draw(chain, tuning, diverging)
    }
    fn on_finish(&self) {
        self.inner.on_finish()
    }
    fn should_stop(&self) -> bool {
        self.inner.should_stop()
    }
    fn on_chain_done(&self, record: &ChainRecord) {
        let mut saved = self.saved.lock().expect("checkpoint lock");
        saved.push(record.clone());
        self.write(&CheckpointFile {
            fingerprint: self.fingerprint.clone(),
            chains: saved.clone(),
            ensemble: None,
        });
    }
    fn checkpoint_due(&self) -> bool {
        self.last.lock().expect("checkpoint lock").elapsed() >= self.every
    }
    fn on_ensemble_state(&self, state: &EnsembleState) {
        *self.last.lock().expect("checkpoint lock") = Instant::now();
        // The history first, then the JSON that says how much of it counts:
        // a crash between the two leaves the previous, consistent pair.
        let mut bytes = f64s_to_bytes(&state.chain);
        bytes.extend(f64s_to_bytes(&state.ln_prob));
        let bin = self.path.with_file_name(CHECKPOINT_BIN_NAME);
        if let Err(e) = crate::data::files::write_atomically(&bin, &bytes) {
            self.error.lock().expect("checkpoint lock").get_or_insert(e);
            return;
        }
        self.write(&CheckpointFile {
            fingerprint: self.fingerprint.clone(),
            chains: Vec::new(),
            ensemble: Some(state.clone()),
        });
    }
}

/// What an interrupted run saved in `cfg.out`; an error if there is no
/// checkpoint or it belongs to a different run.
pub fn load_checkpoint(cfg: &FitConfig) -> Result<CheckpointFile> {
    let path = cfg.out.join(CHECKPOINT_NAME);
    let text = std::fs::read(&path).map_err(|_| {
        Error::Invalid(format!(
            "--resume: no checkpoint at {}; run without --resume to start afresh",
            path.display()
        ))
    })?;
    let file: CheckpointFile = serde_json::from_slice(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: unreadable checkpoint ({e}); delete it to start afresh",
            path.display()
        ))
    })?;
    if file.fingerprint != cfg.fingerprint() {
        return invalid!(
            "{}: the checkpoint belongs to a different run (data, model, priors or sampler settings \
             changed); delete it or run without --resume",
            path.display()
        );
    }
    let mut file = file;
    if let Some(state) = file.ensemble.as_mut() {
        let bin = path.with_file_name(CHECKPOINT_BIN_NAME);
        let bytes = std::fs::read(&bin).map_err(|source| Error::Io {
            path: bin.clone(),
            source,
        })?;
        let values = bytes_to_f64s(&bytes);
        let n_chain = state.step * state.pos.len();
        let n_lp = state.step * state.lp.len();
        if values.len() < n_chain + n_lp {
            return invalid!(
                "{}: shorter than the checkpoint says; delete both checkpoint files to start afresh",
                bin.display()
            );
        }
        state.chain = values[..n_chain].to_vec();
        state.ln_prob = values[n_chain..n_chain + n_lp].to_vec();
    }
    Ok(file)
}

/// Runs the fit on loaded data, continuing from `resume` (the checkpoint of
/// an interrupted run of the same configuration) when given.
pub fn run_fit(
    cfg: &FitConfig,
    data: &LoadedData,
    observer: &dyn SamplerObserver,
    resume: CheckpointFile,
) -> Result<FitResult> {
    let CheckpointFile {
        chains: finished,
        ensemble: ensemble_state,
        ..
    } = resume;
    let started = Instant::now();
    let file = match &cfg.data {
        DataSource::Samples(p) | DataSource::Measurements(p) => p.display().to_string(),
    };
    let nuts = NutsSettings {
        chains: cfg.chains,
        tune: cfg.tune,
        draws: cfg.draws,
        target_accept: cfg.target_accept,
        max_depth: cfg.max_depth,
        seed: cfg.seed,
        ..NutsSettings::default()
    };
    let ensemble = EnsembleSettings {
        n_walkers: cfg.walkers,
        n_steps: (cfg.tune + cfg.draws) as usize,
        n_burn: cfg.tune as usize,
        seed: cfg.seed,
        ..EnsembleSettings::default()
    };
    let names: Vec<&str> = cfg.param_names.iter().map(String::as_str).collect();
    observer.on_stage(&format!("fit ({}, {})", cfg.likelihood, cfg.sampler));
    let mut objects = None;
    let (info, mut method, trace, nuts_stats, ln_prob) = match data {
        LoadedData::Samples { catalog, selection } => {
            // P_det on the true values re-weights every sample; the naive
            // fit, which takes each median as the truth, keeps the objects
            // whose median could have been detected.
            let selected = if cfg.likelihood == "naive" {
                selection.select_medians(catalog)
            } else {
                selection.select_samples(catalog)
            }
            .map_err(|e| Error::Invalid(format!("{file}: {e}")))?;
            let mut notes = Vec::new();
            if !selected.left_out.is_empty() {
                let shown: Vec<String> = selected.left_out.iter().take(10).map(|i| i.to_string()).collect();
                notes.push(if cfg.likelihood == "naive" {
                    format!(
                        "naive: {} of {} objects have a median the survey could not detect and were left out",
                        selected.left_out.len(),
                        catalog.n_obj()
                    )
                } else {
                    format!(
                        "{} object(s) have no sample inside the selection (e.g. object {}) and were left out: \
                         their likelihood cannot be estimated from these samples; more samples per object \
                         would keep them",
                        selected.left_out.len(),
                        shown.join(", ")
                    )
                });
            }
            let catalog_used: &SampleCatalog = &selected.catalog;
            let ids = &selected.ids;
            check_support(&file, catalog_used, ids, &cfg.model)?;
            let inner = ImportanceLikelihood::new(catalog_used, cfg.model.clone())?
                .with_bias_correction(cfg.bias_correction && cfg.likelihood == "importance")
                .with_storage(cfg.storage)?;
            let like = PopulationLikelihood::new(
                inner,
                cfg.model.clone(),
                selection.clone(),
                cfg.counts,
                catalog_used.n_obj(),
            )?;
            let post = Hyperposterior::new(like, cfg.priors.clone())?;
            let info = FitDataInfo {
                file,
                n_obj: catalog.n_obj(),
                n_samples_total: Some(catalog.total_samples()),
            };
            let (mut m, trace, stats, lp) = sample_posterior(
                &post,
                cfg,
                &nuts,
                &ensemble,
                observer,
                started,
                &names,
                finished,
                ensemble_state,
            )?;
            let draws = spread_draws(&trace, 20);
            if cfg.likelihood == "importance"
                && let Some(d) = m.diagnostics.as_mut()
            {
                let p = cfg.model.n_params();
                let model_draws: Vec<Vec<f64>> = draws.iter().map(|d| d[..p].to_vec()).collect();
                d.importance_sampling = post.likelihood().inner.reliability_over(&model_draws);
            }
            if let Some(d) = m.diagnostics.as_mut() {
                d.selection = selection_diagnostics(post.likelihood(), &draws);
            }
            m.warnings.extend(notes);
            if cfg.likelihood == "importance" {
                objects = Some(objects_csv(catalog_used, ids, &cfg.model, &trace)?);
            }
            (info, m.clone(), trace, stats, lp)
        }
        LoadedData::Measurements(meas) => {
            let model = LatentGaussianModel::new(meas, cfg.priors[0], cfg.priors[1], cfg.parametrisation)?;
            if cfg.sampler != "nuts" {
                return invalid!(
                    "the hierarchical model has {} parameters; sample it with NUTS (sampler = \"nuts\")",
                    model.dim()
                );
            }
            let (m, run) = nuts_method(&model, &nuts, observer, started, &names, finished)?;
            let info = FitDataInfo {
                file,
                n_obj: meas.n_obj(),
                n_samples_total: None,
            };
            (info, m, run.trace, Some(run.stats), None)
        }
    };
    method.wall_s = started.elapsed().as_secs_f64();
    let method = with_ess_rate(method);
    Ok(FitResult {
        summary: FitSummary {
            data: info,
            methods: [(cfg.likelihood.clone(), method)].into(),
        },
        trace,
        nuts_stats,
        ensemble_ln_prob: ln_prob,
        objects_csv: objects,
    })
}

type Sampled = (MethodSummary, Trace, Option<NutsDrawStats>, Option<Vec<f64>>);

#[allow(clippy::too_many_arguments)]
fn sample_posterior<L: crate::likelihood::importance::HyperLikelihood>(
    post: &Hyperposterior<L>,
    cfg: &FitConfig,
    nuts: &NutsSettings,
    ensemble: &EnsembleSettings,
    observer: &dyn SamplerObserver,
    started: Instant,
    names: &[&str],
    finished: Vec<ChainRecord>,
    ensemble_state: Option<EnsembleState>,
) -> Result<Sampled> {
    if cfg.sampler == "nuts" {
        let (m, run) = nuts_method(post, nuts, observer, started, names, finished)?;
        Ok((m, run.trace, Some(run.stats), None))
    } else {
        let start = post.initial_point();
        let (m, trace, ln_prob) = ensemble_method(post, &start, ensemble, observer, started, ensemble_state)?;
        Ok((m, trace, None, Some(ln_prob)))
    }
}

/// `n` draws (natural units, hyperparameters only) spread evenly over a trace.
pub fn spread_draws(trace: &Trace, n: usize) -> Vec<Vec<f64>> {
    let total = trace.n_chains * trace.n_draws;
    let p = trace.n_params();
    (0..n.min(total))
        .map(|j| trace.draws[(j * total / n) * p..][..p].to_vec())
        .collect()
}

/// `draws.csv`: `chain,draw,<params>`, what PyMC's `trace_to_dataframe` gave.
pub fn draws_csv(trace: &Trace) -> Vec<u8> {
    let mut out = String::with_capacity(trace.draws.len() * 20);
    out.push_str("chain,draw,");
    out.push_str(&trace.param_names.join(","));
    out.push('\n');
    let p = trace.n_params();
    for c in 0..trace.n_chains {
        for d in 0..trace.n_draws {
            out.push_str(&format!("{c},{d}"));
            for v in &trace.draws[(c * trace.n_draws + d) * p..][..p] {
                out.push(',');
                out.push_str(&format!("{v:?}"));
            }
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// `draws.npz`: each hyperparameter as a chains x draws array (ArviZ's
/// layout); the latent values of a hierarchical fit as one array `mu` of
/// shape chains x draws x objects.
pub fn draws_npz(trace: &Trace, n_hyper: usize) -> Result<Vec<u8>> {
    use ndarray::{Array2, Array3};
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut npz = ndarray_npy::NpzWriter::new_compressed(&mut buf);
    let npz_err = |e: ndarray_npy::WriteNpzError| Error::Invalid(format!("writing draws.npz: {e}"));
    for k in 0..n_hyper.min(trace.n_params()) {
        let a = Array2::from_shape_fn((trace.n_chains, trace.n_draws), |(c, d)| {
            trace.draws[(c * trace.n_draws + d) * trace.n_params() + k]
        });
        npz.add_array(trace.param_names[k].as_str(), &a)
            .map_err(npz_err)?;
    }
    let n_latent = trace.n_params().saturating_sub(n_hyper);
    if n_latent > 0 {
        let a = Array3::from_shape_fn((trace.n_chains, trace.n_draws, n_latent), |(c, d, i)| {
            trace.draws[(c * trace.n_draws + d) * trace.n_params() + n_hyper + i]
        });
        npz.add_array("mu", &a).map_err(npz_err)?;
    }
    npz.finish().map_err(npz_err)?;
    Ok(buf.into_inner())
}

/// `stats.csv`: NUTS per-draw statistics, or the ensemble's ln posterior.
pub fn stats_csv(result: &FitResult) -> Vec<u8> {
    let t = &result.trace;
    let mut out = String::new();
    if let Some(s) = &result.nuts_stats {
        out.push_str(
            "chain,draw,diverging,tree_depth,max_depth_reached,step_size,energy,acceptance,n_steps\n",
        );
        for c in 0..t.n_chains {
            for d in 0..t.n_draws {
                let i = c * t.n_draws + d;
                out.push_str(&format!(
                    "{c},{d},{},{},{},{:?},{:?},{:?},{}\n",
                    u8::from(s.diverging[i]),
                    s.tree_depth[i],
                    u8::from(s.max_depth_reached[i]),
                    s.step_size[i],
                    s.energy[i],
                    s.acceptance[i],
                    s.n_steps[i]
                ));
            }
        }
    } else if let Some(lp) = &result.ensemble_ln_prob {
        out.push_str("chain,draw,ln_posterior\n");
        for c in 0..t.n_chains {
            for d in 0..t.n_draws {
                out.push_str(&format!("{c},{d},{:?}\n", lp[c * t.n_draws + d]));
            }
        }
    }
    out.into_bytes()
}

/// Writes every output file into `cfg.out`, each atomically.
pub fn write_outputs(cfg: &FitConfig, result: &FitResult) -> Result<Vec<PathBuf>> {
    let dir = &cfg.out;
    let n_hyper = cfg.param_names.len();
    let json = serde_json::to_string_pretty(&result.summary).expect("plain numbers serialise");
    let resolved = toml::to_string_pretty(&cfg.resolved)
        .map_err(|e| Error::Invalid(format!("cannot write the resolved run file: {e}")))?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("summary.json", json.into_bytes()),
        ("draws.csv", draws_csv(&result.trace)),
        ("draws.npz", draws_npz(&result.trace, n_hyper)?),
        ("stats.csv", stats_csv(result)),
        ("run.resolved.toml", resolved.into_bytes()),
    ];
    let mut files = files;
    if let Some(objects) = &result.objects_csv {
        files.push(("objects.csv", objects.clone()));
    }
    crate::data::files::write_files(dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    /// Under a N(0, 1) population, an object measured as x = 1.5 with
    /// sigma = 1 (posterior samples N(1.5, 1), flat interim prior) has the
    /// population-informed posterior N(0.75, sqrt(1/2)).
    #[test]
    fn objects_csv_gives_the_shrunk_posterior() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(9);
        let samples: Vec<Vec<f64>> = [1.5, -0.4]
            .iter()
            .map(|&x| {
                (0..20_000)
                    .map(|_| {
                        let e: f64 = StandardNormal.sample(&mut rng);
                        x + e
                    })
                    .collect()
            })
            .collect();
        let catalog = SampleCatalog::from_objects(&samples, None).unwrap();
        // A hyperposterior concentrated at the truth.
        let trace = Trace {
            param_names: vec!["theta_mu".into(), "theta_sigma".into()],
            n_chains: 1,
            n_draws: 10,
            draws: [0.0, 1.0].repeat(10),
        };
        let csv = String::from_utf8(
            objects_csv(
                &catalog,
                &[7, 8],
                &Population::Gaussian(crate::model::gaussian::Gaussian),
                &trace,
            )
            .unwrap(),
        )
        .unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "object,mean,sd,q16,q50,q84,ess");
        let sd = 0.5f64.sqrt();
        for (line, (id, x)) in lines[1..].iter().zip([(7, 1.5), (8, -0.4)]) {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
            assert_eq!(v[0], f64::from(id));
            let mean = x / 2.0;
            // Monte Carlo error ~ sd / sqrt(ESS ~ 10^4) ~ 0.01.
            assert!((v[1] - mean).abs() < 0.04, "{line}");
            assert!((v[2] - sd).abs() < 0.04, "{line}");
            assert!((v[3] - (mean - sd)).abs() < 0.05, "{line}");
            assert!((v[4] - mean).abs() < 0.05, "{line}");
            assert!((v[5] - (mean + sd)).abs() < 0.05, "{line}");
        }
    }

    #[test]
    fn weighted_quantiles_of_equal_weights_interpolate() {
        let pairs: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), 1.0)).collect();
        // Midpoint CDF: 0.1, 0.3, 0.5, 0.7, 0.9 at 0..4.
        assert!((weighted_quantile(&pairs, 5.0, 0.5) - 2.0).abs() < 1e-12);
        assert!((weighted_quantile(&pairs, 5.0, 0.2) - 0.5).abs() < 1e-12);
    }
}
