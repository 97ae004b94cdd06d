//! The command line: exit codes, messages, and the files it writes.

use std::process::Command;

fn popinf(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_popinf"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["demo", "--n-samp", "0"], "n-samp must be at least 1"),
        (vec!["demo", "--alpha", "-1"], "alpha"),
        (vec!["demo", "--n-obj", "0"], "n-obj must be at least 1"),
        (vec!["demo", "--alpha", "nan"], "alpha"),
        (vec!["bench", "likelihood", "--threads", "0"], "threads"),
        (vec!["demo", "--sampler", "gibbs"], "gibbs"),
    ] {
        let out = popinf(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let out = popinf(&["demo", "--n-samp", "many"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_writes_summary_json_with_the_schema() {
    let dir = std::env::temp_dir().join(format!("popinf-cli-test-{}", std::process::id()));
    let out = popinf(&[
        "demo",
        "--n-obj",
        "200",
        "--n-samp",
        "20",
        "--seed",
        "3",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "--quiet printed output");
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["truth"]["theta_sigma"], 1.0);
    assert_eq!(v["data"]["n_obj"], 200);
    assert_eq!(v["data"]["n_samp"], 20);
    assert_eq!(v["data"]["seed"], 3);
    for method in ["naive", "importance", "hierarchical", "exact"] {
        let m = &v["methods"][method];
        assert!(m["wall_s"].as_f64().unwrap() >= 0.0);
        for param in ["theta_mu", "theta_sigma"] {
            let p = &m["params"][param];
            let q: Vec<f64> = ["q05", "q50", "q95"]
                .iter()
                .map(|k| p[k].as_f64().unwrap())
                .collect();
            assert!(q[0] < q[1] && q[1] < q[2], "{method} {param}: {p}");
            assert!(p["sd"].as_f64().unwrap() > 0.0);
            assert!(p["mean"].as_f64().unwrap().is_finite());
        }
    }
    for method in ["naive", "importance", "hierarchical"] {
        let sampler = &v["methods"][method]["sampler"];
        for key in ["name", "chains", "draws", "tune", "divergences", "grad_evals"] {
            assert!(sampler.get(key).is_some(), "{method}: sampler.{key} missing");
        }
    }
    assert_eq!(v["methods"]["importance"]["sampler"]["name"], "nuts");
    assert_eq!(v["methods"]["hierarchical"]["sampler"]["chains"], 4);
    assert!(!dir.join("summary.json.tmp").exists());
    // The report and its figures come with every demo run, and `popinf
    // report` rebuilds them from the saved outputs.
    for file in [
        "report.html",
        "corner.png",
        "corner.svg",
        "population.png",
        "graph.svg",
        "graph.dot",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    std::fs::remove_file(dir.join("corner.png")).unwrap();
    let out = popinf(&["report", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("report.html"));
    assert!(dir.join("corner.png").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn graph_prints_dot_and_writes_svg() {
    let out = popinf(&["graph", "--n-obj", "50"]);
    assert!(out.status.success());
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph popinf_model {"), "{dot}");
    assert!(
        dot.contains("subgraph cluster_objects") && dot.contains("i = 1 … 50"),
        "{dot}"
    );
    let dir = std::env::temp_dir().join(format!("popinf-graph-test-{}", std::process::id()));
    let out = popinf(&["graph", "--out", dir.join("model.svg").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = std::fs::read_to_string(dir.join("model.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("class=\"plate\""));
    assert!(
        std::fs::read_to_string(dir.join("model.dot"))
            .unwrap()
            .contains("mu_i -> x_i;")
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let out = popinf(&["graph", "--model", "schechter"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown population model 'schechter'"));
}

#[test]
fn report_on_a_directory_without_a_run_exits_2() {
    let dir = std::env::temp_dir();
    let out = popinf(&["report", dir.join("no-such-popinf-run").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no summary.json here"), "{stderr}");
}

/// The JSON line a bench prints last (after its table).
fn last_json_line(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn bench_prints_the_documented_json() {
    let out = popinf(&[
        "bench",
        "likelihood",
        "--n-obj",
        "500",
        "--n-samp",
        "20",
        "--threads",
        "1",
        "--reps",
        "3",
    ]);
    assert!(out.status.success());
    let v = last_json_line(&out.stdout);
    for key in [
        "n_obj",
        "n_samp",
        "threads",
        "ms_value",
        "ms_value_grad",
        "ns_per_element_value",
        "ns_per_element_value_grad",
        "isa",
        "kernel",
        "storage",
        "exp_ns_per_element",
        "read_ns_per_element",
        "read_gb_per_s",
        "value_over_exp",
        "value_grad_over_exp",
        "value_over_read",
        "value_grad_over_read",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["n_obj"], 500);
    assert_eq!(v["kernel"], "fused");
    let ms = v["ms_value"].as_f64().unwrap();
    let ns = v["ns_per_element_value"].as_f64().unwrap();
    assert!((ns - ms * 1e6 / 10_000.0).abs() < 1e-9 * ns.max(1.0));
    for key in ["value_over_exp", "value_grad_over_read"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // The float32 copy and the general kernel are selectable; not both.
    let small = |extra: &[&str]| {
        let mut args = vec!["bench", "likelihood", "--n-obj", "200", "--reps", "2"];
        args.extend_from_slice(extra);
        popinf(&args)
    };
    let out = small(&["--f32"]);
    assert!(out.status.success());
    assert_eq!(last_json_line(&out.stdout)["storage"], "f32");
    assert_eq!(last_json_line(&small(&["--general"]).stdout)["kernel"], "general");
    let out = small(&["--f32", "--general"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("float64 samples only"));
    // The Schechter family and the mixture run fused kernels too, timed
    // against the Gaussian one in the same repetitions; ln Z apart.
    assert_eq!(v["model"], "gaussian");
    assert!(v.get("value_grad_over_gaussian").is_none());
    for model in ["schechter", "double_schechter", "mixture"] {
        let out = small(&["--model", model]);
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = last_json_line(&out.stdout);
        assert_eq!(
            (v["model"].as_str(), v["kernel"].as_str()),
            (Some(model), Some("fused"))
        );
        let ratio = v["value_grad_over_gaussian"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{model}: {ratio}");
        // The Schechter family's ln Z is a quadrature per evaluation: timed, not 0.
        let ln_z_ms = v["ms_normalisation"].as_f64().unwrap();
        assert!(model == "mixture" || ln_z_ms > 0.0, "{model}: {ln_z_ms}");
        let general = last_json_line(&small(&["--model", model, "--general"]).stdout);
        assert_eq!(general["kernel"], "general", "{model}");
    }
    let out = small(&["--f32", "--model", "double_schechter"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(last_json_line(&out.stdout)["storage"], "f32");
    let out = small(&["--model", "schecter"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("double_schechter"));
}

#[test]
fn bench_fit_reaches_its_targets_and_reports_them() {
    let out = popinf(&["bench", "fit", "--n-obj", "1000", "--threads", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = last_json_line(&out.stdout);
    let run = &v["runs"][0];
    assert_eq!(run["n_obj"], 1000);
    assert_eq!(run["reached"], true);
    assert!(run["min_ess_bulk"].as_f64().unwrap() >= 400.0);
    assert!(run["max_r_hat"].as_f64().unwrap() < 1.01);
    assert!(run["likelihood_evals"].as_u64().unwrap() > 0);
    // The toy's truth is (0, 1); 1000 objects pin it to a few hundredths.
    assert!(run["theta_mu"].as_f64().unwrap().abs() < 0.15);
    assert!((run["theta_sigma"].as_f64().unwrap() - 1.0).abs() < 0.15);
    let out = popinf(&["bench", "fit", "--n-obj", "1000", "--threads", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("threads must be at least 1"));
}

#[test]
fn bench_hierarchical_prints_json() {
    let out = popinf(&[
        "bench",
        "hierarchical",
        "--n-obj",
        "50",
        "--threads",
        "1",
        "--reps",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dim"], 52);
    assert_eq!(v["iterations_per_chain"], 2000);
    assert!(
        v["grad_evals"].as_u64().unwrap() >= 8000,
        "at least one gradient per iteration"
    );
    let ess = v["min_ess_bulk"].as_f64().unwrap();
    assert!(ess > 100.0 && ess.is_finite(), "ess {ess}");
}

#[test]
fn diagnose_json_matches_arviz_on_the_fixture() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../popinf/tests/fixtures");
    let out = popinf(&["diagnose", &format!("{fixtures}/arviz_draws.csv"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(format!("{fixtures}/arviz_expected.json")).unwrap();
    let want: serde_json::Value = serde_json::from_str(&text).unwrap();
    for param in ["a", "b", "c", "d"] {
        for key in [
            "mean",
            "sd",
            "r_hat",
            "ess_bulk",
            "ess_tail",
            "mcse_mean",
            "mcse_sd",
        ] {
            let (g, w) = (
                got[param][key].as_f64().unwrap(),
                want["params"][param][key].as_f64().unwrap(),
            );
            assert!((g - w).abs() <= 1e-6 * w.abs(), "{param}.{key}: {g} vs {w}");
        }
    }
}

#[test]
fn diagnose_rejects_bad_files_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("popinf-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "chain,draw,x\n0,0,1.5\n0,1,oops\n").unwrap();
    let out = popinf(&["diagnose", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad.csv, line 3, column 'x': 'oops' is not a number"),
        "{stderr}"
    );
    let out = popinf(&["diagnose", dir.join("missing.csv").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sbc_json_has_ranks_and_p_values() {
    let out = popinf(&[
        "sbc",
        "--method",
        "importance",
        "--reps",
        "10",
        "--n-obj",
        "10",
        "--n-samp",
        "50",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "importance");
    assert_eq!(v["reps"], 10);
    for name in ["theta_mu", "theta_sigma"] {
        let ranks = v["params"][name]["ranks"].as_array().unwrap();
        assert_eq!(ranks.len(), 10);
        assert!(ranks.iter().all(|r| r.as_u64().unwrap() <= 99));
        let p = v["params"][name]["p_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
}
