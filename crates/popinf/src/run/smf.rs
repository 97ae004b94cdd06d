//! A mock stellar-mass catalogue, the notebook's realistic target: log
//! masses drawn from a (double) Schechter mass function over a survey
//! volume, a completeness limit, and for each galaxy a non-Gaussian
//! posterior (skewed, wider at low mass, sometimes bimodal) sampled under a
//! non-flat interim prior, as an SED fit would give.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

use crate::data::simulate::derive_seed;
use crate::error::{Error, Result};
use crate::invalid;
use crate::math::special::norm_cdf;
use crate::model::library::Population;
use crate::model::population::PopulationModel;

#[derive(Debug, Clone, PartialEq)]
pub struct SmfSettings {
    /// Expected number of detected galaxies (the volume is set from it).
    pub n_gal: f64,
    pub n_samp: usize,
    pub seed: u64,
    /// The model's range in log10 M.
    pub support: (f64, f64),
    /// Completeness limit in log10 M (on the true mass).
    pub limit: f64,
    /// The mass function and its true parameters (model order).
    pub model: Population,
    pub truth: Vec<f64>,
    /// Fraction of galaxies with a second solution 0.45 dex above.
    pub bimodal_fraction: f64,
    /// Interim prior of the SED fits: pi(log10 M) ∝ M^slope on [6.5,
    /// 13.5]; slope 1 is a prior uniform in M (not in log M), as many SED
    /// codes use, and strongly non-flat in log M.
    pub interim_slope: f64,
    /// Skewness (shape) of the measurement error.
    pub skew: f64,
}

impl SmfSettings {
    /// Leja et al. (2020) at z ~ 0.2: log phi*_1 = -2.44, log phi*_2 =
    /// -2.89, log M* = 10.79, alpha_1 = -0.28, alpha_2 = -1.48.
    pub fn leja2020(n_gal: f64, seed: u64) -> Self {
        Self {
            n_gal,
            n_samp: 100,
            seed,
            support: (8.0, 12.5),
            limit: 9.0,
            model: Population::DoubleSchechter(crate::model::schechter::DoubleSchechter {
                lo: 8.0,
                hi: 12.5,
            }),
            truth: vec![10.79, -0.28, -1.48, -2.44, -2.89],
            bimodal_fraction: 0.05,
            interim_slope: 1.0,
            skew: -3.0,
        }
    }

    /// A single Schechter function (shape parameters log_m_star, alpha;
    /// the amplitude only sets the volume).
    pub fn single(n_gal: f64, seed: u64, log_m_star: f64, alpha: f64) -> Self {
        Self {
            model: Population::Schechter(crate::model::schechter::Schechter {
                lo: 8.0,
                hi: 12.5,
                amplitude: false,
            }),
            truth: vec![log_m_star, alpha],
            ..Self::leja2020(n_gal, seed)
        }
    }
}

/// The simulated catalogue.
#[derive(Debug, Clone)]
pub struct SmfCatalog {
    pub x_true: Vec<f64>,
    /// The observed value each posterior was computed from.
    pub observed: Vec<f64>,
    pub samples: Vec<Vec<f64>>,
    pub ln_prior: Vec<Vec<f64>>,
    pub bimodal: Vec<bool>,
    /// Survey volume, in the units phi* is per (e.g. Mpc^3).
    pub volume: f64,
    pub truth: BTreeMap<String, f64>,
}

/// Width of the measurement error at true log mass x: 0.07 dex for
/// massive galaxies, 0.2 dex below 10^9.
pub fn error_width(x: f64) -> f64 {
    0.07 + 0.13 * ((11.5 - x) / 2.5).clamp(0.0, 1.0)
}

/// ln of the skew-normal density with location m, scale w, shape a.
fn ln_skew_normal(d: f64, m: f64, w: f64, a: f64) -> f64 {
    let z = (d - m) / w;
    (2.0f64).ln() - w.ln() - 0.918_938_533_204_672_7 - 0.5 * z * z + norm_cdf(a * z).max(1e-300).ln()
}

