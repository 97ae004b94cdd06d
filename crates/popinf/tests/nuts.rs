//! NUTS (through nuts-rs) on targets with known answers.

use popinf::data::catalog::Measurements;
use popinf::inference::latent::{LatentGaussianModel, Parametrisation};
use popinf::inference::posterior::{LogDensity, SampleableModel};
use popinf::inference::sampler::{NutsSettings, Silent, sample_nuts};
use popinf::math::stats::mean_sd;
use popinf::model::prior::Hyperprior;

/// Independent Gaussian coordinates N(mean_k, sd_k^2), optionally with the
/// first two correlated.
struct Gaussian {
    mean: Vec<f64>,
    sd: Vec<f64>,
    rho: f64,
}

impl LogDensity for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn ln_density(&self, u: &[f64]) -> f64 {
        let mut g = vec![0.0; u.len()];
        self.ln_density_grad(u, &mut g)
    }
    fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        let z: Vec<f64> = u
            .iter()
            .zip(&self.mean)
            .zip(&self.sd)
            .map(|((x, m), s)| (x - m) / s)
            .collect();
        let mut lp = 0.0;
        for k in 2..u.len() {
            lp -= 0.5 * z[k] * z[k];
            grad[k] = -z[k] / self.sd[k];
        }
        // Bivariate normal in the first two coordinates, correlation rho.
        let c = 1.0 / (1.0 - self.rho * self.rho);
        lp -= 0.5 * c * (z[0] * z[0] - 2.0 * self.rho * z[0] * z[1] + z[1] * z[1]);
        grad[0] = -c * (z[0] - self.rho * z[1]) / self.sd[0];
        grad[1] = -c * (z[1] - self.rho * z[0]) / self.sd[1];
        lp
    }
}

impl SampleableModel for Gaussian {
    fn param_names(&self) -> Vec<String> {
        (0..self.dim()).map(|k| format!("x{k}")).collect()
    }
    fn to_natural(&self, u: &[f64], out: &mut [f64]) {
        out.copy_from_slice(u);
    }
    fn initial_point(&self) -> Vec<f64> {
        vec![0.0; self.dim()]
    }
}

fn settings(seed: u64) -> NutsSettings {
    NutsSettings {
        seed,
        ..NutsSettings::default()
    }
}

#[test]
fn recovers_a_correlated_gaussian() {
    let target = Gaussian {
        mean: vec![1.0, -2.0],
        sd: vec![2.0, 0.5],
        rho: 0.9,
    };
    let run = sample_nuts(&target, &settings(1), &Silent).unwrap();
    let (x, y) = (run.trace.param(0), run.trace.param(1));
    let (mx, sx) = mean_sd(&x);
    let (my, sy) = mean_sd(&y);
    let n = x.len() as f64;
    let corr = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / (n - 1.0) / (sx * sy);
    // 4000 draws, ESS of order 1000-4000: MC error of a mean < 0.03 sd, of
    // an sd ~2%. Tolerances are several of those.
    assert!((mx - 1.0).abs() < 0.1 * 2.0, "mean x {mx}");
    assert!((my + 2.0).abs() < 0.1 * 0.5, "mean y {my}");
    assert!((sx / 2.0 - 1.0).abs() < 0.08, "sd x {sx}");
    assert!((sy / 0.5 - 1.0).abs() < 0.08, "sd y {sy}");
    assert!((corr - 0.9).abs() < 0.02, "corr {corr}");
    assert_eq!(run.stats.divergences(), 0);
}

#[test]
fn recovers_100_dimensions_with_scales_from_0_01_to_100() {
    let dim = 100;
    let sd: Vec<f64> = (0..dim)
        .map(|k| 10f64.powf(-2.0 + 4.0 * k as f64 / (dim - 1) as f64))
        .collect();
    let mean: Vec<f64> = (0..dim).map(|k| (k as f64 * 0.37).sin() * sd[k]).collect();
    let target = Gaussian {
        mean: mean.clone(),
        sd: sd.clone(),
        rho: 0.0,
    };
    let run = sample_nuts(&target, &settings(2), &Silent).unwrap();
    let mut worst_mean: f64 = 0.0;
    let mut worst_sd: f64 = 0.0;
    for k in 0..dim {
        let (m, s) = mean_sd(&run.trace.param(k));
        worst_mean = worst_mean.max((m - mean[k]).abs() / sd[k]);
        worst_sd = worst_sd.max((s / sd[k] - 1.0).abs());
    }
    // Max over 100 coordinates of errors whose own sd is ~0.02 (mean) and
    // ~1.5% (sd) at ESS ~ 2000+: about 4 sigma.
    assert!(worst_mean < 0.1, "worst mean error {worst_mean} sd");
    assert!(worst_sd < 0.08, "worst sd error {worst_sd}");
    assert_eq!(run.stats.divergences(), 0);
    assert_eq!(run.stats.max_depth_hits(), 0);
}

