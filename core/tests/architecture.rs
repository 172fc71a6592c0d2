//! Checks the structure of the core crate and of the SDK layer (`ffi/src`)
//! against `docs/architecture.md`:
//! - no import cycle among the crate's top-level modules, nor among the
//!   modules inside each of them (`sync::engine` → `sync::session` → ... back);
//! - every module the architecture guide names exists;
//! - no source file longer than `MAX_LINES` unless it is listed with its reason.
//!
//! Imports are read from the source text: every `crate::a::b` and `super::b`
//! path outside `#[cfg(test)]` modules, with re-exports of a parent module
//! (`pub(crate) use engine::Engine;` in `sync/mod.rs`) resolved to the module
//! that defines the item; comments (doc links) do not count. Test-only files (`tests.rs`, `*_tests.rs`
//! — compiled only under `#[cfg(test)]` — and `fuzzing.rs`) are not part of
//! the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// Files allowed past `MAX_LINES`, with why.
const LONG_FILES: &[(&str, &str)] = &[(
    "hostile_peer_tests.rs",
    "a test suite: one attack per test, each self-contained",
)];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The crates whose sources are checked: the core and the SDK layer.
fn crates() -> Vec<PathBuf> {
    vec![
        src(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ffi/src"),
    ]
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module path of a file: `sync/engine.rs` → ["sync", "engine"], `sync/mod.rs`
/// → ["sync"], `lib.rs` → [].
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file's text without its `#[cfg(test)] mod ... { }` blocks.
fn non_test_text(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(d) = skip_depth.as_mut() {
            *d += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if *d <= 0 {
                skip_depth = None;
            }
            continue;
        }
        if t == "#[cfg(test)]" {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && t.starts_with("mod ") && t.ends_with('{') {
            skip_depth = Some(1);
            pending_cfg_test = false;
            continue;
        }
        pending_cfg_test = false;
        if t.starts_with("//") {
            continue; // comments and doc links are not imports
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every path a file refers to, as absolute module paths (`crate::` stripped).
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut refs = Vec::new();
    let bytes = text.as_bytes();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix) {
            let start = from + i + prefix.len();
            from = start;
            // the path continues with identifiers and `::`; a `{` starts a group
            let mut end = start;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
            {
                end += 1;
            }
            let path: Vec<String> = text[start..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let mut full = base.clone();
            full.extend(path.iter().cloned());
            if end < bytes.len() && bytes[end] == b'{' {
                // `super::{a, b::C}`: each name in the group
                let close = text[end..].find('}').map(|c| end + c).unwrap_or(end);
                for name in text[end + 1..close].split(',') {
                    let first = name.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" {
                        let mut f = full.clone();
                        f.push(first.to_string());
                        refs.push(f);
                    }
                }
            } else {
                refs.push(full);
            }
        }
    }
    refs
}

struct Crate {
    /// Every module path.
    modules: BTreeSet<Vec<String>>,
    /// `parent module + item name` → the module the item comes from, for
    /// re-exports (`pub use x::Item;`, `pub(crate) use x::{A, B};`).
    reexports: BTreeMap<Vec<String>, Vec<String>>,
    /// Module → references (non-test text).
    refs: BTreeMap<Vec<String>, Vec<Vec<String>>>,
    lines: BTreeMap<String, usize>,
}

fn read_crate(root: &Path) -> Crate {
    let mut all = Vec::new();
    files(root, &mut all);
    let mut c = Crate {
        modules: BTreeSet::new(),
        reexports: BTreeMap::new(),
        refs: BTreeMap::new(),
        lines: BTreeMap::new(),
    };
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().to_string();
        c.lines.insert(rel.clone(), text.lines().count());
        let m = module_of(root, f);
        c.modules.insert(m.clone());
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if name == "tests.rs" || name.ends_with("_tests.rs") || rel == "fuzzing.rs" {
            continue;
        }
        let body = non_test_text(&text);
        // re-exports of child modules: `pub... use child::{A, B};` / `use child::A;`
        for line in body.lines() {
            let t = line.trim();
            let Some(rest) = t
                .strip_prefix("pub use ")
                .or_else(|| t.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            let rest = rest.trim_end_matches(';');
            let (child, items) = match rest.split_once("::") {
                Some((child, items)) => (child.to_string(), items),
                None => continue,
            };
            let items = items.trim_start_matches('{').trim_end_matches('}');
            for item in items.split(',') {
                let item = item.trim();
                let name = item.rsplit(" as ").next().unwrap_or(item).trim();
                let name = name.rsplit("::").next().unwrap_or(name).to_string();
                let mut key = m.clone();
                key.push(name);
                let mut target = m.clone();
                if child != "crate" && child != "super" {
                    target.push(child.clone());
                }
                c.reexports.insert(key, target);
            }
        }
        c.refs.insert(m.clone(), references(&m, &body));
    }
    c
}

impl Crate {
    /// The module a reference lands in: the longest module prefix of the
    /// path, with a parent's re-export followed to its defining child.
    fn resolve(&self, path: &[String]) -> Vec<String> {
        let mut best: Vec<String> = Vec::new();
        for n in (0..=path.len()).rev() {
            if self.modules.contains(&path[..n]) {
                best = path[..n].to_vec();
                break;
            }
        }
        if let Some(item) = path.get(best.len()) {
            let mut key = best.clone();
            key.push(item.clone());
            if let Some(t) = self.reexports.get(&key) {
                if t != &best && self.modules.contains(t) {
                    return self.resolve(&[t.clone(), path[best.len() + 1..].to_vec()].concat());
                }
            }
        }
        best
    }

    /// Edges between the modules directly inside `parent` (`[]`: the crate's
    /// top-level modules), from every file beneath each of them.
    fn graph(&self, parent: &[String]) -> BTreeMap<String, BTreeSet<String>> {
        let depth = parent.len() + 1;
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (m, refs) in &self.refs {
            if m.len() < depth || m[..parent.len()] != *parent {
                continue;
            }
            let from = m[parent.len()].clone();
            for r in refs {
                let to = self.resolve(r);
                if to.len() < depth || to[..parent.len()] != *parent {
                    continue;
                }
                let to = to[parent.len()].clone();
                if to != from {
                    g.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        g
    }
}

/// A cycle in `g`, if any, as the list of its nodes.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn no_import_cycles_among_modules() {
    let mut cycles = Vec::new();
    for root in crates() {
        cycles.extend(cycles_in(&root));
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

fn cycles_in(root: &Path) -> Vec<String> {
    let c = read_crate(root);
    let name = root
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut parents: BTreeSet<Vec<String>> = BTreeSet::new();
    parents.insert(Vec::new());
    for m in &c.modules {
        if m.len() >= 2 {
            parents.insert(m[..m.len() - 1].to_vec());
        }
    }
    let mut cycles = Vec::new();
    for p in &parents {
        let g = c.graph(p);
        if let Some(cycle) = find_cycle(&g) {
            let at = if p.is_empty() {
                "crate".to_string()
            } else {
                p.join("::")
            };
            cycles.push(format!("{name}: in {at}: {}", cycle.join(" -> ")));
        }
    }
    cycles
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), vec!["a", "b", "c", "a"]);
    // and reads one from source text, through a parent's re-export
    let refs = references(
        &["sync".to_string(), "session".to_string()],
        "use super::{engine::Engine, Outbox};\nlet x = crate::storage::DocKey::new();",
    );
    assert!(refs.contains(&vec!["sync".into(), "engine".into()]));
    assert!(refs.contains(&vec!["sync".into(), "Outbox".into()]));
    assert!(refs.contains(&vec!["storage".into(), "DocKey".into(), "new".into()]));
}

#[test]
fn files_stay_short_unless_a_reason_is_given() {
    let mut long: Vec<String> = Vec::new();
    for root in crates() {
        let c = read_crate(&root);
        long.extend(
            c.lines
                .iter()
                .filter(|(f, n)| **n > MAX_LINES && !LONG_FILES.iter().any(|(l, _)| l == f))
                .map(|(f, n)| format!("{}/{f}: {n} lines", root.display())),
        );
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_module_the_architecture_guide_names_exists() {
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/architecture.md"),
    )
    .expect("docs/architecture.md");
    let c = read_crate(&src());
    let mut named = 0;
    for (i, _) in guide.match_indices("`core/src/") {
        let rest = &guide[i + "`core/src/".len()..];
        let path = &rest[..rest.find('`').unwrap()];
        named += 1;
        assert!(
            src().join(path).exists(),
            "docs/architecture.md names core/src/{path}, which does not exist"
        );
    }
    assert!(named >= 10, "the guide names only {named} files");
    assert!(!c.modules.is_empty());
}
