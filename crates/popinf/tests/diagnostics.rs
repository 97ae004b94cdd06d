//! Convergence diagnostics against numbers ArviZ computed on the same draws
//! (tests/fixtures/make_arviz_fixture.py wrote both files).

use popinf::diagnostics::convergence::{ParamDiagnostics, bfmi, ess_mean};

const DRAWS: &str = include_str!("fixtures/arviz_draws.csv");
const EXPECTED: &str = include_str!("fixtures/arviz_expected.json");

/// Columns of the fixture as chains: `columns[name][chain][draw]`.
fn load() -> (Vec<String>, Vec<Vec<Vec<f64>>>) {
    let mut lines = DRAWS.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let names = header[2..].to_vec();
    let mut columns: Vec<Vec<Vec<f64>>> = vec![Vec::new(); names.len()];
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let chain: usize = fields[0].parse().unwrap();
        for (k, v) in fields[2..].iter().enumerate() {
            if columns[k].len() <= chain {
                columns[k].push(Vec::new());
            }
            columns[k][chain].push(v.parse().unwrap());
        }
    }
    (names, columns)
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-300)
}

#[test]
fn summary_matches_arviz_to_1e_6() {
    let (names, columns) = load();
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    for (name, chains) in names.iter().zip(&columns) {
        let Some(want) = expected["params"].get(name) else {
            continue;
        };
        let refs: Vec<&[f64]> = chains.iter().map(|c| c.as_slice()).collect();
        let got = ParamDiagnostics::from_chains(&refs);
        let pairs = [
            ("mean", got.mean),
            ("sd", got.sd),
            ("hdi_3", got.hdi_3),
            ("hdi_97", got.hdi_97),
            ("mcse_mean", got.mcse_mean),
            ("mcse_sd", got.mcse_sd),
            ("ess_bulk", got.ess_bulk),
            ("ess_tail", got.ess_tail),
            ("r_hat", got.r_hat),
            ("ess_mean", ess_mean(&refs)),
        ];
        for (key, value) in pairs {
            let w = want[key].as_f64().unwrap();
            assert!(close(value, w, 1e-6), "{name}.{key}: popinf {value} vs ArviZ {w}");
        }
    }
    // The fixture exercises what it should: a stuck chain and ties.
    assert!(expected["params"]["c"]["r_hat"].as_f64().unwrap() > 1.2);
}

#[test]
fn bfmi_matches_arviz() {
    let (names, columns) = load();
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    let k = names.iter().position(|n| n == "energy").unwrap();
    for (c, want) in expected["bfmi"].as_array().unwrap().iter().enumerate() {
        let got = bfmi(&columns[k][c]);
        let want = want.as_f64().unwrap();
        assert!(close(got, want, 1e-10), "chain {c}: {got} vs {want}");
    }
}

#[test]
fn pareto_k_hat_matches_arviz() {
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/psis_expected.json")).unwrap();
    for case in expected["cases"].as_array().unwrap() {
        let lw: Vec<f64> = case["log_weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = popinf::math::psis::pareto_k_hat(&lw);
        let label = case["label"].as_str().unwrap();
        match case["k_hat"].as_f64() {
            Some(want) => assert!(close(got, want, 1e-6), "{label}: popinf {got} vs ArviZ {want}"),
            // The fixture writes an infinite k-hat as null.
            None => assert!(got.is_infinite(), "{label}: popinf {got}, ArviZ inf"),
        }
    }
}
