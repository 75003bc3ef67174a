//! The source tree keeps its shape: imports point down the layers, no two files import each other, no file is too long.
//!
//! The layers, top to bottom, are listed in ARCHITECTURE.md; [`layer`] is the same list.
//! Only code outside `#[cfg(test)]` modules counts: a test may observe its layer through the
//! one above (the chat's tests read frames through the current protocol's codec).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest a file's code may be, its test module aside.
const MAX_LINES: usize = 600;

/// A module's layer (higher is nearer the top) and the name of its group, by its path
/// under `src/` (`server/chat/room`, `components/composer`).
fn layer(module: &str) -> Option<(u8, &'static str)> {
    let parts: Vec<&str> = module.split('/').collect();
    Some(match parts.as_slice() {
        ["server", "app" | "assets"] => (10, "server::app"),
        ["server", "net", ..] => (9, "server::net"),
        ["server", "admin"] => (9, "server::admin"),
        ["server", "state"] => (8, "server::state"),
        ["server", "legacy", ..] => (7, "server::legacy"),
        ["server", "chat", ..] => (6, "server::chat"),
        ["server", "ops", ..] => (5, "server::ops"),
        ["server", "log", ..] => (4, "server::log"),
        ["server", "config"] => (3, "server::config"),
        ["server", "http", ..] => (2, "server::http"),
        ["server", "clock" | "ids"] => (1, "server (leaves)"),
        ["app"] => (10, "app"),
        ["components", ..] => (9, "components"),
        ["api"] => (8, "api"),
        ["address"] => (8, "address"),
        ["client", ..] => (8, "client"),
        ["live_room"] => (7, "live_room"),
        ["model"] => (6, "model"),
        ["typing"] => (6, "model"),
        ["parts" | "standing" | "connection"] => (6, "model"),
        ["attention"] => (6, "attention"),
        ["protocol", ..] | ["rules"] | ["avatars"] | ["richtext"] | ["mentions"] | ["i18n"] => {
            (1, "shared")
        }
        _ => return None,
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/server/chat/room.rs` → `server/chat/room`; a `mod.rs` is its folder.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src/")
        .with_extension("");
    let s = rel.to_string_lossy().replace('\\', "/");
    s.strip_suffix("/mod").unwrap_or(&s).to_string()
}

/// The file's code before its `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The modules `code` imports through `crate::…` paths, as paths under `src/` that exist.
fn imports(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let path: Vec<&str> = rest
            .split("::")
            .map(|seg| {
                seg.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            })
            .take_while(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_lowercase() || c == '_' || c.is_numeric())
            })
            .collect();
        // The longest prefix that names a module.
        for n in (1..=path.len()).rev() {
            let m = path[..n].join("/");
            if known.contains(&m) {
                found.insert(m);
                break;
            }
        }
    }
    found
}

#[test]
fn imports_point_down_and_files_stay_short() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let texts: BTreeMap<String, String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|f| {
            (
                module_of(&src, f),
                std::fs::read_to_string(f).expect("readable"),
            )
        })
        .collect();
    let known: BTreeSet<String> = texts.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut edges = BTreeSet::new();
    for (module, text) in &texts {
        let code = code_of(text);
        let lines = code.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{module}: {lines} lines of code (at most {MAX_LINES})"
            ));
        }
        let Some((mine, group)) = layer(module) else {
            continue;
        };
        for import in imports(code, &known) {
            if &import == module {
                continue;
            }
            edges.insert((module.clone(), import.clone()));
            if let Some((theirs, their_group)) = layer(&import) {
                if theirs > mine {
                    problems.push(format!(
                        "{module} ({group}) imports {import}, a layer above ({their_group})"
                    ));
                }
            }
        }
    }
    for (a, b) in &edges {
        if a < b && edges.contains(&(b.clone(), a.clone())) {
            problems.push(format!("{a} and {b} import each other"));
        }
    }
    // Files of the bench tool are checked for length only.
    let mut bench = Vec::new();
    rust_files(&src.join("bin"), &mut bench);
    for f in bench {
        let text = std::fs::read_to_string(&f).expect("readable");
        let lines = code_of(&text).lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{}: {lines} lines of code", f.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "the tree lost its shape:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_module_has_a_one_sentence_summary() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable");
        let summary = text.lines().next().unwrap_or("");
        let Some(sentence) = summary.strip_prefix("//! ") else {
            problems.push(format!("{}: no `//!` summary line", f.display()));
            continue;
        };
        // One sentence: it ends the line, and no other sentence ends before it.
        let inner = sentence.trim_end_matches('.');
        if !sentence.ends_with('.') || inner.contains(". ") || sentence.chars().count() > 120 {
            problems.push(format!("{}: {sentence:?}", f.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "module summaries should be one short sentence (the detail goes below):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn only_the_server_folds_lookalikes() {
    // `rules::name_key` carries NFKC and confusable tables: 80 KB of brotli WASM if the page used it.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let users: Vec<String> = files
        .iter()
        .map(|f| module_of(&src, f))
        .filter(|m| !m.starts_with("server/") && m != "rules" && !m.starts_with("bin/"))
        .filter(|m| {
            let text = std::fs::read_to_string(src.join(format!("{m}.rs")))
                .or_else(|_| std::fs::read_to_string(src.join(m).join("mod.rs")))
                .expect("readable");
            code_of(&text).contains("name_key(")
        })
        .collect();
    assert!(
        users.is_empty(),
        "the page's code folds names with rules::name_fold, not name_key: {users:?}"
    );
}
