//! The layering of the library, checked over the `crate::` paths of its code (comments excluded): the core
//! imports only numerics and the error type, each family folder only the core, numerics and the shared block
//! descent, the meta-loop no family, and the module graph has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The unit a source file belongs to: a top-level module, or `families::NAME` for a family folder.
fn unit_of(rel: &str) -> String {
    let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
    match parts.as_slice() {
        ["lib"] => "lib".into(),
        ["families", "mod"] => "families".into(),
        ["families", f, ..] => format!("families::{f}"),
        [top, ..] => top.to_string(),
        [] => unreachable!(),
    }
}

/// The unit a path `crate::a::b...` names.
fn unit_of_path(path: &[&str]) -> String {
    match path {
        ["families", f, ..] if !f.chars().next().unwrap().is_uppercase() => format!("families::{f}"),
        [top, ..] => top.to_string(),
        [] => unreachable!(),
    }
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

/// `unit -> units it uses` over the code lines (not comments) of the library.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let unit = unit_of(&rel);
        let deps = g.entry(unit.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + 7..];
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap()
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                if !path.is_empty() {
                    let dep = unit_of_path(&path);
                    if dep != unit {
                        deps.insert(dep);
                    }
                }
            }
        }
    }
    g
}

#[test]
fn layers_import_only_downwards() {
    let g = graph();
    for must in ["core", "numerics", "meta", "families::relu", "families::deep", "families::factor", "families::cp"] {
        assert!(g.contains_key(must), "no unit {must}: {:?}", g.keys());
    }
    // The parser sees real edges (else the checks below could not fail).
    assert!(g["families::relu"].contains("core") && g["meta"].contains("core") && g["spec"].contains("families"));
    let allowed = |unit: &str, dep: &str| -> bool {
        match unit {
            "numerics" => dep == "error",
            "core" => matches!(dep, "numerics" | "error"),
            "families::bcd" => matches!(dep, "core" | "numerics" | "error"),
            u if u.starts_with("families::") => matches!(dep, "core" | "numerics" | "error" | "families::bcd"),
            "meta" => matches!(dep, "core" | "numerics" | "error"),
            _ => true,
        }
    };
    for (unit, deps) in &g {
        for dep in deps {
            assert!(allowed(unit, dep), "{unit} must not use {dep}");
        }
    }
}

#[test]
fn module_graph_has_no_cycle() {
    let g = graph();
    // Depth-first search with colours: 1 = on the stack, 2 = done.
    fn visit(
        u: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) {
        colour.insert(u.into(), 1);
        stack.push(u.into());
        for v in g.get(u).into_iter().flatten() {
            match colour.get(v.as_str()) {
                Some(1) => panic!("import cycle: {} -> {v}", stack.join(" -> ")),
                Some(_) => {}
                None => visit(v, g, colour, stack),
            }
        }
        stack.pop();
        colour.insert(u.into(), 2);
    }
    let mut colour = BTreeMap::new();
    for u in g.keys() {
        if !colour.contains_key(u.as_str()) {
            visit(u, &g, &mut colour, &mut Vec::new());
        }
    }
}
