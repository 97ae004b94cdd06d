//! `popinf fit`: agreement with the demo's answer on numpy-format samples,
//! and a clear error (exit 2, nothing written) for every kind of bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn popinf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popinf-fit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn fit_on_npy_matches_the_exact_posterior_like_the_demo() {
    use popinf::data::simulate::{ToySettings, simulate_gaussian_toy};
    use popinf::inference::exact::gaussian_grid_posterior;
    let dir = scratch("npy");
    // The demo's data (seed 42): 1000 objects x 100 samples, flat interim prior.
    let toy = simulate_gaussian_toy(&ToySettings::default()).unwrap();
    let cat = &toy.catalog;
    let samples = ndarray::Array2::from_shape_vec((cat.n_obj(), 100), cat.values().to_vec()).unwrap();
    let npy = dir.join("samples.npy");
    ndarray_npy::write_npy(&npy, &samples).unwrap();
    let out = dir.join("out");
    let res = popinf(&[
        "fit",
        "--samples",
        s(&npy),
        "--prior",
        "theta_mu=uniform(-5, 5)",
        "--prior",
        "theta_sigma=uniform(0, 2)",
        "--seed",
        "3",
        "--tune",
        "400",
        "--draws",
        "500",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let m = &v["methods"]["importance"];
    // The demo's importance method on the same data, run through the
    // library with another seed: the two must agree within Monte Carlo error.
    use popinf::inference::posterior::Hyperposterior;
    use popinf::inference::sampler::{NutsSettings, Silent, sample_nuts};
    use popinf::likelihood::importance::ImportanceLikelihood;
    let like = ImportanceLikelihood::new(cat, popinf::model::gaussian::Gaussian)
        .unwrap()
        .with_bias_correction(true);
    let priors = popinf::model::prior::NOTEBOOK_PRIORS.to_vec();
    let post = Hyperposterior::new(like, priors.clone()).unwrap();
    let settings = NutsSettings {
        tune: 400,
        draws: 500,
        seed: 99,
        ..NutsSettings::default()
    };
    let demo = sample_nuts(&post, &settings, &Silent)
        .unwrap()
        .trace
        .summaries_of(&["theta_mu", "theta_sigma"])
        .unwrap();
    let exact = gaussian_grid_posterior(&toy.measurements, &priors[0], &priors[1], 401).unwrap();
    for (k, name) in ["theta_mu", "theta_sigma"].iter().enumerate() {
        let p = &m["params"][name];
        let (mean, sd, mcse) = (
            p["mean"].as_f64().unwrap(),
            p["sd"].as_f64().unwrap(),
            p["mcse_mean"].as_f64().unwrap(),
        );
        let d = demo[k];
        let mcse_demo = d.convergence.unwrap().mcse_mean;
        // Two independent runs: their means differ by N(0, mcse1^2 + mcse2^2).
        let tol = 5.0 * (mcse * mcse + mcse_demo * mcse_demo).sqrt();
        assert!(
            (mean - d.mean).abs() < tol,
            "{name}: fit {mean} vs library {} (tolerance {tol})",
            d.mean
        );
        // ...and both sit near the exact answer, as in the demo.
        let e = exact.summaries[k];
        assert!(
            (mean - e.mean).abs() < 0.3 * e.sd,
            "{name}: {mean} vs exact {}",
            e.mean
        );
        assert!(
            (sd / e.sd - 1.0).abs() < 0.15,
            "{name}: sd {sd} vs exact {}",
            e.sd
        );
    }
    // Every output is there and readable.
    let draws = std::fs::read_to_string(out.join("draws.csv")).unwrap();
    assert!(draws.starts_with("chain,draw,theta_mu,theta_sigma\n"));
    assert_eq!(draws.lines().count(), 1 + 4 * 500);
    let stats = std::fs::read_to_string(out.join("stats.csv")).unwrap();
    assert!(stats.starts_with("chain,draw,diverging,tree_depth"));
    let mut npz = ndarray_npy::NpzReader::new(std::fs::File::open(out.join("draws.npz")).unwrap()).unwrap();
    let mu: ndarray::Array2<f64> = npz.by_name("theta_mu").unwrap();
    assert_eq!(mu.shape(), &[4, 500]);
    let resolved = std::fs::read_to_string(out.join("run.resolved.toml")).unwrap();
    assert!(
        resolved.contains("tune = 400") && resolved.contains("interim_prior = \"flat\""),
        "{resolved}"
    );
    // The resolved run file reproduces the run.
    let out2 = dir.join("again");
    let res = popinf(&[
        "fit",
        s(&out.join("run.resolved.toml")),
        "--out",
        s(&out2),
        "--quiet",
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(
        std::fs::read(out.join("draws.csv")).unwrap(),
        std::fs::read(out2.join("draws.csv")).unwrap()
    );
    // Float32 sample storage: the same run to within Monte Carlo error
    // (the storage error is ~1e-10 of ln L, far below it).
    assert!(resolved.contains("storage = \"f64\""), "{resolved}");
    let run32 = dir.join("run32.toml");
    std::fs::write(&run32, resolved.replace("storage = \"f64\"", "storage = \"f32\"")).unwrap();
    let out32 = dir.join("f32");
    let res = popinf(&["fit", s(&run32), "--out", s(&out32), "--quiet"]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let v32: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out32.join("summary.json")).unwrap()).unwrap();
    for name in ["theta_mu", "theta_sigma"] {
        let (a, b) = (&m["params"][name], &v32["methods"]["importance"]["params"][name]);
        let mcse = a["mcse_mean"]
            .as_f64()
            .unwrap()
            .hypot(b["mcse_mean"].as_f64().unwrap());
        let d = (a["mean"].as_f64().unwrap() - b["mean"].as_f64().unwrap()).abs();
        assert!(
            d < 5.0 * mcse,
            "{name}: f64 vs f32 storage differ by {d} (mcse {mcse})"
        );
    }
}

/// Runs a fit expected to fail: exit code 2, every needle in the message,
/// no panic, and nothing written to the output directory.
fn expect_bad(dir: &Path, args: &[&str], needles: &[&str]) {
    let out = dir.join("out");
    let mut all: Vec<&str> = vec!["fit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", s(&out)]);
    let res = popinf(&all);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: '{n}' not in: {stderr}");
    }
    assert!(!out.exists(), "{args:?}: output directory was created");
}

