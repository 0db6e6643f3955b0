//! The harness's rooms stand in layers (docs/src/architecture.md): each top-level module of
//! `harness/src`, taken whole with its submodules, imports only rooms of its own layer or
//! below, never around a circle, and `unsafe` lives in `sys` alone. Read from the source,
//! so a new import that breaks the house fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every room and its layer, from the bottom. A room missing here fails the test, so a
/// new room has to be placed deliberately.
const LAYERS: &[(&str, u8)] = &[
    ("sys", 0),
    // Plain data: what a test declares, what crosses a process boundary, errors.
    ("duration", 1),
    ("error", 1),
    ("plan", 1),
    ("registry", 1),
    ("runtime", 1),
    ("wire", 1),
    // Building a sandbox, from inside the process that builds it.
    ("coverage", 2),
    ("sandbox", 2),
    // The forked processes.
    ("process", 3),
    // The runner's threads, and a test's networks.
    ("network", 4),
    ("runner", 4),
    // `nstest::wall`, called by a test: asks the process room whether it runs in one.
    ("wall", 4),
    ("lib", 5),
];

fn harness_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../harness/src")
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("harness/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The room a file belongs to: its first path component below `harness/src`.
fn room_of(file: &Path) -> String {
    let relative = file.strip_prefix(harness_src()).expect("under harness/src");
    let first = relative.components().next().expect("a component");
    let name = first.as_os_str().to_str().expect("UTF-8");
    name.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its `//` comments (doc comments name other rooms freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The rooms a file names through `crate::room` or `use crate::{room::.., other}`.
fn rooms_named(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Each item at the group's top level starts with a room.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        named.insert(identifier(&group[i..]).to_owned());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            named.insert(identifier(rest).to_owned());
        }
    }
    named
}

#[test]
fn rooms_import_only_their_own_layer_or_below_and_never_around_a_circle() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&harness_src(), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let room = room_of(file);
        let Some(&layer) = layers.get(room.as_str()) else {
            wrong.push(format!("{}: room `{room}` has no layer", file.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file");
        for other in rooms_named(&code(&text)) {
            if other == room || other == "__private" {
                continue;
            }
            match layers.get(other.as_str()) {
                Some(&above) if above > layer => wrong.push(format!(
                    "{}: `{room}` (layer {layer}) imports `{other}` (layer {above})",
                    file.display()
                )),
                _ => {}
            }
            graph.entry(room.clone()).or_default().insert(other);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // No circle within a layer either: depth-first search for a back edge.
    fn visit(
        room: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|r| r == room) {
            let mut circle = path[at..].to_vec();
            circle.push(room.to_owned());
            return Some(circle);
        }
        if !done.insert(room.to_owned()) {
            return None;
        }
        path.push(room.to_owned());
        for next in graph.get(room).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for room in graph.keys() {
        let circle = visit(room, &graph, &mut Vec::new(), &mut done);
        assert!(
            circle.is_none(),
            "rooms in a circle: {}",
            circle.unwrap().join(" -> ")
        );
    }
}

#[test]
fn unsafe_lives_in_sys_alone() {
    let mut files = Vec::new();
    rust_files(&harness_src(), &mut files);
    let opted_in: Vec<String> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).expect("a source file");
            code(&text).contains("allow(unsafe_code)")
        })
        .map(|file| room_of(file))
        .filter(|room| room != "sys")
        .collect();
    assert!(opted_in.is_empty(), "unsafe outside sys: {opted_in:?}");
}

#[test]
fn the_reader_finds_circles_and_groups() {
    let named = rooms_named(
        "use crate::{error::Step, wire::{Report, X}, sys};\nlet _ = crate::plan::Plan;",
    );
    assert_eq!(
        named,
        ["error", "plan", "sys", "wire"].map(String::from).into()
    );
}