/// Eight schools (Rubin 1981): few objects with large measurement errors,
/// the textbook funnel.
fn eight_schools() -> Measurements {
    Measurements::new(
        vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
        vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
    )
    .unwrap()
}

#[test]
fn funnel_non_centred_has_no_divergences_and_centred_reports_them() {
    let meas = eight_schools();
    let prior_mu = Hyperprior::Normal { mu: 0.0, sd: 5.0 };
    let prior_tau = Hyperprior::HalfCauchy { scale: 5.0 };
    // Stan's advice for hierarchical models: a higher target acceptance
    // (smaller steps). The centred funnel diverges even so.
    let careful = NutsSettings {
        target_accept: 0.95,
        ..settings(3)
    };
    let nc = LatentGaussianModel::new(&meas, prior_mu, prior_tau, Parametrisation::NonCentred).unwrap();
    let run = sample_nuts(&nc, &careful, &Silent).unwrap();
    assert_eq!(run.stats.divergences(), 0, "non-centred diverged");
    // The known posterior mean of mu is about 4.4 (sd 3.3).
    let (m, _) = mean_sd(&run.trace.param(0));
    assert!((m - 4.4).abs() < 0.6, "mu mean {m}");
    let c = LatentGaussianModel::new(&meas, prior_mu, prior_tau, Parametrisation::Centred).unwrap();
    let run_c = sample_nuts(&c, &careful, &Silent).unwrap();
    assert!(
        run_c.stats.divergences() > 0,
        "centred funnel reported no divergences"
    );
    assert_eq!(run_c.stats.diverging.len(), 4000);
}

#[test]
fn same_seed_same_draws_on_any_thread_count() {
    let meas = eight_schools();
    let model = LatentGaussianModel::new(
        &meas,
        Hyperprior::Normal { mu: 0.0, sd: 5.0 },
        Hyperprior::HalfCauchy { scale: 5.0 },
        Parametrisation::NonCentred,
    )
    .unwrap();
    let s = NutsSettings {
        tune: 200,
        draws: 100,
        seed: 5,
        ..NutsSettings::default()
    };
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| sample_nuts(&model, &s, &Silent).unwrap())
    };
    let (a, b) = (on(1), on(3));
    assert_eq!(a.trace.draws, b.trace.draws);
    assert_eq!(a.stats, b.stats);
    let other = sample_nuts(&model, &NutsSettings { seed: 6, ..s.clone() }, &Silent).unwrap();
    assert_ne!(a.trace.draws, other.trace.draws);
}

/// -inf outside x < 1: a half-normal truncated on the right.
struct Truncated;

impl LogDensity for Truncated {
    fn dim(&self) -> usize {
        1
    }
    fn ln_density(&self, u: &[f64]) -> f64 {
        if u[0] < 1.0 {
            -0.5 * u[0] * u[0]
        } else {
            f64::NEG_INFINITY
        }
    }
    fn ln_density_grad(&self, u: &[f64], grad: &mut [f64]) -> f64 {
        grad[0] = -u[0];
        self.ln_density(u)
    }
}

impl SampleableModel for Truncated {
    fn param_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn to_natural(&self, u: &[f64], out: &mut [f64]) {
        out[0] = u[0];
    }
    fn initial_point(&self) -> Vec<f64> {
        vec![0.0]
    }
}

struct NanAtStart;

impl LogDensity for NanAtStart {
    fn dim(&self) -> usize {
        1
    }
    fn ln_density(&self, _: &[f64]) -> f64 {
        f64::NAN
    }
    fn ln_density_grad(&self, _: &[f64], grad: &mut [f64]) -> f64 {
        grad[0] = f64::NAN;
        f64::NAN
    }
}

impl SampleableModel for NanAtStart {
    fn param_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn to_natural(&self, u: &[f64], out: &mut [f64]) {
        out[0] = u[0];
    }
    fn initial_point(&self) -> Vec<f64> {
        vec![0.0]
    }
}

#[test]
fn non_finite_density_is_an_error_at_start_and_a_divergence_later() {
    let err = sample_nuts(&NanAtStart, &settings(1), &Silent).unwrap_err();
    assert!(
        err.to_string()
            .contains("log density is NaN at the initial point"),
        "{err}"
    );

    let run = sample_nuts(&Truncated, &settings(1), &Silent).unwrap();
    let x = run.trace.param(0);
    assert!(x.iter().all(|&v| v < 1.0));
    // Trajectories that cross x = 1 end as divergences, not crashes.
    assert!(run.stats.divergences() + run.tune_divergences > 0);
    // P(X < 0 | X < 1) for a standard normal: 0.5 / Phi(1) = 0.5943.
    let frac = x.iter().filter(|&&v| v < 0.0).count() as f64 / x.len() as f64;
    assert!((frac - 0.5943).abs() < 0.05, "{frac}");
}
