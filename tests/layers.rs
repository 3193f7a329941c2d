#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! Layers the code can't cross: every `use` and every path in `src/**/*.rs` (comments and string
//! literals left out) is read, and a module that reaches across one of these rules fails the test:
//!
//! - the workflow core (`workflow`, and the `domain` and `money` it is made of) reaches no other
//!   module of the crate and no UI, async, SQL, device or HTTP crate;
//! - the ui opens no backend, starts no device reader and seeds no database: `app` does that and
//!   hands the ui its handles;
//! - `devices` never reaches `config` (config holds devices' settings, not the other way round);
//! - `ledger` and `server::pg` know nothing of the ui, the devices or HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its module path (`ui::keypad`) and every path it names, made absolute where
/// it starts at `crate`, `super` or `self` (`crate::ledger::Ledger`); other paths as written.
struct Module {
    file: PathBuf,
    name: Vec<String>,
    paths: BTreeSet<String>,
    idents: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Drops comments, string and char literals; keeps identifiers, `::` and punctuation.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 1;
            i += 2;
            while i < chars.len() && depth > 0 {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && raw_string_end(&chars, i).is_some() {
            i = raw_string_end(&chars, i).unwrap();
        } else if c == 'b' && next == Some('"') {
            i = string_end(&chars, i + 1);
        } else if c == '"' {
            i = string_end(&chars, i);
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token::Ident(word.trim_start_matches("r#").to_string()));
        } else if c == ':' && next == Some(':') {
            out.push(Token::PathSep);
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(Token::Punct(c));
            }
            i += 1;
        }
    }
    out
}

fn string_end(chars: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"…"`, `r#"…"#`: the index after the literal, if `start` opens one.
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if chars.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(i)
}

/// Expands one `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn use_paths(tokens: &[Token], prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(word) if word == "as" => {
                i += 2; // `as name`
                continue;
            }
            Token::Ident(word) => path.push(word.clone()),
            Token::PathSep => {}
            Token::Punct('*') => path.push("*".to_string()),
            Token::Punct('{') => {
                i += 1;
                loop {
                    i += use_paths(&tokens[i..], &path, out);
                    match tokens.get(i) {
                        Some(Token::Punct(',')) => i += 1,
                        _ => break,
                    }
                    if tokens.get(i) == Some(&Token::Punct('}')) {
                        break;
                    }
                }
                i += 1; // `}`
                return i;
            }
            Token::Punct(',' | '}' | ';') => break,
            Token::Punct(_) => {}
        }
        i += 1;
    }
    if path.len() > prefix.len() {
        out.push(path);
    }
    i
}

/// `crate::…` as is; `super::` and `self::` resolved against the module; others as written.
fn absolute(module: &[String], path: &[String]) -> String {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => rest = &path[1..],
        Some("self") => {
            base = module.to_vec();
            rest = &path[1..];
        }
        Some("super") => {
            base = module.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        _ => return path.join("::"),
    }
    let mut full = vec!["crate".to_string()];
    full.extend(base);
    full.extend(rest.iter().cloned());
    full.join("::")
}

fn module_name(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

fn read_module(src: &Path, file: &Path) -> Module {
    let name = module_name(src, file);
    let tokens = tokens(&std::fs::read_to_string(file).unwrap());
    let mut paths = BTreeSet::new();
    let mut idents = BTreeSet::new();
    // Inline modules (`mod tests { use super::*; }`) nest the module path: (name, brace depth).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let mut name = name.clone();
        name.extend(inline.iter().map(|(m, _)| m.clone()));
        match &tokens[i] {
            Token::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Token::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
                i += 1;
            }
            Token::Ident(word)
                if word == "mod"
                    && matches!(tokens.get(i + 1), Some(Token::Ident(_)))
                    && tokens.get(i + 2) == Some(&Token::Punct('{')) =>
            {
                if let Some(Token::Ident(module)) = tokens.get(i + 1) {
                    depth += 1;
                    inline.push((module.clone(), depth));
                }
                i += 3;
            }
            Token::Ident(word) if word == "use" => {
                let mut found = Vec::new();
                let end = tokens[i + 1..]
                    .iter()
                    .position(|t| *t == Token::Punct(';'))
                    .map_or(tokens.len(), |p| i + 1 + p);
                use_paths(&tokens[i + 1..end], &[], &mut found);
                paths.extend(found.iter().map(|p| absolute(&name, p)));
                i = end;
            }
            Token::Ident(word)
                if tokens.get(i + 1) == Some(&Token::PathSep) && (i == 0 || tokens[i - 1] != Token::PathSep) =>
            {
                let mut path = vec![word.clone()];
                let mut j = i + 1;
                while tokens.get(j) == Some(&Token::PathSep) {
                    match tokens.get(j + 1) {
                        Some(Token::Ident(next)) => path.push(next.clone()),
                        _ => break,
                    }
                    j += 2;
                }
                idents.extend(path.iter().cloned());
                paths.insert(absolute(&name, &path));
                i = j;
            }
            Token::Ident(word) => {
                idents.insert(word.clone());
                i += 1;
            }
            _ => i += 1,
        }
    }
    Module {
        file: file.to_path_buf(),
        name: module_name(src, file),
        paths,
        idents,
    }
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

fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files.iter().map(|f| read_module(&src, f)).collect()
}

/// The top-level module of the crate a path names (`crate::ledger::Ledger` → `ledger`).
fn crate_module(path: &str) -> Option<&str> {
    path.strip_prefix("crate::")
        .map(|rest| rest.split("::").next().unwrap_or(rest))
}

/// The top-level modules each top-level module names, for reachability.
fn graph(modules: &[Module]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in modules {
        let Some(top) = module.name.first() else { continue };
        let edges = graph.entry(top.clone()).or_default();
        for path in &module.paths {
            if let Some(target) = crate_module(path)
                && target != top
            {
                edges.insert(target.to_string());
            }
        }
    }
    graph
}

fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(next) = todo.pop() {
        if seen.insert(next.clone()) {
            todo.extend(graph.get(&next).into_iter().flatten().cloned());
        }
    }
    seen
}

/// Crates of the UI, async runtimes, SQL, devices and HTTP.
const OUTER_CRATES: &[&str] = &[
    "egui",
    "eframe",
    "egui_kittest",
    "tokio",
    "axum",
    "reqwest",
    "hyper",
    "http",
    "http_body_util",
    "rusqlite",
    "tokio_postgres",
    "deadpool_postgres",
    "serialport",
    "hidapi",
    "rusb",
    "arboard",
    "windows_sys",
];

fn in_module(module: &Module, top: &str) -> bool {
    module.name.first().map(String::as_str) == Some(top)
}

fn outer_crate(path: &str) -> Option<&str> {
    let first = path.split("::").next()?;
    OUTER_CRATES.iter().copied().find(|c| *c == first)
}

/// Every rule broken, one line each, so a failure names all of them at once.
fn violations(modules: &[Module]) -> Vec<String> {
    let mut found = Vec::new();
    let graph = graph(modules);
    let core = ["workflow", "domain", "money"];

    // The workflow core reaches only itself, and no outer crate.
    let reached = reachable(&graph, "workflow");
    for module in reached.iter().filter(|m| !core.contains(&m.as_str())) {
        found.push(format!("the workflow core reaches `crate::{module}`"));
    }
    for module in modules.iter().filter(|m| core.iter().any(|c| in_module(m, c))) {
        for path in &module.paths {
            if let Some(krate) = outer_crate(path) {
                found.push(format!(
                    "{}: the workflow core names `{path}` ({krate})",
                    module.file.display()
                ));
            }
        }
    }

    // The ui opens no backend, starts no device reader, seeds no database.
    let ui_forbidden_modules = [
        "crate::ledger",
        "crate::remote",
        "crate::server",
        "crate::backend",
        "crate::worker::Worker",
    ];
    let ui_forbidden_names = [
        "EmbeddedBackend",
        "open_boxed",
        "seed_demo",
        "SerialReader",
        "HidReaders",
        "HidWatchSettings",
        "system_bus",
        "start_keyboard_capture",
        "start_keyboard_gate",
        "KeyboardCapture",
        "KeyboardGate",
        "spawn_worker",
    ];
    for module in modules.iter().filter(|m| in_module(m, "ui")) {
        for path in &module.paths {
            if ui_forbidden_modules
                .iter()
                .any(|p| path == p || path.starts_with(&format!("{p}::")))
            {
                found.push(format!("{}: the ui names `{path}`", module.file.display()));
            }
            if matches!(
                outer_crate(path),
                Some(
                    "rusqlite" | "tokio_postgres" | "deadpool_postgres" | "reqwest" | "serialport" | "hidapi" | "rusb"
                )
            ) {
                found.push(format!("{}: the ui names `{path}`", module.file.display()));
            }
        }
        for name in ui_forbidden_names.iter().filter(|n| module.idents.contains(**n)) {
            found.push(format!(
                "{}: the ui uses `{name}` (wiring belongs in `app`)",
                module.file.display()
            ));
        }
    }

    // Devices never reach config.
    if reachable(&graph, "devices").contains("config") {
        let via: Vec<String> = reachable(&graph, "devices")
            .into_iter()
            .filter(|m| graph.get(m).is_some_and(|e| e.contains("config")))
            .collect();
        found.push(format!("`devices` reaches `config` (through {via:?})"));
    }

    // The ledger and the PostgreSQL store know nothing of the ui, devices or HTTP.
    let stores = modules
        .iter()
        .filter(|m| in_module(m, "ledger") || m.name == ["server", "pg"]);
    for module in stores {
        for path in &module.paths {
            let crate_layer = ["ui", "app", "devices", "workflow", "remote"]
                .iter()
                .any(|layer| crate_module(path) == Some(layer));
            let http_or_ui = matches!(
                outer_crate(path),
                Some("egui" | "eframe" | "axum" | "reqwest" | "hyper" | "http" | "serialport" | "hidapi" | "rusb")
            );
            if crate_layer || http_or_ui || path.starts_with("crate::server::api") {
                found.push(format!("{}: the store names `{path}`", module.file.display()));
            }
        }
    }
    if reachable(&graph, "ledger")
        .iter()
        .any(|m| ["ui", "app", "devices", "remote", "server"].contains(&m.as_str()))
    {
        found.push(format!("`ledger` reaches {:?}", reachable(&graph, "ledger")));
    }
    found
}

