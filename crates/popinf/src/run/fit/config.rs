//! The run file: its sections and keys, the checks that name an unknown key
//! and suggest the known one, and its resolution into a [`FitConfig`]
//! (defaults filled in, the flags applied).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::input::InterimPriorSpec;
use crate::error::{Error, Result};
use crate::inference::latent::Parametrisation;
use crate::inference::sampler::{MassMatrix, NutsSettings};
use crate::invalid;
use crate::likelihood::fused::SampleStorage;
use crate::model::library::{MODEL_NAMES, Population};
use crate::model::population::ModelSettings;
use crate::model::population::PopulationModel;
use crate::model::prior::{Hyperprior, Support};
use crate::model::selection::Counts;

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
    /// "importance", "gmm", "naive" or "hierarchical".
    pub kind: Option<String>,
    /// Correct ln L_i by half its Monte Carlo variance (importance only).
    pub bias_correction: Option<bool>,
    /// "non-centred" or "centred" (hierarchical only).
    pub parametrisation: Option<String>,
    /// "f64" (default) or "f32": how the importance kernel streams the
    /// samples (the models with a fused kernel; float64 arithmetic either way).
    pub storage: Option<String>,
    /// gmm only: Gauss–Legendre nodes per mixture component where the
    /// integral has no closed form.
    pub gmm_nodes: Option<usize>,
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
    /// NUTS: "diag" or "low_rank".
    pub mass_matrix: Option<String>,
    /// Where the chains start (natural units, every hyperparameter; each
    /// chain jittered around it); the priors' centres when absent.
    pub init: Option<BTreeMap<String, f64>>,
    /// Ensemble only: walkers.
    pub walkers: Option<usize>,
}

/// Every key a run file may hold, by section ("" for the top level).
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
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
        &[
            "kind",
            "bias_correction",
            "parametrisation",
            "storage",
            "gmm_nodes",
        ],
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
            "mass_matrix",
            "init",
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
/// A prior valid for a parameter living on `domain`, for error messages.
fn example_prior(domain: Support) -> String {
    match domain {
        Support::Real => "normal(0, 10)".into(),
        Support::Positive => "halfnormal(1)".into(),
        Support::Interval(a, b) => format!("uniform({a}, {b})"),
    }
}

fn domain_words(domain: Support) -> String {
    match domain {
        Support::Real => "any real value".into(),
        Support::Positive => "positive".into(),
        Support::Interval(a, b) => format!("between {a} and {b}"),
    }
}

