//! The house rules of `ARCHITECTURE.md`, checked by scanning the source: every top-level
//! module has a layer, imports only from layers below its own (so no cycle can form between
//! top-level modules), and `rusqlite` is named only inside the store's SQLite implementation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its layer; a module may use only lower layers.
/// Keep in step with the layer table of `ARCHITECTURE.md`.
const LAYERS: &[(&str, u8)] = &[
    ("domain", 0),
    ("config", 1),
    ("metrics", 1),
    ("store", 2),
    ("idp", 2),
    ("membership", 3),
    ("signing", 3),
    ("signin", 4),
    ("provisioning", 4),
    ("authorize", 4),
    ("web", 5),
    ("state", 6),
    ("admin", 7),
    ("downstream", 7),
    ("home", 7),
    ("oidc", 7),
    ("provider", 7),
    ("scim", 7),
    ("app", 8),
    ("cli", 9),
];

/// Where `rusqlite` may be named.
const SQLITE_HOME: &str = "store/sqlite/";
/// Where `tokio_postgres` and `deadpool` (the PostgreSQL client and its pool) may be named.
const POSTGRES_HOME: &str = "store/postgres/";

/// The files of `src/` outside `home` whose code (comments aside) names `word`.
fn naming_outside(home: &str, word: &str) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files
        .iter()
        .map(|f| f.strip_prefix(src_dir()).unwrap().to_path_buf())
        .filter(|relative| !relative.to_string_lossy().starts_with(home))
        .filter(|relative| {
            code_of(&std::fs::read_to_string(src_dir().join(relative)).unwrap()).contains(word)
        })
        .map(|relative| format!("src/{}", relative.display()))
        .collect()
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (`//` to the end of the line, and `/* */`), so a doc comment
/// that names a higher layer ("driven by ...") is not an import. String literals are kept:
/// code does not build paths to modules in strings.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The top-level modules `code` names through `crate::x` or `crate::{x, y::z}`.
fn crate_refs(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Items at depth one of the braces: `crate::{a, b::{c, d}}` names a and b.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.push(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out
}

/// The top-level module a file under `src/` belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .to_string();
    first.trim_end_matches(".rs").to_owned()
}

#[test]
fn every_top_level_module_imports_only_from_the_layers_below_it() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(src_dir()).unwrap();
        let module = module_of(relative);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = layers.get(module.as_str()) else {
            problems.push(format!(
                "src/{module} has no layer: add it to LAYERS here and to ARCHITECTURE.md"
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for target in crate_refs(&code) {
            if target == module {
                continue;
            }
            match layers.get(target.as_str()) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => problems.push(format!(
                    "src/{} (layer {own}) uses crate::{target} (layer {theirs}): a layer may use only lower ones",
                    relative.display()
                )),
                None => problems.push(format!(
                    "src/{} uses crate::{target}, which has no layer",
                    relative.display()
                )),
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rusqlite_is_named_only_inside_the_sqlite_store() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let offenders: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(src_dir()).unwrap().to_path_buf())
        .filter(|relative| !relative.to_string_lossy().starts_with(SQLITE_HOME))
        .filter(|relative| {
            code_of(&std::fs::read_to_string(src_dir().join(relative)).unwrap())
                .contains("rusqlite")
        })
        .map(|relative| format!("src/{}", relative.display()))
        .collect();
    assert!(
        offenders.is_empty(),
        "rusqlite outside src/{SQLITE_HOME}: {offenders:?}"
    );
}

#[test]
fn the_postgresql_client_and_pool_are_named_only_inside_the_postgresql_store() {
    for word in [
        "tokio_postgres",
        "deadpool",
        "postgres_types",
        "tokio_postgres_rustls",
    ] {
        let offenders = naming_outside(POSTGRES_HOME, word);
        assert!(
            offenders.is_empty(),
            "{word} outside src/{POSTGRES_HOME}: {offenders:?}"
        );
    }
    // And the other way round: neither backend names the other's client.
    assert!(
        naming_outside(SQLITE_HOME, "rusqlite")
            .iter()
            .all(|f| !f.starts_with(&format!("src/{POSTGRES_HOME}"))),
        "rusqlite inside the PostgreSQL store"
    );
}

/// The scanner itself: comments are not imports, braces are followed, strings are kept.
#[test]
fn the_scanner_finds_grouped_imports_and_ignores_comments() {
    let code = code_of(
        "use crate::{web::x, store::{a, b}};\n// crate::app in a comment\n/* crate::cli */ let s = \"//\"; crate::domain::y();",
    );
    assert_eq!(crate_refs(&code), ["web", "store", "domain"]);
    assert!(code.contains("\"//\""));
}
