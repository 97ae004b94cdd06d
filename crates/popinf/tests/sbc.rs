//! Simulation-based calibration proves the notebook's point statistically:
//! the importance-sampled method is calibrated, the naive fit to medians is
//! not.

use popinf::inference::sampler::Silent;
use popinf::run::sbc::{SbcMethod, SbcSettings, run_sbc};

/// 1000 samples per object: the prior lets theta_sigma go to 0, far below
/// the measurement error (alpha = 1), where 100 samples leave an object a
/// handful of effective samples and the importance-sampled likelihood is
/// too noisy to be calibrated. Measured with 200 replications and 100
/// samples, with either kernel: p = 0.0006 (theta_mu, seed 2026) and 0.0002
/// (theta_sigma, seed 4), sigma's ranks U-shaped; with 1000 samples p = 0.19
/// to 0.84 for both parameters over seeds 1, 3, 4 and 2026. (At 100
/// replications the 100-sample test passed or failed with the rounding of
/// the likelihood.)
fn settings(method: SbcMethod) -> SbcSettings {
    SbcSettings {
        method,
        reps: 100,
        n_obj: 30,
        n_samp: 1000,
        seed: 2026,
        ..SbcSettings::default()
    }
}

#[test]
fn importance_is_calibrated_and_naive_is_not() {
    let imp = run_sbc(&settings(SbcMethod::Importance), &Silent).unwrap();
    for (name, p) in &imp.params {
        assert_eq!(p.ranks.len(), 100);
        assert_eq!(p.histogram.iter().sum::<usize>(), 100);
        assert!(
            p.p_value > 0.01,
            "importance {name}: p = {} (histogram {:?})",
            p.p_value,
            p.histogram
        );
    }
    let naive = run_sbc(&settings(SbcMethod::Naive), &Silent).unwrap();
    let sigma = &naive.params["theta_sigma"];
    assert!(
        sigma.p_value < 0.01,
        "naive theta_sigma: p = {} (histogram {:?})",
        sigma.p_value,
        sigma.histogram
    );
    // The medians carry the noise: the true theta_sigma sits below most
    // naive posterior draws, so its ranks pile up in the lowest bins.
    assert!(sigma.histogram[0] > 30, "{:?}", sigma.histogram);
}

/// The realistic case at CI size: a Schechter mass function above a
/// completeness limit, non-Gaussian per-galaxy posteriors under a non-flat
/// interim prior. The importance-sampled fit with the limit is calibrated.
#[test]
fn schechter_with_a_completeness_limit_is_calibrated() {
    assert_schechter_sbc_calibrated(SbcMethod::Importance);
}

/// The Schechter SBC at CI size for `method`: every parameter's ranks
/// uniform (p > 0.01).
fn assert_schechter_sbc_calibrated(method: SbcMethod) {
    let s = SbcSettings {
        method,
        model: popinf::run::sbc::SbcModel::Schechter,
        reps: 100,
        n_obj: 100,
        n_samp: 50,
        seed: 7,
        nuts: popinf::inference::sampler::NutsSettings {
            chains: 2,
            tune: 200,
            draws: 100,
            ..popinf::inference::sampler::NutsSettings::default()
        },
        ..SbcSettings::default()
    };
    let t = std::time::Instant::now();
    let r = run_sbc(&s, &Silent).unwrap();
    eprintln!("schechter sbc ({method:?}): {:.1} s", t.elapsed().as_secs_f64());
    for (name, p) in &r.params {
        eprintln!(
            "{method:?} {name}: p = {:.3}, histogram {:?}",
            p.p_value, p.histogram
        );
        assert!(
            p.p_value > 0.01,
            "{method:?} {name}: p = {} (histogram {:?})",
            p.p_value,
            p.histogram
        );
    }
}

/// The gmm likelihood where importance sampling fails: 50 samples per
/// object, 200 objects (the setting). Measured: gmm p = 0.46 /
/// 0.76 (theta_mu / theta_sigma, seed 7) and 0.02 / 0.26 (seed 11);
/// importance p = 0.95 / 0.0004 and 0.12 / 0.0000 on the same seeds.
/// (Deterministic: the same seeds give the same ranks on any threads.)
#[test]
fn gmm_is_calibrated_with_few_samples_where_importance_is_not() {
    let few = |method, seed| SbcSettings {
        method,
        reps: 100,
        n_obj: 200,
        n_samp: 50,
        seed,
        ..SbcSettings::default()
    };
    for seed in [7, 11] {
        let gmm = run_sbc(&few(SbcMethod::Gmm, seed), &Silent).unwrap();
        for (name, p) in &gmm.params {
            assert!(
                p.p_value > 0.01,
                "gmm seed {seed} {name}: p = {} {:?}",
                p.p_value,
                p.histogram
            );
        }
    }
    let imp = run_sbc(&few(SbcMethod::Importance, 7), &Silent).unwrap();
    let sigma = &imp.params["theta_sigma"];
    assert!(
        sigma.p_value < 0.01,
        "importance theta_sigma: p = {} {:?}",
        sigma.p_value,
        sigma.histogram
    );
}

/// The gmm likelihood by quadrature (no closed form) on the Schechter
/// mock with its completeness limit and non-flat interim prior. Measured:
/// p = 0.16 (alpha), 0.83 (log_m_star).
#[test]
fn gmm_schechter_with_a_completeness_limit_is_calibrated() {
    assert_schechter_sbc_calibrated(SbcMethod::Gmm);
}