/// ln p(d | x): the measurement model; bimodal galaxies have a second
/// solution 0.45 dex lower in mass for the same data.
pub fn ln_measurement(d: f64, x: f64, bimodal: bool, skew: f64) -> f64 {
    let w = error_width(x);
    let main = ln_skew_normal(d, x, w, skew);
    if !bimodal {
        return main;
    }
    let alias = ln_skew_normal(d, x + 0.45, w, skew);
    let (a, b) = (0.65f64.ln() + main, 0.35f64.ln() + alias);
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Draws from a 1-D density given by its log on [lo, hi]: tabulated on
/// `n` nodes, the piecewise-linear density's CDF inverted exactly.
fn sample_tabulated(
    ln_density: &dyn Fn(f64) -> f64,
    lo: f64,
    hi: f64,
    n: usize,
    uniforms: &[f64],
) -> Vec<f64> {
    let h = (hi - lo) / (n - 1) as f64;
    let ln_d: Vec<f64> = (0..n).map(|i| ln_density(lo + i as f64 * h)).collect();
    let m = ln_d.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let d: Vec<f64> = ln_d.iter().map(|l| (l - m).exp()).collect();
    let mut cdf = vec![0.0; n];
    for i in 1..n {
        cdf[i] = cdf[i - 1] + 0.5 * h * (d[i - 1] + d[i]);
    }
    let total = cdf[n - 1];
    uniforms
        .iter()
        .map(|&u| {
            let target = u * total;
            let i = cdf.partition_point(|&c| c < target).clamp(1, n - 1);
            lo + (i - 1) as f64 * h
                + crate::math::stats::invert_linear_cell(d[i - 1], d[i], h, target - cdf[i - 1])
        })
        .collect()
}

pub fn simulate_smf(s: &SmfSettings) -> Result<SmfCatalog> {
    s.model.validate()?;
    if s.truth.len() != s.model.n_params() || !s.model.valid(&s.truth) {
        return invalid!(
            "smf simulation: truth {:?} does not fit the {:?} model",
            s.truth,
            s.model
        );
    }
    if s.n_gal.is_nan() || s.n_gal < 1.0 || s.n_samp == 0 {
        return invalid!("smf simulation: need n_gal >= 1 and n_samp >= 1");
    }
    let (lo, hi) = s.support;
    if !(s.limit > lo && s.limit < hi) {
        return invalid!(
            "smf simulation: the completeness limit {} must lie inside the support [{lo}, {hi}]",
            s.limit
        );
    }
    // Expected detections = V * integral of Phi above the limit.
    let mut g = vec![0.0; s.model.n_params()];
    let ln_detected = s.model.ln_integral_grad(
        &s.truth,
        &|x| f64::from(u8::from(x > s.limit)),
        &[s.limit],
        &mut g,
    );
    let volume = s.n_gal / ln_detected.exp();
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(s.seed, 11));
    let n = Poisson::new(s.n_gal)
        .map_err(|e| Error::Invalid(format!("smf simulation: {e}")))?
        .sample(&mut rng) as usize;
    let n = n.max(1);
    let uniforms: Vec<f64> = (0..n).map(|_| rng.random()).collect();
    let ln_phi = |x: f64| s.model.ln_f_1d(&s.truth, x, None);
    let x_true = sample_tabulated(&ln_phi, s.limit, hi, 200_001, &uniforms);
    // ln pi(x) = a x ln 10 - ln(integral over [6.5, 13.5]).
    let a = s.interim_slope * std::f64::consts::LN_10;
    let ln_norm = if a.abs() < 1e-12 {
        7.0f64.ln()
    } else {
        let (lo_e, hi_e) = (a * 6.5, a * 13.5);
        let m = lo_e.max(hi_e);
        m + ((hi_e - m).exp() - (lo_e - m).exp()).abs().ln() - a.abs().ln()
    };
    let ln_interim = |x: f64| a * x - ln_norm;
    let mut catalog = SmfCatalog {
        x_true: Vec::with_capacity(n),
        observed: Vec::with_capacity(n),
        samples: Vec::with_capacity(n),
        ln_prior: Vec::with_capacity(n),
        bimodal: Vec::with_capacity(n),
        volume,
        truth: s
            .model
            .param_names()
            .into_iter()
            .zip(s.truth.iter().copied())
            .collect(),
    };
    // Each galaxy has its own random stream, so the catalogue is the same
    // whatever the number of threads.
    use rayon::prelude::*;
    let galaxies: Vec<(f64, f64, bool, Vec<f64>)> = x_true
        .par_iter()
        .enumerate()
        .map(|(i, &x)| {
            let mut rng =
                rand::rngs::ChaCha8Rng::seed_from_u64(derive_seed(derive_seed(s.seed, 12), i as u64));
            let bimodal = rng.random::<f64>() < s.bimodal_fraction;
            // Observed value from the measurement model: skew-normal noise
            // (Azzalini's representation), from the alias for a bimodal
            // galaxy's second solution.
            let shift = if bimodal && rng.random::<f64>() < 0.35 {
                0.45
            } else {
                0.0
            };
            let delta = s.skew / (1.0 + s.skew * s.skew).sqrt();
            let (u0, u1): (f64, f64) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
            let z = delta * u0.abs() + (1.0 - delta * delta).sqrt() * u1;
            let d = x + shift + error_width(x) * z;
            // The posterior under the interim prior, sampled on a fine
            // grid (4 dex in 2000 cells: 35 per 0.07 dex error width).
            let post = |xx: f64| ln_measurement(d, xx, bimodal, s.skew) + ln_interim(xx);
            let us: Vec<f64> = (0..s.n_samp).map(|_| rng.random()).collect();
            let (a, b) = ((d - 2.5).max(lo - 1.0), (d + 1.5).min(hi + 1.0));
            (x, d, bimodal, sample_tabulated(&post, a, b, 2001, &us))
        })
        .collect();
    for (x, d, bimodal, samples) in galaxies {
        catalog
            .ln_prior
            .push(samples.iter().map(|&v| ln_interim(v)).collect());
        catalog.samples.push(samples);
        catalog.x_true.push(x);
        catalog.observed.push(d);
        catalog.bimodal.push(bimodal);
    }
    Ok(catalog)
}