#[test]
fn no_module_crosses_a_layer() {
    let modules = modules();
    assert!(
        modules.len() > 50,
        "the sources were not found: {} files",
        modules.len()
    );
    let found = violations(&modules);
    assert!(
        found.is_empty(),
        "{} layer rule(s) broken:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The reader itself: grouped imports, `super`, comments and strings are read as the compiler
/// would, so a rule cannot pass because an import was missed.
#[test]
fn the_reader_sees_what_the_compiler_sees() {
    let source = r##"
        // use crate::ledger::Ledger;
        /* use egui::Ui; */
        use crate::{domain::{GuestId, ScanEvent as Scan}, money::*};
        use super::keypad::field;
        const TEXT: &str = "crate::ledger::Ledger";
        const RAW: &str = r#"egui::Ui"#;
        fn f<'a>(x: &'a str) -> char { let _ = crate::backend::BackendKind::Embedded; 'x' }
        fn g() { tokio::spawn(async {}); }
        mod tests { use super::*; mod deeper { use super::super::Up; } }
    "##;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("ui")).unwrap();
    let file = src.join("ui").join("screens.rs");
    std::fs::write(&file, source).unwrap();
    let module = read_module(&src, &file);
    assert_eq!(module.name, ["ui", "screens"]);
    let paths: Vec<&str> = module.paths.iter().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "crate::backend::BackendKind::Embedded",
            "crate::domain::GuestId",
            "crate::domain::ScanEvent",
            "crate::money::*",
            "crate::ui::keypad::field",
            "crate::ui::screens::*",
            "crate::ui::screens::Up",
            "tokio::spawn",
        ]
    );
}

/// Each rule fires on a module that breaks it.
#[test]
fn each_rule_catches_a_crossing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = [
        ("workflow.rs", "use crate::backend::BackendKind;"),
        ("backend.rs", "use crate::ledger::Ledger;"),
        ("domain.rs", "fn f(_: egui::Ui) {}"),
        ("money.rs", ""),
        ("ui/mod.rs", "fn f() { let _ = EmbeddedBackend::open(); }"),
        ("devices/mod.rs", "use crate::diagnostics::scan_config;"),
        ("diagnostics.rs", "use crate::config::ScanSettings;"),
        ("config.rs", "use crate::devices::serial::SerialSettings;"),
        ("ledger/mod.rs", "use crate::devices::DeviceMessage;"),
        ("server/pg.rs", "use axum::Json;"),
    ];
    let mut modules = Vec::new();
    for (name, text) in files {
        let file = src.join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, text).unwrap();
        modules.push(read_module(&src, &file));
    }
    let found = violations(&modules).join("\n");
    for expected in [
        "the workflow core reaches `crate::backend`",
        "the workflow core reaches `crate::ledger`",
        "the workflow core names `egui::Ui`",
        "the ui uses `EmbeddedBackend`",
        "`devices` reaches `config`",
        "the store names `crate::devices::DeviceMessage`",
        "the store names `axum::Json`",
        "`ledger` reaches",
    ] {
        assert!(found.contains(expected), "missing «{expected}» in:\n{found}");
    }
}
