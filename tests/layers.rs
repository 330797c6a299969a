//! The module graph is one-way: every `crate::<module>` a file names belongs to a layer below its
//! own (`src/lib.rs` lists the layers). A new import that points back up fails here, naming the
//! file and the import, before it turns the layers into a tangle.

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level modules, lowest layer first; modules in one group do not import each other.
const LAYERS: &[&[&str]] = &[
    &["media", "dsp"],
    &["ingest", "inference"],
    &["analysis"],
    &["scoring"],
    &["report"],
    &["pipeline"],
    &["store"],
    &["ats"],
    &["rescore"],
    &["fleet"],
    &["server"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The crate modules a source text names: `crate::x` paths and `use crate::{x, y::…}` groups.
fn named_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = &group[..group.find('}').unwrap_or(group.len())];
            for item in body.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .iter()
            .next()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs");
        let Some(own) = layer_of(top) else {
            assert!(
                matches!(top, "lib" | "main"),
                "src/{}: module '{top}' is in no layer of tests/layers.rs",
                rel.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for m in named_modules(&text) {
            let Some(theirs) = layer_of(&m) else { continue };
            checked += 1;
            if m != top && theirs >= own {
                upward
                    .entry(format!("src/{}", rel.display()))
                    .or_default()
                    .push(format!("crate::{m}"));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} imports found: is the scan broken?"
    );
    assert!(
        upward.is_empty(),
        "imports that point up or across the layers (src/lib.rs): {upward:#?}"
    );
}

#[test]
fn the_scan_sees_paths_and_groups() {
    let names =
        named_modules("use crate::{report::Event, store};\nlet x = crate::scoring::round(1.0, 2);");
    assert_eq!(names, ["report", "store", "scoring"]);
}
