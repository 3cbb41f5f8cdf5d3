//! The layers of ARCHITECTURE.md, checked on the source text: every
//! `crate::<module>` path in `src/` (comments, string literals and
//! `#[cfg(test)] mod` blocks left out) is an edge from the file's top-level
//! module to `<module>`. The graph must have no cycle, and the store must
//! not reach up into the command line, the configuration, the CSV inputs or
//! the printing code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges that still point upwards, each with the file that holds it. They
/// are left out of the cycle check until that file is reworked; an entry
/// whose edge is gone makes the test fail, so the list only shrinks.
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Source text with comments and the contents of string and char literals
/// removed (so `"crate::x"` in a message is no edge).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            i = src[i..].find('\n').map_or(b.len(), |j| i + j);
            continue;
        }
        if b[i..].starts_with(b"/*") {
            i = src[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
            continue;
        }
        let word_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let raw_start = if b[i..].starts_with(b"br") {
            Some(i + 2)
        } else if b[i] == b'r' {
            Some(i + 1)
        } else {
            None
        };
        if let Some(mut j) = raw_start.filter(|_| !word_before) {
            let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
            j += hashes;
            if b.get(j) == Some(&b'"') {
                let close = format!("\"{}", "#".repeat(hashes));
                i = src[j + 1..]
                    .find(&close)
                    .map_or(b.len(), |k| j + 1 + k + close.len());
                out.push_str("\"\"");
                continue;
            }
        }
        if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            i = j + 1;
            out.push_str("\"\"");
            continue;
        }
        if b[i] == b'\'' {
            if b[i..].starts_with(b"'\\") {
                i = src[i + 2..].find('\'').map_or(b.len(), |k| i + 2 + k + 1);
                out.push_str("' '");
                continue;
            }
            // A one-character literal; `'a` of a lifetime is left alone.
            if let Some(c) = src[i + 1..].chars().next()
                && src[i + 1 + c.len_utf8()..].starts_with('\'')
            {
                i += 1 + c.len_utf8() + 1;
                out.push_str("' '");
                continue;
            }
        }
        let c = src[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Removes `#[cfg(test)] mod name { … }` blocks (from stripped text, so
/// braces are balanced).
fn drop_test_modules(mut s: String) -> String {
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = s[at + "#[cfg(test)]".len()..].trim_start();
        let rest = rest.strip_prefix("pub(crate) ").unwrap_or(rest);
        if !rest.starts_with("mod ") {
            // A test-only item, not a module: keep it, hide the marker.
            s.replace_range(at..at + 2, "# ");
            continue;
        }
        let Some(open) = s[at..].find('{').map(|k| at + k) else {
            break;
        };
        let mut depth = 0usize;
        let mut end = s.len();
        for (k, ch) in s[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        s.replace_range(at..end, "");
    }
    s
}

/// The top-level modules named in `text` as `crate::name` or inside
/// `crate::{a, b::c}`.
fn targets(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = text;
    while let Some(k) = rest.find("crate::") {
        let before = rest[..k].chars().next_back();
        rest = &rest[k + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `$crate::` or `some_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1usize;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                if item_start && depth == 1 {
                    let id = ident(&group[k..]);
                    if !id.is_empty() {
                        out.insert(id);
                        item_start = false;
                    }
                }
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Edges between top-level modules: from → to → files holding the edge.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn graph() -> (BTreeSet<String>, Graph) {
    let src = src_dir();
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if p.is_dir()
            || (p.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main")
        {
            modules.insert(name);
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !modules.contains(&top) {
            continue; // lib.rs, main.rs
        }
        let text = drop_test_modules(strip(&std::fs::read_to_string(&f).unwrap()));
        for t in targets(&text) {
            if t != top && modules.contains(&t) {
                g.entry(top.clone())
                    .or_default()
                    .entry(t)
                    .or_default()
                    .insert(format!("src/{}", rel.display()));
            }
        }
    }
    (modules, g)
}

/// A cycle in `g`, as the list of modules walked, if there is one.
fn find_cycle(modules: &BTreeSet<String>, g: &Graph) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        g: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in g.get(v).into_iter().flat_map(|m| m.keys()) {
            match state.get(w) {
                Some(1) => {
                    let from = path.iter().position(|p| p == w).unwrap();
                    let mut c = path[from..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(w, g, state, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in modules {
        if !state.contains_key(m)
            && let Some(c) = visit(m, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_import_without_cycles() {
    let (modules, mut g) = graph();
    for (from, to, file) in KNOWN_UPWARD {
        let files = g.get(*from).and_then(|m| m.get(*to));
        assert!(
            files.is_some_and(|f| f.contains(*file)),
            "{from} -> {to} is no longer imported from {file}: remove it from KNOWN_UPWARD"
        );
        g.get_mut(*from).unwrap().remove(*to);
    }
    if let Some(cycle) = find_cycle(&modules, &g) {
        let mut why = format!("import cycle: {}\n", cycle.join(" -> "));
        for w in cycle.windows(2) {
            let files = &g[&w[0]][&w[1]];
            why.push_str(&format!("  {} -> {}: {:?}\n", w[0], w[1], files));
        }
        panic!("{why}");
    }
}

#[test]
fn store_imports_no_interface_config_csv_or_printing() {
    let (_, g) = graph();
    let store = g.get("store").cloned().unwrap_or_default();
    for up in [
        "cli", "config", "input", "render", "http", "app", "hr", "pipeline",
    ] {
        assert!(
            !store.contains_key(up),
            "store imports {up}: {:?}",
            store.get(up)
        );
    }
    let mut files = Vec::new();
    rust_files(&src_dir().join("store"), &mut files);
    for f in files {
        let text = drop_test_modules(strip(&std::fs::read_to_string(&f).unwrap()));
        for foreign in ["clap::", "csv::", "include!("] {
            assert!(!text.contains(foreign), "{} uses {foreign}", f.display());
        }
    }
}

/// One way to compile a query for both engines: `#[path]` modules, no
/// `include!` of Rust files anywhere.
#[test]
fn no_rust_file_is_included() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    for f in files {
        let text = strip(&std::fs::read_to_string(&f).unwrap());
        assert!(!text.contains("include!("), "{} uses include!", f.display());
    }
}

#[test]
fn the_checker_sees_paths_and_skips_comments_strings_and_tests() {
    let text = drop_test_modules(strip(
        "use crate::{a::X, b};\n// crate::c\nlet s = \"crate::d\";\nfn f() { crate::e::g() }\n\
         #[cfg(test)]\nmod tests { use crate::f; }\n",
    ));
    let got: Vec<_> = targets(&text).into_iter().collect();
    assert_eq!(got, ["a", "b", "e"]);
}
