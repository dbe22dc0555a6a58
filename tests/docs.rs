//! The documentation stays true: every relative link in the project's
//! markdown points at a file that exists, and the header the third-party
//! guide tells people to start from is one `raftcheck validate` accepts.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn markdown_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if depth > 0 && !name.starts_with('.') && name != "target" && name != "data" {
                markdown_files(&path, depth - 1, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of `[text](target)` links outside fenced code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn relative_links_resolve() {
    let mut files = Vec::new();
    markdown_files(&root(), 3, &mut files);
    assert!(files.len() >= 8, "found only {files:?}");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.starts_with('#')
                || link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
                || link.contains(' ')
            {
                continue;
            }
            let target = link.split('#').next().unwrap();
            if !file.parent().unwrap().join(target).exists() {
                broken.push(format!("{}: {link}", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_sees_a_broken_link() {
    let found = links("see [a](x.md) and\n```\n[b](y.md)\n```\n[c](z.md#part)");
    assert_eq!(found, ["x.md", "z.md#part"]);
}

/// The first ```json block after `marker` in the guide.
fn guide_json(marker: &str) -> String {
    let guide = std::fs::read_to_string(root().join("docs/check-your-raft.md")).unwrap();
    let after = guide.split(marker).nth(1).expect("marker in the guide");
    let block = after.split("```json").nth(1).expect("a json block");
    block.split("```").next().unwrap().to_string()
}

#[test]
fn the_guides_header_is_accepted_and_a_misspelt_feature_is_not() {
    let header: serde_json::Value =
        serde_json::from_str(&guide_json("The header decides")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("header.ndjson");
    std::fs::write(&good, format!("{header}\n")).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate"])
        .arg(&good)
        .assert()
        .code(0);

    let mut wrong = header.clone();
    wrong["features"][0] = "heart-beat".into();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, format!("{wrong}\n")).unwrap();
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate"])
        .arg(&bad)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("heart-beat"), "{text}");
}