const PRIORS: [&str; 4] = [
    "--prior",
    "theta_mu=uniform(-5, 5)",
    "--prior",
    "theta_sigma=uniform(0, 2)",
];

fn with_priors<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend_from_slice(&PRIORS);
    v
}

#[test]
fn bad_inputs_get_clear_errors_and_no_outputs() {
    let dir = scratch("bad");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let empty = write("empty.csv", "");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&empty)]),
        &["empty.csv", "empty"],
    );
    let missing = dir.join("missing.npy");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&missing)]),
        &["missing.npy", "No such file"],
    );
    let text = write("text.csv", "1.0,2.0\n3.0,x7\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&text)]),
        &["text.csv, line 2, column 2", "'x7' is not a number"],
    );
    let nan = write("nan.csv", "1.0,2.0\n3.0,inf\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&nan)]),
        &["nan.csv", "object 1, sample 1", "inf is not finite"],
    );
    let no_samples = write("nosamp.csv", "1.0,2.0\n,\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&no_samples)]),
        &["nosamp.csv", "object 1 has no samples"],
    );
    let ragged_npz = dir.join("ragged.npz");
    {
        let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&ragged_npz).unwrap());
        npz.add_array("samples", &ndarray::arr1(&[1.0, 2.0, 3.0]))
            .unwrap();
        npz.add_array("counts", &ndarray::arr1(&[2i64, 2])).unwrap();
        npz.finish().unwrap();
    }
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&ragged_npz)]),
        &["ragged.npz", "'counts' add up to 4 but 'samples' holds 3"],
    );
    let dims = write("dims.csv", "object,value\na,1.0,2.0\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&dims)]),
        &["dims.csv, line 2", "3 fields, but the header has 2"],
    );
    let lp = write("lp.csv", "object,value,ln_prior\na,1.0,-1\na,2.0,-inf\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&lp), "--interim-prior", "column"]),
        &[
            "lp.csv",
            "object 0, sample 1",
            "ln interim prior -inf is not finite",
        ],
    );
    let meas = write("meas.csv", "x,sigma\n0.5,1.0\n0.7,0\n");
    expect_bad(
        &dir,
        &with_priors(&["--measurements", s(&meas)]),
        &["meas.csv", "object 1: sigma = 0"],
    );
    let ok = write("ok.csv", "1.0,2.0\n3.0,4.0\n");
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&ok), "--model", "gausian"]),
        &["unknown population model 'gausian'", "did you mean 'gaussian'"],
    );
    expect_bad(
        &dir,
        &[
            "--samples",
            s(&ok),
            "--prior",
            "theta_mu=unifrom(-5, 5)",
            "--prior",
            "theta_sigma=uniform(0, 2)",
        ],
        &["prior of theta_mu", "unknown distribution 'unifrom'"],
    );
    expect_bad(
        &dir,
        &[
            "--samples",
            s(&ok),
            "--prior",
            "theta_mu=uniform(5, -5)",
            "--prior",
            "theta_sigma=uniform(0, 2)",
        ],
        &["prior of theta_mu", "uniform(5, -5)", "lower < upper"],
    );
    expect_bad(
        &dir,
        &["--samples", s(&ok), "--prior", "theta_mu=uniform(-5, 5)"],
        &[
            "1 of the gaussian model's hyperparameters have no prior",
            "--prior 'theta_sigma=halfnormal(1)' (positive)",
        ],
    );
    // Every missing prior at once, each with an example valid for its domain.
    expect_bad(
        &dir,
        &["--samples", s(&ok), "--model", "mixture"],
        &[
            "5 of the mixture model's hyperparameters have no prior",
            "'mu_1=normal(0, 10)'",
            "'sigma_2=halfnormal(1)' (positive)",
            "'frac_1=uniform(0, 1)' (between 0 and 1)",
        ],
    );
    // A misspelt name is named before any missing prior; a prior whose
    // support leaves the parameter's domain is named with the fix.
    for (spec, needles) in [
        (
            "theta_sgima=uniform(0, 2)",
            ["'theta_sgima'", "did you mean 'theta_sigma'"],
        ),
        (
            "theta_sigma=uniform(-1, -0.5)",
            [
                "outside theta_sigma's domain (positive)",
                "theta_sigma=halfnormal(1)",
            ],
        ),
        (
            "theta_sigma=normal(0, 1)",
            [
                "outside theta_sigma's domain (positive)",
                "theta_sigma=halfnormal(1)",
            ],
        ),
        (
            "theta_sigma=uniform(-1, 2)",
            [
                "outside theta_sigma's domain (positive)",
                "theta_sigma=uniform(0, 2)",
            ],
        ),
    ] {
        expect_bad(
            &dir,
            &[
                "--samples",
                s(&ok),
                "--prior",
                "theta_mu=uniform(-5, 5)",
                "--prior",
                spec,
            ],
            &needles,
        );
    }
    // Values near 1e300: the object and its values are named, for both
    // sample-based likelihoods.
    let huge = dir.join("huge.npy");
    ndarray_npy::write_npy(
        &huge,
        &ndarray::Array2::from_shape_fn((5, 20), |(i, j)| 1e300 * (1.0 + 0.01 * (i + j) as f64)),
    )
    .unwrap();
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&huge)]),
        &[
            "log density is -inf",
            "object 0",
            "1.000000e300",
            "overflow",
            "rescale",
        ],
    );
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&huge), "--likelihood", "gmm"]),
        &["huge.npy", "object 0", "overflows", "rescale"],
    );
    let ints = dir.join("ints.npy");
    ndarray_npy::write_npy(&ints, &ndarray::arr2(&[[1i64, 2], [3, 4]])).unwrap();
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&ints)]),
        &["ints.npy", "unsupported dtype", "float64"],
    );
    let run = write("run.toml", "[sampler]\nchians = 4\n");
    expect_bad(
        &dir,
        &with_priors(&[s(&run), "--samples", s(&ok)]),
        &[
            "run.toml",
            "unknown key 'sampler.chians'",
            "did you mean 'chains'",
        ],
    );
    let run = write("run2.toml", "sed = 4\n");
    expect_bad(
        &dir,
        &with_priors(&[s(&run), "--samples", s(&ok)]),
        &["unknown key 'sed'", "did you mean 'seed'"],
    );
    expect_bad(&dir, &PRIORS, &["no data"]);
    expect_bad(
        &dir,
        &with_priors(&["--samples", s(&ok), "--likelihood", "hierarchical"]),
        &["needs measurements"],
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_and_keeps_the_draws() {
    let dir = scratch("sigint");
    let out = dir.join("out");
    let run = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/toy/run.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(["fit", run, "--draws", "10000000", "--quiet", "--out", s(&out)])
        .spawn()
        .unwrap();
    // Tuning takes well under a second here; then interrupt mid-sampling.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop exits 0");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let sampler = &v["methods"]["importance"]["sampler"];
    assert_eq!(sampler["stopped_early"], true);
    let draws = sampler["draws"].as_u64().unwrap();
    assert!(draws > 0 && draws < 10_000_000, "{draws}");
    let csv = std::fs::read_to_string(out.join("draws.csv")).unwrap();
    let chains = sampler["chains"].as_u64().unwrap();
    assert_eq!(csv.lines().count() as u64, 1 + chains * draws);
}

/// The toy's run file as `popinf fit` arguments into `out`, with `extra`.
fn toy_fit(out: &Path, extra: &[&str]) -> Vec<String> {
    let run = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/toy/run.toml");
    let mut a: Vec<String> = ["fit", run].iter().chain(extra).map(|a| a.to_string()).collect();
    a.extend(["--out".to_string(), s(out).to_string()]);
    a
}

/// Starts `popinf args`, waits for `ready`, then SIGKILLs it; the run must
/// not have finished, nor written results into `out`.
#[cfg(unix)]
fn kill_when(args: &[String], out: &Path, ready: impl Fn() -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args)
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !ready() {
        assert!(t0.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(
        !child.wait().unwrap().success(),
        "the run should have been killed before finishing"
    );
    assert!(!out.join("draws.csv").exists(), "a killed run writes no results");
}

/// `args` with --resume succeeds; its stderr.
fn resume(args: &[String]) -> String {
    let res = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    String::from_utf8_lossy(&res.stderr).into_owned()
}

/// The draws and sampler statistics of `killed` (resumed) equal those of an
/// uninterrupted run of `args` into `fresh`, byte for byte.
fn assert_same_draws_as_uninterrupted(killed: &Path, fresh: &Path, args: &[String]) {
    let res = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args)
        .output()
        .unwrap();
    assert!(res.status.success());
    for file in ["draws.csv", "stats.csv"] {
        assert!(
            std::fs::read(killed.join(file)).unwrap() == std::fs::read(fresh.join(file)).unwrap(),
            "{file} differs between the resumed and the uninterrupted run"
        );
    }
}

/// SIGKILL in the sampling phase, while chains are running: the chains'
/// evaluation logs (checkpointed every 0.3 s here) are replayed on
/// --resume, and the draws equal an uninterrupted run's bit for bit.
#[cfg(unix)]
#[test]
fn killed_mid_chain_resumes_from_the_logs_to_the_same_draws() {
    let dir = scratch("resume_mid_chain");
    let (killed_out, fresh_out) = (dir.join("killed"), dir.join("fresh"));
    let extra = ["--draws", "40000", "--checkpoint-every", "0.3"];
    // Tuning (1000 iterations) takes ~0.05 s of a chain's ~4 s: by 1 s the
    // running chains are sampling.
    let logs = killed_out.join("checkpoint_nuts.bin");
    let t0 = std::time::Instant::now();
    kill_when(&toy_fit(&killed_out, &extra), &killed_out, || {
        logs.exists() && t0.elapsed().as_secs_f64() > 1.0
    });
    let said = resume(&toy_fit(&killed_out, &extra));
    // (How many chains had started, or finished, depends on the cores and
    // the machine's speed: chains run on the thread pool; at least one was
    // running and is replayed.)
    let replayed = said
        .split(" replayed from their logs")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(replayed.is_some_and(|n| n >= 1), "{said}");
    assert!(
        !logs.exists(),
        "the checkpoint is removed once results are written"
    );
    assert_same_draws_as_uninterrupted(&killed_out, &fresh_out, &toy_fit(&fresh_out, &extra));
}

#[cfg(unix)]
#[test]
fn killed_run_resumes_to_the_same_draws_bit_for_bit() {
    let dir = scratch("resume");
    let (killed_out, fresh_out) = (dir.join("killed"), dir.join("fresh"));
    let run = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/toy/run.toml");
    let extra = ["--draws", "4000", "--quiet"];
    // Wait for the first finished chain to reach the checkpoint, then SIGKILL.
    let checkpoint = killed_out.join("checkpoint.json");
    kill_when(&toy_fit(&killed_out, &extra), &killed_out, || checkpoint.exists());
    resume(&toy_fit(&killed_out, &extra));
    assert!(
        !checkpoint.exists(),
        "the checkpoint is removed once results are written"
    );
    assert_same_draws_as_uninterrupted(&killed_out, &fresh_out, &toy_fit(&fresh_out, &extra));
    // --resume where no checkpoint was written starts afresh (a requeued
    // batch job always passes it), saying so, with the plain run's draws.
    let fresh = |out: &std::path::Path, resume: bool| {
        let mut a = vec!["fit", run, "--draws", "10", "--tune", "20", "--out", s(out)];
        if resume {
            a.push("--resume");
        }
        Command::new(env!("CARGO_BIN_EXE_popinf"))
            .args(&a)
            .output()
            .unwrap()
    };
    let res = fresh(&dir.join("none"), true);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(String::from_utf8_lossy(&res.stderr).contains("no checkpoint"));
    assert!(String::from_utf8_lossy(&res.stderr).contains("starting afresh"));
    assert!(fresh(&dir.join("plain"), false).status.success());
    assert_eq!(
        std::fs::read(dir.join("none/draws.csv")).unwrap(),
        std::fs::read(dir.join("plain/draws.csv")).unwrap()
    );
    // Resuming with other settings is refused, naming the reason.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("checkpoint.json"),
        r#"{"fingerprint": "another run", "chains": []}"#,
    )
    .unwrap();
    let res = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(["fit", run, "--quiet", "--out", s(&other), "--resume"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("belongs to a different run"));
}

#[cfg(unix)]
#[test]
fn killed_ensemble_run_resumes_exactly_from_its_periodic_checkpoint() {
    let dir = scratch("resume-ensemble");
    let (killed_out, fresh_out) = (dir.join("killed"), dir.join("fresh"));
    let run = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/toy/run.toml");
    let args = |out: &Path| {
        [
            "fit",
            run,
            "--sampler",
            "ensemble",
            "--tune",
            "300",
            "--draws",
            "3000",
            "--quiet",
            "--out",
            s(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut first = args(&killed_out);
    first.extend(["--checkpoint-every".into(), "0.2".into()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(&first)
        .spawn()
        .unwrap();
    let checkpoint = killed_out.join("checkpoint.json");
    let t0 = std::time::Instant::now();
    while !checkpoint.exists() {
        assert!(t0.elapsed().as_secs() < 120, "no checkpoint appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL, mid-run
    assert!(!child.wait().unwrap().success());
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let saved: serde_json::Value = serde_json::from_str(&text).unwrap();
    let step = saved["ensemble"]["step"].as_u64().unwrap();
    assert!(step > 0 && step < 3300, "checkpoint at step {step}");
    let mut resume = args(&killed_out);
    resume.push("--resume".into());
    let res = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(&resume)
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let res = Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args(&fresh_out))
        .output()
        .unwrap();
    assert!(res.status.success());
    for file in ["draws.csv", "stats.csv"] {
        assert!(
            std::fs::read(killed_out.join(file)).unwrap() == std::fs::read(fresh_out.join(file)).unwrap(),
            "{file} differs between the resumed and the uninterrupted run"
        );
    }
    assert!(!checkpoint.exists() && !killed_out.join("checkpoint.bin").exists());
}

/// The stellar-mass-function flow end to end at CI size: simulate, fit
/// with the run file the simulation wrote (double Schechter, completeness
/// limit, counts over the volume), fit the medians, compare in one report.
#[test]
fn smf_simulation_fits_and_compares() {
    let dir = scratch("smf");
    let res = popinf(&[
        "simulate",
        "smf",
        "--out",
        s(&dir),
        "--n-gal",
        "300",
        "--seed",
        "3",
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let run = dir.join("run.toml");
    let fast = ["--chains", "2", "--tune", "150", "--draws", "100", "-q"];
    for file in [run.clone(), dir.join("run_naive.toml")] {
        let mut args = vec!["fit", s(&file)];
        args.extend_from_slice(&fast);
        let res = popinf(&args);
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    }
    // The gmm likelihood of the same run: quadrature nodes (a Schechter
    // function above a completeness limit), its mixtures saved.
    let gmm_fit = dir.join("fit-gmm");
    let mut args = vec!["fit", s(&run), "--likelihood", "gmm", "--out", s(&gmm_fit)];
    args.extend_from_slice(&fast);
    let res = popinf(&args);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let gmm_summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gmm_fit.join("summary.json")).unwrap()).unwrap();
    let report = &gmm_summary["methods"]["gmm"]["diagnostics"]["gmm"];
    assert_eq!(report["form"], "quadrature");
    assert_eq!(report["nodes_per_component"], 32);
    let mixtures = std::fs::read_to_string(gmm_fit.join("gmm.csv")).unwrap();
    assert!(mixtures.starts_with("object,component,weight,mean,sd,n_eff,ks_distance,ks_p_value\n"));
    assert!(mixtures.lines().count() > report["n_obj"].as_u64().unwrap() as usize);
    let resolved = std::fs::read_to_string(gmm_fit.join("run.resolved.toml")).unwrap();
    assert!(
        resolved.contains("kind = \"gmm\"") && resolved.contains("gmm_nodes = 32"),
        "{resolved}"
    );
    let fit = dir.join("fit-importance");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fit.join("summary.json")).unwrap()).unwrap();
    let params = summary["methods"]["importance"]["params"].as_object().unwrap();
    // truth.json uses the names summary.json uses.
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    let mut truth_names: Vec<&String> = truth.as_object().unwrap().keys().collect();
    truth_names.sort();
    assert_eq!(names, truth_names);
    assert!(
        summary["methods"]["importance"]["diagnostics"]["selection"]["xi_median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // Population-informed per-object posteriors.
    let objects = std::fs::read_to_string(fit.join("objects.csv")).unwrap();
    assert!(objects.starts_with("object,mean,sd,q16,q50,q84,ess\n"));
    assert!(objects.lines().count() > 250);
    for file in ["report.html", "population.png", "corner.svg", "graph.dot"] {
        assert!(fit.join(file).is_file(), "{file} missing");
    }
    // One report comparing the two fits.
    let out = dir.join("comparison");
    let res = popinf(&[
        "report",
        s(&fit),
        s(&dir.join("fit-naive")),
        s(&gmm_fit),
        "--out",
        s(&out),
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(">importance</td>") && html.contains(">naive</td>") && html.contains(">gmm</td>"));
    assert!(html.contains("trust it?") && html.contains("− truth, in its sd"));
    assert!(out.join("population.svg").is_file() && out.join("corner.png").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn population_model_settings_are_checked() {
    let dir = scratch("models");
    let samples = dir.join("s.csv");
    std::fs::write(&samples, "10.1,10.3\n9.8,9.9\n").unwrap();
    let sm = s(&samples);
    expect_bad(
        &dir,
        &["--samples", sm, "--model", "schecter"],
        &["unknown population model 'schecter'", "did you mean 'schechter'"],
    );
    expect_bad(
        &dir,
        &["--samples", sm, "--model", "schechter"],
        &["needs model.support"],
    );
    let run = dir.join("run.toml");
    std::fs::write(
        &run,
        format!(
            "[data]\nsamples = \"{sm}\"\n[model]\npopulation = \"gaussian\"\n[counts]\nvolume = 1e5\n\
             [priors]\ntheta_mu = \"uniform(0, 20)\"\ntheta_sigma = \"uniform(0, 2)\"\n"
        ),
    )
    .unwrap();
    expect_bad(&dir, &[s(&run)], &["amplitude"]);
    std::fs::write(
        &run,
        format!(
            "[data]\nsamples = \"{sm}\"\n[model]\npopulation = \"schechter\"\nsupport = [8.0, 12.0]\n\
             [selection]\nlimt = 9.0\n"
        ),
    )
    .unwrap();
    expect_bad(
        &dir,
        &[s(&run)],
        &["unknown key 'selection.limt'", "did you mean 'limit'"],
    );
    std::fs::write(
        &run,
        format!(
            "[data]\nsamples = \"{sm}\"\n[model]\npopulation = \"schechter\"\nsupport = [10.0, 12.0]\n\
             [priors]\nlog_m_star = \"uniform(10, 11.5)\"\nalpha = \"uniform(-2, 0)\"\n"
        ),
    )
    .unwrap();
    // Object 1's samples (9.8, 9.9) lie below the support.
    expect_bad(
        &dir,
        &[s(&run)],
        &["object 1", "support [10, 12]", "from 9.8 to 9.9"],
    );
    // Float32 storage is the fused kernels' option only.
    std::fs::write(
        &run,
        format!(
            "[data]\nsamples = \"{sm}\"\n[model]\npopulation = \"truncated_normal\"\nsupport = [8.0, 12.0]\n\
             [likelihood]\nstorage = \"f32\"\n\
             [priors]\ntheta_mu = \"uniform(10, 11.5)\"\ntheta_sigma = \"uniform(0.1, 2)\"\n"
        ),
    )
    .unwrap();
    expect_bad(
        &dir,
        &[s(&run)],
        &[
            "storage = \"f32\"",
            "with a fused kernel only",
            "'truncated_normal'",
        ],
    );
    std::fs::write(
        &run,
        format!(
            "[data]\nsamples = \"{sm}\"\n[likelihood]\nstorage = \"f16\"\n\
             [priors]\ntheta_mu = \"uniform(0, 20)\"\ntheta_sigma = \"uniform(0, 2)\"\n"
        ),
    )
    .unwrap();
    expect_bad(
        &dir,
        &[s(&run)],
        &["unknown likelihood.storage 'f16'", "f64 or f32"],
    );
}

/// `sampler.init` starts the chains there (jittered): after one tuning step
/// every chain is still near a start far from the prior's centre; the
/// resolved run file keeps it; a start for an unknown or missing
/// hyperparameter, or outside its prior, is an error naming it.
#[test]
fn sampler_init_sets_where_the_chains_start() {
    let dir = scratch("init");
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/toy/samples.npy");
    let write = |init: &str| {
        let run = dir.join("run.toml");
        std::fs::write(
            &run,
            format!(
                "seed = 3\n[data]\nsamples = \"{samples}\"\ninterim_prior = \"uniform(8, 13)\"\n\
                 [priors]\ntheta_mu = \"uniform(8, 13)\"\ntheta_sigma = \"halfnormal(1)\"\n\
                 [sampler]\ntune = 1\ndraws = 1\n{init}\n"
            ),
        )
        .unwrap();
        run
    };
    let run = write("init = { theta_mu = 12.9, theta_sigma = 0.05 }");
    let out = dir.join("fit");
    let res = popinf(&["fit", s(&run), "--quiet", "--out", s(&out)]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let draws = std::fs::read_to_string(out.join("draws.csv")).unwrap();
    let mus: Vec<f64> = draws
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(mus.len(), 4);
    // From the prior's centre (10.5) no chain would be near 12.9 after one
    // step; jittered by +-1 in logit space around 12.9: 12.6 to 12.97.
    assert!(mus.iter().all(|&m| m > 12.0), "{mus:?}");
    let resolved = std::fs::read_to_string(out.join("run.resolved.toml")).unwrap();
    assert!(resolved.contains("theta_mu = 12.9"), "{resolved}");
    for (init, needles) in [
        (
            "init = { theta_mu = 10.0, theta_sgima = 0.3 }",
            vec!["theta_sgima", "did you mean 'theta_sigma'"],
        ),
        ("init = { theta_mu = 10.0 }", vec!["missing: theta_sigma"]),
        (
            "init = { theta_mu = 14.0, theta_sigma = 0.3 }",
            vec!["theta_mu = 14", "uniform(8, 13)"],
        ),
    ] {
        let run = write(init);
        expect_bad(&dir, &[s(&run)], &needles);
    }
}
