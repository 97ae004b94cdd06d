//! The demo's figures and report: files that parse, an HTML page whose
//! every image is beside it and that fetches nothing, and a rebuild from
//! the saved outputs that draws the same figures.

use std::path::Path;

use popinf::inference::sampler::Silent;
use popinf::run::demo::{DemoSettings, run_demo_full, write_run};
use popinf::run::report::build_report;

fn small_demo(dir: &Path) {
    let mut settings = DemoSettings::with_seed(7);
    settings.toy.n_obj = 200;
    settings.toy.n_samp = 50;
    settings.naive.n_steps = 200;
    settings.importance_nuts.tune = 200;
    settings.importance_nuts.draws = 200;
    settings.hierarchical.tune = 200;
    settings.hierarchical.draws = 200;
    let run = run_demo_full(&settings, &Silent).unwrap();
    write_run(dir, &run).unwrap();
}

/// Values of `attr="..."` in an HTML text.
fn attribute_values(html: &str, attr: &str) -> Vec<String> {
    let key = format!("{attr}=\"");
    html.match_indices(&key)
        .map(|(i, _)| {
            let rest = &html[i + key.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn demo_report_is_complete_offline_and_rebuildable() {
    let dir = std::env::temp_dir().join(format!("popinf-report-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    small_demo(&dir);
    let built = build_report(&dir).unwrap();
    let html = std::fs::read_to_string(&built.report).unwrap();

    // Every figure of the issue, as PNG and SVG.
    for stem in [
        "corner",
        "population",
        "true_mu",
        "object_posteriors",
        "medians",
        "trace_naive",
        "trace_importance",
        "trace_hierarchical",
    ] {
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("PNG header parses");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("PNG data decodes");
        assert!(
            info.width >= 400 && info.height >= 400,
            "{stem}: {}x{}",
            info.width,
            info.height
        );
        // Not a blank page: many non-white pixels.
        let inked = buf.chunks(3).filter(|p| p.iter().any(|&c| c < 200)).count();
        assert!(inked > 5000, "{stem}: only {inked} drawn pixels");
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(
            doc.descendants().filter(|n| n.is_element()).count() > 50,
            "{stem}: empty SVG"
        );
    }
    let graph = std::fs::read_to_string(dir.join("graph.svg")).unwrap();
    let doc = roxmltree::Document::parse(&graph).unwrap();
    let nodes: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("node"))
        .filter_map(|n| n.attribute("id"))
        .collect();
    assert_eq!(nodes, ["theta_mu", "theta_sigma", "mu_i", "sigma_i", "x_i"]);
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("edge"))
            .count(),
        4
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("plate"))
            .count(),
        1
    );

    // The corner plot's titles are the importance method's quantiles.
    let corner = std::fs::read_to_string(dir.join("corner.svg")).unwrap();
    let trace = popinf::inference::trace::read_draws_csv(&dir.join("draws_importance.csv")).unwrap();
    let q = popinf::report::corner::TitleNumbers::from_draws(&trace.param(1));
    let (med, up, down) = q.formatted();
    for text in [format!(" = {med}"), up, down] {
        assert!(corner.contains(&text), "corner.svg lacks the title text '{text}'");
    }

    // The report: images beside it, nothing fetched from the network.
    let sources = attribute_values(&html, "src");
    assert!(sources.len() >= 9, "{sources:?}");
    for link in sources.iter().chain(&attribute_values(&html, "href")) {
        assert!(
            !link.contains("://") && !link.starts_with("//"),
            "network reference {link}"
        );
        assert!(dir.join(link).is_file(), "report refers to missing {link}");
    }
    for method in ["naive", "importance", "hierarchical", "exact"] {
        assert!(
            html.contains(&format!("<td class=\"l\">{method}</td>")),
            "{method} missing from the table"
        );
    }
    assert!(html.contains("r_hat") && html.contains("Var(ln L)") && html.contains("<h2>Warnings</h2>"));

    // Rebuilding from the saved outputs draws the same figures.
    let first_png = std::fs::read(dir.join("corner.png")).unwrap();
    let first_svg = std::fs::read(dir.join("population.svg")).unwrap();
    std::fs::remove_file(dir.join("corner.png")).unwrap();
    build_report(&dir).unwrap();
    assert_eq!(std::fs::read(dir.join("corner.png")).unwrap(), first_png);
    assert_eq!(std::fs::read(dir.join("population.svg")).unwrap(), first_svg);
    assert_eq!(std::fs::read_to_string(&built.report).unwrap(), html);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_of_a_directory_without_a_run_says_what_to_give() {
    let dir = std::env::temp_dir().join(format!("popinf-report-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = build_report(&dir).err().unwrap().to_string();
    assert!(err.contains("no summary.json here"), "{err}");
    assert!(err.contains("popinf demo") && err.contains("popinf fit"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
