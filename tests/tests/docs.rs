//! The README and the book (`docs/`): every relative link resolves (the file, and the
//! heading an anchor names), the book builds with mdbook without a warning, and the book's
//! copies of the example files are those files. (The book's Rust is compiled and run by
//! rustdoc: `docs/book.rs` includes every page.)
//!
//! Without mdbook the build test says so and passes, except under CI (`CI=true`), where
//! `.ci/run` installs it. It runs mdbook from root's toolchain directory, so `.ci/run` runs
//! it in the root pass only.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The Markdown files a reader follows links in: the README, the changelog, every page.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// The targets of the inline links `[text](target)` of `text`, outside code.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans, whose brackets are not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let Some(end) = tail.find(')') else { break };
            targets.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    targets
}

/// The anchors mdbook (and GitHub) give the headings of `text`: lowercase, spaces to `-`,
/// other punctuation but `-` and `_` dropped.
fn anchors(text: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        found.push(
            heading
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => {
                        Some(c.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect(),
        );
    }
    found
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for target in link_targets(&text) {
            // Web links, and mdbook's draft chapters (`[Title]()`, a page to come).
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(path)
            };
            if !file.exists() {
                broken.push(format!(
                    "{}: {target} (no {})",
                    document.display(),
                    file.display()
                ));
                continue;
            }
            if !anchor.is_empty() && file.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&file).unwrap());
                if !headings.iter().any(|h| h == anchor) {
                    broken.push(format!(
                        "{}: {target} (no such heading)",
                        document.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 20,
        "only {checked} links found: is the scanner broken?"
    );
}

#[test]
fn the_link_scanner_finds_links_and_anchors() {
    let text = "# A `b` c!\n[x](a.md#a-b-c) `[not](a link)` [y](#z)\n```\n[no](n.md)\n```\n";
    assert_eq!(link_targets(text), ["a.md#a-b-c", "#z"]);
    assert_eq!(anchors(text), ["a-b-c"]);
}

#[test]
fn the_book_builds_without_a_warning() {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("book");
    let out = match Command::new("mdbook")
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(&out_dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !under_ci,
                "mdbook is missing under CI ({e}); .ci/run installs it"
            );
            eprintln!("skipped: mdbook is not installed (cargo install --locked mdbook)");
            return;
        }
    };
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mdbook build failed:\n{log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "mdbook warned:\n{log}"
    );
    assert!(out_dir.join("index.html").exists(), "{log}");
}

/// The text of the first ```rust block of `page` that starts with `first_line`, without
/// the lines rustdoc hides.
fn book_example(page: &str, first_line: &str) -> String {
    let text = std::fs::read_to_string(root().join("docs/src").join(page)).unwrap();
    let start = text
        .find(&format!("```rust\n{first_line}\n"))
        .unwrap_or_else(|| panic!("{page}: no example starting {first_line:?}"))
        + "```rust\n".len();
    let block = &text[start..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .filter(|l| !(l.starts_with("# ") || *l == "#"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_books_copies_of_the_examples_are_the_tested_files() {
    let root = root();
    let listener = std::fs::read_to_string(root.join("examples/src/listener.rs")).unwrap();
    assert_eq!(
        book_example("getting-started.md", "// src/lib.rs"),
        format!("// src/lib.rs\n{listener}")
    );
    let service = std::fs::read_to_string(root.join("examples/tests/readme.rs")).unwrap();
    let service = &service[service.find("use nstest::ns_test;").unwrap()..];
    assert_eq!(
        book_example("getting-started.md", "// tests/service.rs"),
        format!("// tests/service.rs\n{service}")
    );
}