/// Writes `samples.npz` (`samples`, `ln_prior`: galaxies x samples;
/// `x_true`), `truth.json`, and the run files `run.toml` (importance) and
/// `run_naive.toml` (posterior medians as the truth) for `popinf fit`.
pub fn write_smf(dir: &Path, s: &SmfSettings, c: &SmfCatalog) -> Result<Vec<PathBuf>> {
    use crate::data::npy::{NpyData, NpzWriter};
    let n = c.samples.len();
    let grid =
        |v: &[Vec<f64>]| -> Vec<f64> { v.iter().flat_map(|row| row[..s.n_samp].iter().copied()).collect() };
    let write = || -> std::io::Result<Vec<u8>> {
        let mut npz = NpzWriter::new();
        npz.add("samples", &[n, s.n_samp], NpyData::F64(&grid(&c.samples)))?;
        npz.add("ln_prior", &[n, s.n_samp], NpyData::F64(&grid(&c.ln_prior)))?;
        npz.add("x_true", &[n], NpyData::F64(&c.x_true))?;
        npz.finish()
    };
    let npz_bytes = write().map_err(|e| Error::Invalid(format!("writing samples.npz: {e}")))?;
    let truth = serde_json::to_string_pretty(&c.truth).expect("plain numbers serialise");
    let (population, counts) = match s.model {
        Population::DoubleSchechter(_) => (
            "double_schechter",
            format!("[counts]\nform = \"volume\"\nvolume = {:?}\n", c.volume),
        ),
        _ => ("schechter", "[counts]\nform = \"shape\"\n".to_string()),
    };
    let priors = match s.model {
        Population::DoubleSchechter(_) => {
            "log_m_star = \"uniform(10, 11.5)\"\nalpha_1 = \"uniform(-1, 1)\"\nalpha_2 = \"uniform(-2.5, -1)\"\n\
             log_phi_star_1 = \"uniform(-5, -1)\"\nlog_phi_star_2 = \"uniform(-5, -1)\"\n"
        }
        _ => "log_m_star = \"uniform(10, 11.5)\"\nalpha = \"uniform(-2.5, 0.5)\"\n",
    };
    // Sampler settings measured on the seed-1 mocks to give R-hat < 1.01 and
    // bulk-ESS >= 400 for every parameter. With ~5000 galaxies the double
    // Schechter's parameters are correlated but identified: the low-rank mass
    // matrix follows them (1.6x the bulk-ESS per gradient of the diagonal
    // one). With fewer, phi*_1 can shrink until alpha_1 is free, a funnel the
    // low-rank matrix mixes badly in (R-hat 1.026 after 3000 draws) and the
    // diagonal one, with small steps, explores (R-hat 1.003, 0 divergences).
    let sampler = if s.n_gal >= 2500.0 {
        "# The parameters are correlated (the faint-end slope, phi*_2 and alpha_1 near its\n\
         # bound): the low-rank mass matrix follows them (1.6x the bulk-ESS per gradient of\n\
         # the diagonal one on the seed-1 mock); 2000 draws per chain give bulk-ESS >= 400.\n\
         [sampler]\nname = \"nuts\"\nchains = 4\ntune = 1000\ndraws = 2000\ntarget_accept = 0.9\n\
         mass_matrix = \"low_rank\"\n"
    } else {
        "# Few galaxies: phi*_1 can shrink until alpha_1 is free (a funnel), which the diagonal\n\
         # mass matrix with small steps explores; the low-rank one mixes badly there.\n\
         [sampler]\nname = \"nuts\"\nchains = 4\ntune = 1000\ndraws = 3000\ntarget_accept = 0.95\n\
         mass_matrix = \"diag\"\n"
    };
    let run = |kind: &str, out: &str| {
        format!(
            "# popinf simulate smf --seed {seed}: {n} galaxies above log M = {limit}, volume {vol:.6e} Mpc^3.\n\
             # phi* parameters are log10 of Mpc^-3 dex^-1.\n\
             seed = {seed}\nout = \"{out}\"\n\n[data]\nsamples = \"samples.npz\"\ninterim_prior = \"column\"\n\n\
             [model]\npopulation = \"{population}\"\nsupport = [{lo:?}, {hi:?}]\n\n[selection]\nlimit = {limit:?}\n\n\
             {counts}\n[priors]\n{priors}\n[likelihood]\nkind = \"{kind}\"\n\n{sampler}",
            seed = s.seed,
            limit = s.limit,
            vol = c.volume,
            lo = s.support.0,
            hi = s.support.1,
        )
    };
    let files = vec![
        ("samples.npz", npz_bytes),
        ("truth.json", truth.into_bytes()),
        ("run.toml", run("importance", "fit-importance").into_bytes()),
        ("run_naive.toml", run("naive", "fit-naive").into_bytes()),
    ];
    crate::data::files::write_files(dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_normal_measurement_is_a_density_in_d() {
        // For each true x, p(d | x) integrates to 1 over d.
        for (x, bimodal) in [(9.2, false), (10.8, true)] {
            let h = 1e-3;
            let total: f64 = (0..8000)
                .map(|i| x - 3.0 + (i as f64 + 0.5) * h)
                .map(|d| ln_measurement(d, x, bimodal, -3.0).exp() * h)
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{x}: {total}");
        }
    }

    #[test]
    fn tabulated_sampler_reproduces_a_gaussian() {
        let us: Vec<f64> = (0..20000).map(|i| (i as f64 + 0.5) / 20000.0).collect();
        let xs = sample_tabulated(
            &|x: f64| -0.5 * (x - 1.0) * (x - 1.0) / 0.04,
            -1.0,
            3.0,
            4001,
            &us,
        );
        let (m, sd) = crate::math::stats::mean_sd(&xs);
        assert!((m - 1.0).abs() < 1e-4 && (sd - 0.2).abs() < 1e-4, "{m} {sd}");
    }

    #[test]
    fn catalogue_has_the_expected_size_and_volume() {
        let s = SmfSettings::leja2020(2000.0, 1);
        let c = simulate_smf(&s).unwrap();
        let n = c.samples.len() as f64;
        assert!((n - 2000.0).abs() < 4.0 * 2000f64.sqrt(), "{n}");
        assert!(c.x_true.iter().all(|&x| x > 9.0 && x <= 12.5));
        assert!(c.samples.iter().all(|s| s.len() == 100));
        // Some posteriors are bimodal, and the masses' median is near the
        // knee-dominated range of the Leja et al. mass function.
        let frac = c.bimodal.iter().filter(|&&b| b).count() as f64 / n;
        assert!((frac - 0.05).abs() < 0.02, "{frac}");
        // The volume makes the expected count above the limit n_gal: check
        // V * integral of Phi over (9, 12.5] by a midpoint rule.
        let cells = 200_000;
        let h = 3.5 / cells as f64;
        let number_density: f64 = (0..cells)
            .map(|i| s.model.ln_f_1d(&s.truth, 9.0 + (i as f64 + 0.5) * h, None).exp() * h)
            .sum();
        assert!(
            (c.volume * number_density / 2000.0 - 1.0).abs() < 1e-8,
            "{}",
            c.volume
        );
    }
}
