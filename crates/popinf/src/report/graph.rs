//! The hierarchical model in plate notation, as Graphviz DOT and as an SVG
//! laid out here (no Graphviz needed): hyperparameters outside the
//! N-object plate, latent values inside, observed values shaded.

use super::label::{RichLabel, html_escape};
use crate::model::prior::Hyperprior;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A hyperparameter with a prior.
    Hyper,
    /// A per-object latent value.
    Latent,
    /// A per-object observed value (shaded).
    Observed,
    /// A per-object known constant (a box).
    Known,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Name, e.g. `theta_mu` or `mu_i`.
    pub id: String,
    /// Its distribution or role, e.g. `~ uniform(-5, 5)`.
    pub note: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelGraph {
    pub title: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<(String, String)>,
    /// Label of the plate, e.g. "i = 1 … 1000".
    pub plate: String,
}

fn node(id: &str, note: String, kind: NodeKind) -> Node {
    Node {
        id: id.into(),
        note,
        kind,
    }
}

impl ModelGraph {
    /// The notebook's model: theta_mu, theta_sigma ~ priors; mu_i ~
    /// N(theta_mu, theta_sigma); x_i ~ N(mu_i, sigma_i) observed, sigma_i
    /// known.
    pub fn gaussian(prior_mu: &Hyperprior, prior_sigma: &Hyperprior, n_obj: Option<usize>) -> Self {
        use NodeKind::*;
        Self {
            title: "Gaussian population, Gaussian measurements".into(),
            nodes: vec![
                node("theta_mu", format!("~ {prior_mu}"), Hyper),
                node("theta_sigma", format!("~ {prior_sigma}"), Hyper),
                node("mu_i", "~ normal(theta_mu, theta_sigma)".into(), Latent),
                node("sigma_i", "known".into(), Known),
                node("x_i", "~ normal(mu_i, sigma_i)".into(), Observed),
            ],
            edges: [
                ("theta_mu", "mu_i"),
                ("theta_sigma", "mu_i"),
                ("mu_i", "x_i"),
                ("sigma_i", "x_i"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            plate: match n_obj {
                Some(n) => format!("i = 1 … {n}"),
                None => "i = 1 … N".into(),
            },
        }
    }

    /// Any population model fitted to per-object posterior samples: the
    /// hyperparameters with their priors, mu_i from the population, and
    /// each object's data d_i (summarised by its samples) observed. The
    /// notebook's Gaussian toy with its measurements (`from_samples`
    /// false: the demo) keeps its measurement nodes.
    pub fn for_model(
        model: &crate::model::library::Population,
        names: &[String],
        priors: &[Hyperprior],
        n_obj: Option<usize>,
        from_samples: bool,
    ) -> Self {
        use NodeKind::*;
        if !from_samples
            && matches!(model, crate::model::library::Population::Gaussian(_))
            && priors.len() == 2
        {
            return Self::gaussian(&priors[0], &priors[1], n_obj);
        }
        let short = model.name().to_string();
        let p = model.n_params();
        let mut nodes: Vec<Node> = names
            .iter()
            .zip(priors)
            .map(|(n, pr)| node(n, format!("~ {pr}"), Hyper))
            .collect();
        nodes.push(node(
            "mu_i",
            format!("~ {short}({})", names[..p.min(names.len())].join(", ")),
            Latent,
        ));
        nodes.push(node("d_i", "~ p(d_i | mu_i): posterior samples".into(), Observed));
        let mut edges: Vec<(String, String)> = names
            .iter()
            .take(p)
            .map(|n| (n.clone(), "mu_i".to_string()))
            .collect();
        edges.push(("mu_i".into(), "d_i".into()));
        Self {
            title: format!("{short} population"),
            nodes,
            edges,
            plate: match n_obj {
                Some(n) => format!("i = 1 … {n}"),
                None => "i = 1 … N".into(),
            },
        }
    }

    fn in_plate(&self, n: &Node) -> bool {
        n.kind != NodeKind::Hyper
    }

    /// Graphviz DOT: the plate is a cluster, observed nodes are filled.
    pub fn dot(&self) -> String {
        let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let attrs = |n: &Node| {
            // DOT's own line break escape between the name and its note.
            let label = format!("{}\\n{}", quote(&n.id), quote(&n.note));
            match n.kind {
                NodeKind::Hyper | NodeKind::Latent => format!("label=\"{label}\", shape=ellipse"),
                NodeKind::Observed => {
                    format!("label=\"{label}\", shape=ellipse, style=filled, fillcolor=lightgray")
                }
                NodeKind::Known => format!("label=\"{label}\", shape=box"),
            }
        };
        let mut out = format!(
            "digraph popinf_model {{\n    label=\"{}\";\n    labelloc=t;\n",
            quote(&self.title)
        );
        for n in self.nodes.iter().filter(|n| !self.in_plate(n)) {
            out.push_str(&format!("    {} [{}];\n", n.id, attrs(n)));
        }
        out.push_str(&format!(
            "    subgraph cluster_objects {{\n        label=\"{}\";\n        labelloc=b;\n        labeljust=r;\n        style=rounded;\n",
            quote(&self.plate)
        ));
        for n in self.nodes.iter().filter(|n| self.in_plate(n)) {
            out.push_str(&format!("        {} [{}];\n", n.id, attrs(n)));
        }
        out.push_str("    }\n");
        for (a, b) in &self.edges {
            out.push_str(&format!("    {a} -> {b};\n"));
        }
        out.push_str("}\n");
        out
    }

    /// Depth of each node: hyperparameters 0, then one more than the
    /// deepest parent; a parentless node inside the plate sits one row
    /// above its first child.
    fn rows(&self) -> Vec<usize> {
        let idx = |id: &str| self.nodes.iter().position(|n| n.id == id);
        let mut depth = vec![0usize; self.nodes.len()];
        // Longest path by relaxation (the graph is small and acyclic).
        for _ in 0..self.nodes.len() {
            for (a, b) in &self.edges {
                if let (Some(a), Some(b)) = (idx(a), idx(b)) {
                    depth[b] = depth[b].max(depth[a] + 1);
                }
            }
        }
        for (k, n) in self.nodes.iter().enumerate() {
            let has_parent = self.edges.iter().any(|(_, b)| *b == n.id);
            if self.in_plate(n) && !has_parent {
                let child = self
                    .edges
                    .iter()
                    .find(|(a, _)| *a == n.id)
                    .and_then(|(_, b)| idx(b));
                depth[k] = child.map_or(1, |c| depth[c].saturating_sub(1).max(1));
            }
        }
        depth
    }

    /// An SVG of the model laid out in rows, arrows between nodes, the
    /// plate around the per-object nodes.
    pub fn svg(&self) -> String {
        const R: f64 = 32.0;
        const COL: f64 = 190.0;
        const ROW: f64 = 130.0;
        let rows = self.rows();
        let n_rows = rows.iter().max().map_or(1, |m| m + 1);
        let widest = (0..n_rows)
            .map(|r| rows.iter().filter(|&&d| d == r).count())
            .max()
            .unwrap_or(1);
        let width = (widest as f64 * COL + 120.0).max(420.0);
        let height = 70.0 + (n_rows - 1) as f64 * ROW + R + 62.0;
        let mut pos = vec![(0.0, 0.0); self.nodes.len()];
        for r in 0..n_rows {
            let members: Vec<usize> = (0..self.nodes.len()).filter(|&k| rows[k] == r).collect();
            let span = members.len() as f64 * COL;
            for (j, &k) in members.iter().enumerate() {
                pos[k] = (
                    width / 2.0 - span / 2.0 + (j as f64 + 0.5) * COL,
                    70.0 + r as f64 * ROW,
                );
            }
        }
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans, sans-serif\">\n\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
             markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"black\"/></marker></defs>\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{:.0}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
            width / 2.0,
            html_escape(&self.title)
        );
        // The plate: around every per-object node, with room for notes.
        let plate: Vec<(f64, f64)> = self
            .nodes
            .iter()
            .zip(&pos)
            .filter(|(n, _)| self.in_plate(n))
            .map(|(_, p)| *p)
            .collect();
        if !plate.is_empty() {
            let x0 = plate.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) - R - 60.0;
            let x1 = plate.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max) + R + 60.0;
            let y0 = plate.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) - R - 14.0;
            let y1 = plate.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max) + R + 42.0;
            svg.push_str(&format!(
                "<rect class=\"plate\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"10\" \
                 fill=\"none\" stroke=\"black\" stroke-width=\"1.5\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"14\">{}</text>\n",
                x1 - x0,
                y1 - y0,
                x1 - 8.0,
                y1 - 8.0,
                html_escape(&self.plate)
            ));
        }
        for (a, b) in &self.edges {
            let (Some(ia), Some(ib)) = (
                self.nodes.iter().position(|n| n.id == *a),
                self.nodes.iter().position(|n| n.id == *b),
            ) else {
                continue;
            };
            let ((xa, ya), (xb, yb)) = (pos[ia], pos[ib]);
            let len = (xb - xa).hypot(yb - ya).max(1e-9);
            let (ux, uy) = ((xb - xa) / len, (yb - ya) / len);
            svg.push_str(&format!(
                "<line class=\"edge\" data-from=\"{a}\" data-to=\"{b}\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" \
                 y2=\"{:.1}\" stroke=\"black\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n",
                xa + ux * R,
                ya + uy * R,
                xb - ux * R,
                yb - uy * R
            ));
        }
        for (n, &(x, y)) in self.nodes.iter().zip(&pos) {
            let shape = match n.kind {
                NodeKind::Known => format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"white\" stroke=\"black\" \
                     stroke-width=\"1.5\"/>",
                    x - R,
                    y - R * 0.75,
                    2.0 * R,
                    1.5 * R
                ),
                _ => format!(
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{R}\" fill=\"{}\" stroke=\"black\" stroke-width=\"1.5\"/>",
                    if n.kind == NodeKind::Observed {
                        "#c8c8c8"
                    } else {
                        "white"
                    }
                ),
            };
            let label = RichLabel::from_name(&n.id);
            let sub = if label.sub.is_empty() {
                String::new()
            } else {
                format!(
                    "<tspan font-size=\"14\" dy=\"6\">{}</tspan>",
                    html_escape(&label.sub)
                )
            };
            svg.push_str(&format!(
                "<g class=\"node\" id=\"{}\">{shape}<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 font-size=\"22\">{}{sub}</text><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 font-size=\"12\" fill=\"#333\">{}</text></g>\n",
                html_escape(&n.id),
                y + 7.0,
                html_escape(&label.base),
                y + R + 16.0,
                html_escape(&pretty_note(&n.note))
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// A note with Greek letters for the parameter names it mentions.
fn pretty_note(note: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let l = RichLabel::from_name(word);
            if word.contains('_') || l.base != *word {
                out.push_str(&l.plain());
            } else {
                out.push_str(word);
            }
            word.clear();
        }
    };
    for c in note.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::prior::NOTEBOOK_PRIORS;

    #[test]
    fn dot_names_every_node_edge_and_the_plate() {
        let g = ModelGraph::gaussian(&NOTEBOOK_PRIORS[0], &NOTEBOOK_PRIORS[1], Some(1000));
        let dot = g.dot();
        assert!(dot.starts_with("digraph popinf_model {"));
        assert!(dot.contains("subgraph cluster_objects {"));
        assert!(dot.contains("label=\"i = 1 … 1000\""));
        for id in ["theta_mu", "theta_sigma", "mu_i", "sigma_i", "x_i"] {
            assert!(dot.contains(&format!("    {id} [")), "node {id} missing:\n{dot}");
        }
        assert!(dot.contains("x_i [label=\"x_i\\n~ normal(mu_i, sigma_i)\", shape=ellipse, style=filled"));
        assert!(dot.contains("theta_mu [label=\"theta_mu\\n~ uniform(-5, 5)\""));
        for e in [
            "theta_mu -> mu_i;",
            "theta_sigma -> mu_i;",
            "mu_i -> x_i;",
            "sigma_i -> x_i;",
        ] {
            assert!(dot.contains(e), "edge {e} missing");
        }
        // The hyperparameters are outside the cluster, the rest inside.
        let cluster = &dot[dot.find("subgraph").unwrap()..dot.find("    }\n").unwrap()];
        assert!(!cluster.contains("theta_mu ["));
        assert!(cluster.contains("mu_i [") && cluster.contains("x_i ["));
    }

    #[test]
    fn layout_puts_hyperparameters_above_the_plate() {
        let g = ModelGraph::gaussian(&NOTEBOOK_PRIORS[0], &NOTEBOOK_PRIORS[1], None);
        assert_eq!(g.rows(), vec![0, 0, 1, 1, 2]);
        assert_eq!(
            pretty_note("~ normal(theta_mu, theta_sigma)"),
            "~ normal(θ_μ, θ_σ)"
        );
    }
}
