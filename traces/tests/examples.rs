//! The example traces are valid against both the JSON Schema and the serde
//! types, and each line reads back to exactly what is written in the file.
//! The schema and the reader also agree on a set of broken lines.

use std::path::PathBuf;

use raft_trace::read_file;
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(dir().join("schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the four example traces, found {files:?}"
    );
    files
}

#[test]
fn every_example_line_matches_the_schema() {
    let schema = schema();
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{}:{}: {errors:?}",
                file.display(),
                i + 1
            );
        }
    }
}

#[test]
fn every_example_reads_and_round_trips() {
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        let reader = read_file(&file).unwrap();
        let header = serde_json::to_value(reader.header()).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            header,
            serde_json::from_str::<Value>(lines.next().unwrap()).unwrap()
        );
        let mut n = 0;
        for (record, line) in reader.zip(lines) {
            let record = record.unwrap_or_else(|e| panic!("{e}"));
            let written = serde_json::to_value(&record).unwrap();
            let original: Value = serde_json::from_str(line).unwrap();
            assert_eq!(written, original, "{}: line {}", file.display(), n + 2);
            n += 1;
        }
        assert_eq!(
            n,
            text.lines().count() - 1,
            "{}: not every line was read",
            file.display()
        );
    }
}

/// Lines that break the format in different ways: both the schema and the
/// reader must refuse each one.
#[test]
fn schema_and_reader_agree_on_broken_lines() {
    let header = r#"{"type":"header","format":"raft-trace/1","implementation":"t","nodes":[1,2],"observes":{"events":[]}}"#;
    let broken = [
        r#"{"type":"commit","node":1,"seq":1,"index":"3"}"#,
        r#"{"type":"commit","node":1,"seq":1}"#,
        r#"{"type":"commit","node":1,"seq":1,"index":3,"extra":true}"#,
        r#"{"type":"vote","node":1,"seq":1}"#,
        r#"{"type":"role","node":1,"seq":1,"role":"king","term":1,"reason":"other"}"#,
        r#"{"type":"send","node":1,"seq":1,"msg":{"id":1,"from":1,"to":2,"term":1,"rpc":"request_vote","last_index":0}}"#,
        r#"{"type":"send","node":1,"seq":1,"msg":{"id":1,"from":1,"to":2,"term":1,"rpc":"gossip"}}"#,
        r#"{"type":"invoke","client":1,"req":1,"op":{"f":"read"}}"#,
        r#"{"type":"return","client":1,"req":1,"status":"maybe"}"#,
        r#"{"type":"persist","node":1,"seq":1,"term":1,"last_index":0}"#,
    ];
    let schema = schema();
    for line in broken {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(!schema.is_valid(&v), "the schema accepts {line}");
        let input = format!("{header}\n{line}\n");
        let result: Result<Vec<_>, _> =
            raft_trace::read_all(input.as_bytes(), "t.ndjson").map(|x| x.1);
        let err = result.expect_err(line);
        assert_eq!(err.line, 2, "{line}: {err}");
    }
}