/// A prior whose support leaves its parameter's domain puts mass where the
/// model is undefined: the density would be -inf there, or everywhere.
fn check_prior_domain(name: &str, prior: &Hyperprior, domain: Support) -> Result<()> {
    let inside = match (domain, prior.support()) {
        (Support::Real, _) => true,
        (Support::Positive, Support::Positive) => true,
        (Support::Positive, Support::Interval(lo, _)) => lo >= 0.0,
        (Support::Interval(a, b), Support::Interval(lo, hi)) => lo >= a && hi <= b,
        _ => false,
    };
    if inside {
        return Ok(());
    }
    let fix = match (domain, prior) {
        (Support::Positive, Hyperprior::Normal { sd, .. }) => format!("halfnormal({sd})"),
        (Support::Positive, Hyperprior::Uniform { upper, .. }) if *upper > 0.0 => {
            format!("uniform(0, {upper})")
        }
        _ => example_prior(domain),
    };
    invalid!(
        "prior of {name}: {prior} puts mass outside {name}'s domain ({}); use e.g. '{name}={fix}'",
        domain_words(domain)
    )
}

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
        take(&mut self.likelihood.gmm_nodes, other.likelihood.gmm_nodes);
        take(&mut self.sampler.name, other.sampler.name);
        take(&mut self.sampler.chains, other.sampler.chains);
        take(&mut self.sampler.tune, other.sampler.tune);
        take(&mut self.sampler.draws, other.sampler.draws);
        take(&mut self.sampler.target_accept, other.sampler.target_accept);
        take(&mut self.sampler.max_depth, other.sampler.max_depth);
        take(&mut self.sampler.mass_matrix, other.sampler.mass_matrix);
        take(&mut self.sampler.init, other.sampler.init);
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
        let kinds = ["importance", "gmm", "naive", "hierarchical"];
        if !kinds.contains(&kind.as_str()) {
            return invalid!(
                "unknown likelihood '{kind}'{} (use importance, gmm, naive or hierarchical)",
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
            (DataSource::Measurements(_), "importance" | "gmm" | "naive") => {
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
        let names: Vec<&str> = param_names.iter().map(String::as_str).collect();
        // A misspelt name first: it also explains the "missing" prior.
        if let Some(extra) = self.priors.keys().find(|k| !param_names.contains(k)) {
            return invalid!(
                "prior given for '{extra}', which the {population} model does not have{} (its hyperparameters: {})",
                suggestion(extra, &names),
                param_names.join(", ")
            );
        }
        let mut domains = model.param_domains();
        if counts == Counts::Rate {
            domains.push(Support::Positive);
        }
        let missing: Vec<String> = param_names
            .iter()
            .zip(&domains)
            .filter(|(name, _)| !self.priors.contains_key(*name))
            .map(|(name, d)| format!("--prior '{name}={}' ({})", example_prior(*d), domain_words(*d)))
            .collect();
        if !missing.is_empty() {
            return invalid!(
                "{} of the {population} model's hyperparameters have no prior; add {} (or the same under \
                 [priors] in the run file), choosing priors that say what you know",
                missing.len(),
                missing.join(", ")
            );
        }
        let mut priors = Vec::with_capacity(param_names.len());
        for (name, domain) in param_names.iter().zip(&domains) {
            let spec = &self.priors[name];
            let prior: Hyperprior = spec
                .parse()
                .map_err(|e: Error| Error::Invalid(format!("prior of {name}: {e}")))?;
            check_prior_domain(name, &prior, *domain)?;
            priors.push(prior);
        }
        let init = match &self.sampler.init {
            None => None,
            Some(values) => {
                if let Some(extra) = values.keys().find(|k| !param_names.contains(k)) {
                    return invalid!(
                        "sampler.init gives a start for '{extra}', which the {population} model does not have{} \
                         (its hyperparameters: {})",
                        suggestion(extra, &names),
                        param_names.join(", ")
                    );
                }
                let missing: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !values.contains_key(*n))
                    .collect();
                if !missing.is_empty() {
                    return invalid!(
                        "sampler.init needs a start for every hyperparameter; missing: {}",
                        missing.join(", ")
                    );
                }
                for (name, prior) in param_names.iter().zip(&priors) {
                    let v = values[name];
                    if !prior.contains(v) {
                        return invalid!(
                            "sampler.init: {name} = {v} is outside the support of its prior {prior}"
                        );
                    }
                }
                Some(param_names.iter().map(|n| values[n]).collect())
            }
        };
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
                let fused = crate::model::population::PopulationModel::kernel_feature(&model).is_some();
                SampleStorage::F32.check(fused, &format!("'{population}'"))?;
                SampleStorage::F32
            }
            other => return invalid!("unknown likelihood.storage '{other}' (use f64 or f32)"),
        };
        let gmm_nodes = self
            .likelihood
            .gmm_nodes
            .unwrap_or(crate::likelihood::gmm::DEFAULT_NODES);
        if !(2..=256).contains(&gmm_nodes) {
            return invalid!("likelihood.gmm_nodes must be between 2 and 256, got {gmm_nodes}");
        }
        let defaults = NutsSettings::default();
        let mass_matrix = match self.sampler.mass_matrix.as_deref() {
            None => defaults.mass_matrix,
            Some(name) => match MassMatrix::from_name(name) {
                Some(m) => m,
                None => return invalid!("unknown sampler.mass_matrix '{name}' (use diag or low_rank)"),
            },
        };
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
            gmm_nodes,
            sampler,
            chains: self.sampler.chains.unwrap_or(defaults.chains),
            tune: self.sampler.tune.unwrap_or(defaults.tune),
            draws: self.sampler.draws.unwrap_or(defaults.draws),
            target_accept: self.sampler.target_accept.unwrap_or(defaults.target_accept),
            max_depth: self.sampler.max_depth.unwrap_or(defaults.max_depth),
            mass_matrix,
            init,
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
        if cfg.likelihood == "gmm" {
            r.likelihood.gmm_nodes = Some(cfg.gmm_nodes);
        }
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
            mass_matrix: Some(cfg.mass_matrix.name().to_string()),
            init: self.sampler.init.clone(),
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
    pub gmm_nodes: usize,
    pub sampler: String,
    pub chains: usize,
    pub tune: u64,
    pub draws: u64,
    pub target_accept: f64,
    pub max_depth: u64,
    pub mass_matrix: MassMatrix,
    /// Where the chains start (natural units, in parameter order).
    pub init: Option<Vec<f64>>,
    pub walkers: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub resolved: RunFile,
}
