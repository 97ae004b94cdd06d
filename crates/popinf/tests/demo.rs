//! The notebook's three claims on the default demo, and reproducibility.

use popinf::inference::sampler::Silent;
use popinf::run::demo::{DemoSettings, DemoSummary, SamplerChoice, run_demo};

fn gap(s: &DemoSummary, method: &str, param: &str) -> (f64, f64) {
    let m = &s.methods[method].params[param];
    let e = &s.methods["exact"].params[param];
    ((m.mean - e.mean).abs() / e.sd, m.sd / e.sd)
}

#[test]
fn default_demo_reproduces_the_notebook() {
    let s = run_demo(&DemoSettings::default(), &Silent).unwrap();
    // Importance sampling over per-object samples, and NUTS on the full
    // latent model, agree with the exact posterior: means within a quarter
    // of an exact sd, sds within 15%.
    for method in ["importance", "hierarchical"] {
        for param in ["theta_mu", "theta_sigma"] {
            let (mean_gap, sd_ratio) = gap(&s, method, param);
            assert!(
                mean_gap < 0.25,
                "{method} {param}: mean {mean_gap:.3} exact sd off"
            );
            assert!(
                (sd_ratio - 1.0).abs() < 0.15,
                "{method} {param}: sd ratio {sd_ratio:.3}"
            );
        }
        let sampler = s.methods[method].sampler.as_ref().unwrap();
        assert_eq!(sampler.name, "nuts");
        assert_eq!(sampler.divergences, 0, "{method}: divergences after tuning");
        assert!(sampler.grad_evals > 0);
    }
    // The naive fit to medians is biased towards sqrt(1 + alpha^2) = 1.41.
    let naive_sigma = s.methods["naive"].params["theta_sigma"].mean;
    assert!(naive_sigma > 1.3, "naive theta_sigma {naive_sigma}");
    // ...and the exact answer is near the truth (within 3 of its sds).
    let exact = &s.methods["exact"].params["theta_sigma"];
    assert!((exact.mean - 1.0).abs() < 3.0 * exact.sd, "{exact:?}");
    let naive = s.methods["naive"].diagnostics.as_ref().unwrap();
    let acceptance = naive.acceptance_fraction.unwrap();
    assert!(
        acceptance > 0.2 && acceptance < 0.9,
        "naive ensemble acceptance {acceptance}"
    );
}

#[test]
fn ensemble_importance_fit_also_agrees_with_exact() {
    let mut settings = DemoSettings {
        importance_sampler: SamplerChoice::Ensemble,
        ..DemoSettings::default()
    };
    settings.hierarchical.tune = 100;
    settings.hierarchical.draws = 100;
    let s = run_demo(&settings, &Silent).unwrap();
    for param in ["theta_mu", "theta_sigma"] {
        let (mean_gap, sd_ratio) = gap(&s, "importance", param);
        assert!(
            mean_gap < 0.25,
            "{param}: ensemble importance mean is {mean_gap:.3} exact sd off"
        );
        assert!((sd_ratio - 1.0).abs() < 0.15, "{param}: sd ratio {sd_ratio:.3}");
    }
    assert_eq!(s.methods["importance"].sampler.as_ref().unwrap().name, "ensemble");
}

#[test]
fn same_seed_gives_identical_numbers_on_any_thread_count() {
    let mut settings = DemoSettings::with_seed(7);
    // Large enough that the likelihood takes its parallel path.
    settings.toy.n_obj = 400;
    settings.naive.n_steps = 100;
    settings.importance_nuts.tune = 100;
    settings.importance_nuts.draws = 100;
    settings.hierarchical.tune = 100;
    settings.hierarchical.draws = 100;
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let s = pool.install(|| run_demo(&settings, &Silent).unwrap());
        let mut numbers = Vec::new();
        for (name, m) in &s.methods {
            for (param, p) in &m.params {
                numbers.push((
                    name.clone(),
                    param.clone(),
                    [p.mean, p.sd, p.q05, p.q50, p.q95].map(f64::to_bits),
                ));
            }
        }
        numbers
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(3));
    let other_seed = {
        let mut s2 = settings.clone();
        s2.toy.seed = 8;
        run_demo(&s2, &Silent).unwrap()
    };
    assert_ne!(
        other_seed.methods["importance"].params["theta_mu"].mean.to_bits(),
        one.iter()
            .find(|(m, p, _)| m == "importance" && p == "theta_mu")
            .unwrap()
            .2[0]
    );
}

#[test]
fn five_samples_per_object_raise_the_importance_sampling_warnings() {
    let mut settings = DemoSettings::default();
    settings.toy.n_samp = 5;
    settings.hierarchical.tune = 100;
    settings.hierarchical.draws = 100;
    let s = run_demo(&settings, &Silent).unwrap();
    let warnings = s.methods["importance"].warnings.join("\n");
    for needle in [
        "fewer than 20 effective importance samples",
        "Var(ln L) =",
        "Pareto k-hat above",
    ] {
        assert!(warnings.contains(needle), "missing '{needle}' in:\n{warnings}");
    }
    let report = s.methods["importance"]
        .diagnostics
        .as_ref()
        .unwrap()
        .importance_sampling
        .as_ref()
        .unwrap();
    assert_eq!(report.n_draws_checked, 20);
    assert!(report.worst.var_ln_l >= report.at_median.var_ln_l);
}
