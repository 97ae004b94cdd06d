//! The gmm likelihood against the exact posterior of the notebook's toy,
//! on the demo's data and on numpy-made data.
//!
//! The tolerance: an answer computed from the samples cannot be closer to
//! the exact posterior (computed from the measurements x_i) than the
//! samples' own noise allows. Each object's sample mean misses x_i by
//! alpha / sqrt(S), and its sample width is known to sqrt(2 / S): with
//! 1000 objects x 100 samples that moves theta_mu by ~0.08 and
//! theta_sigma by ~0.1 exact sd *in either direction, for any method using
//! the samples* (measured on these data: the mean of the sample means
//! alone is -0.076 and -0.078 sd off). A mean within 0.35 exact sd is
//! three to four of those noise sds; the posterior sd within 10%.

use popinf::data::catalog::Measurements;
use popinf::data::input::{InterimPriorSpec, read_npz_vectors, read_samples};
use popinf::inference::exact::gaussian_grid_posterior;
use popinf::inference::posterior::Hyperposterior;
use popinf::inference::sampler::{NutsSettings, Silent, sample_nuts};
use popinf::likelihood::gmm::GmmClosedForm;
use popinf::model::prior::NOTEBOOK_PRIORS;
use popinf::run::demo::{DemoSettings, run_demo};

/// (mean offset in exact sd, sd ratio) per parameter of the gmm fit.
fn gmm_against_exact(catalog: &popinf::data::catalog::SampleCatalog, meas: &Measurements) -> [(f64, f64); 2] {
    let (_, like) = GmmClosedForm::fit_gaussian(catalog, true).unwrap();
    let post = Hyperposterior::new(like, NOTEBOOK_PRIORS.to_vec()).unwrap();
    let trace = sample_nuts(&post, &NutsSettings::default(), &Silent)
        .unwrap()
        .trace;
    let exact = gaussian_grid_posterior(meas, &NOTEBOOK_PRIORS[0], &NOTEBOOK_PRIORS[1], 400).unwrap();
    let summaries = trace.summaries();
    [0, 1].map(|k| {
        let (m, e) = (&summaries[k], &exact.summaries[k]);
        ((m.mean - e.mean) / e.sd, m.sd / e.sd)
    })
}

#[test]
fn gmm_matches_the_exact_posterior_on_numpy_made_data() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/toy_numpy_seed42.npz");
    let catalog = read_samples(&path, &InterimPriorSpec::Flat).unwrap();
    let xs = read_npz_vectors(&path, &["x", "sigma"]).unwrap();
    let meas = Measurements::new(xs[0].clone(), xs[1].clone()).unwrap();
    let offsets = gmm_against_exact(&catalog, &meas);
    eprintln!("numpy data: gmm (mean offset / exact sd, sd ratio) = {offsets:?}");
    for (k, (off, ratio)) in offsets.iter().enumerate() {
        assert!(off.abs() < 0.35, "param {k}: {off:.3} exact sd off");
        assert!((ratio - 1.0).abs() < 0.10, "param {k}: sd ratio {ratio:.3}");
    }
}

#[test]
fn gmm_matches_the_exact_posterior_on_the_demo_data() {
    let s = run_demo(&DemoSettings::default(), &Silent).unwrap();
    for param in ["theta_mu", "theta_sigma"] {
        let (m, e) = (&s.methods["gmm"].params[param], &s.methods["exact"].params[param]);
        let (off, ratio) = ((m.mean - e.mean) / e.sd, m.sd / e.sd);
        eprintln!("demo data: gmm {param}: {off:+.3} exact sd, sd ratio {ratio:.3}");
        assert!(off.abs() < 0.35, "{param}: {off:.3} exact sd off");
        assert!((ratio - 1.0).abs() < 0.10, "{param}: sd ratio {ratio:.3}");
    }
}
