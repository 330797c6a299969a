//! Consumer-contract checks: each Pact interaction the gate names must carry the request
//! headers and JSON paths the gate requires.

use super::Check;
use super::file::ContractTest;
use serde_json::Value;
use std::path::Path;

/// Resolves a `$.a.b[0].c` path in `v`.
fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('$')?;
    let mut cur = v;
    for seg in rest.split('.').filter(|s| !s.is_empty()) {
        let (name, idx) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// Checks one contract; a missing or unreadable pact file fails it (it is not a run error).
pub fn check(base: &Path, c: &ContractTest) -> Check {
    let mut details = Vec::new();
    let path = base.join(&c.pact);
    let pact: Option<Value> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(pact) = pact else {
        return Check {
            name: c.name.clone(),
            passed: false,
            details: vec![format!("{}: missing or not JSON", path.display())],
        };
    };
    let interaction = pact["interactions"].as_array().and_then(|a| {
        a.iter()
            .find(|i| i["description"] == c.interaction.as_str())
    });
    let Some(i) = interaction else {
        return Check {
            name: c.name.clone(),
            passed: false,
            details: vec![format!(
                "no interaction '{}' in {}",
                c.interaction,
                c.pact.display()
            )],
        };
    };
    let headers = i["request"]["headers"].as_object();
    for h in &c.required_headers {
        let present = headers.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(h)));
        if !present {
            details.push(format!("request header {h} is not in the contract"));
        }
    }
    let body = &i["request"]["body"]["content"];
    for p in &c.required_json_paths {
        if json_path(body, p).is_none() {
            details.push(format!("request body has no {p}"));
        }
    }
    let passed = details.is_empty();
    if passed {
        details.push(format!(
            "{} headers and {} JSON paths present in '{}'",
            c.required_headers.len(),
            c.required_json_paths.len(),
            c.interaction
        ));
    }
    Check {
        name: c.name.clone(),
        passed,
        details,
    }
}
