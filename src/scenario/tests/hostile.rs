//! Files that must fail fast with a positioned error: unreadable, oversized, deeply nested,
//! alias bombs, huge scalars and counts, and mangled bytes; plus `load` itself.

use super::super::*;
use super::{BASE, CONTRACT_EXAMPLE, error, valid};

/// Goal: a missing or unreadable file is an error without a position, never a panic.
/// Method: a path that does not exist, and a directory.
#[test]
fn unreadable_files() {
    let missing = std::env::temp_dir().join("ferry-scenario-test-missing.yaml");
    let rendered = load(&missing).unwrap_err().to_string();
    assert_eq!(
        rendered,
        format!("{}: cannot read: no such file or directory (os error 2)", missing.display())
    );
    let directory = std::env::temp_dir();
    let error = load(&directory).unwrap_err();
    assert_eq!(error.span, None);
    assert!(matches!(error.kind, ErrorKind::Read { .. }), "{error}");
}

/// A file in the temporary directory, removed when dropped.
struct TemporaryFile(std::path::PathBuf);

impl TemporaryFile {
    fn new(name: &str, bytes: &[u8]) -> TemporaryFile {
        let path = std::env::temp_dir().join(format!("ferry-scenario-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).expect("the temporary directory is writable");
        TemporaryFile(path)
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Goal: `load` reads a valid file and labels errors with the path. Method: write, load.
#[test]
fn load_labels_with_path() {
    let file = TemporaryFile::new("ok.yaml", CONTRACT_EXAMPLE.as_bytes());
    assert_eq!(load(&file.0).map(|scenario| scenario.name), Ok("partition-heal".to_owned()));
    let file = TemporaryFile::new("bad.yaml", b"name: x\nduration: ten\nnodes: 1\n");
    let expected = format!("{}:2:11: expected a duration like 250ms, found \"ten\"", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

/// Goal: an oversized file is refused before parsing, by `parse` and by `load` (which
/// reads at most one byte past the budget). Method: 4 MiB + 1 of comment.
#[test]
fn hostile_file_too_large() {
    let text = format!("#{}", "x".repeat(FILE_BYTES_MAX as usize));
    assert_eq!(error(&text), "t.yaml:1:1: file is 4194305 bytes, more than the maximum 4194304");
    let file = TemporaryFile::new("large.yaml", text.as_bytes());
    let expected = format!("{}:1:1: file is 4194305 bytes, more than the maximum 4194304", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

/// Goal: deep nesting stops at the depth limit, block or flow. Method: 65 nested block
/// mappings, and 100,000 open brackets, and
/// a million nested block sequences.
#[test]
fn hostile_deep_nesting() {
    let mut text = String::from("name: x\nduration: 1s\nnodes: 1\nexpect:\n");
    for depth in 1..=DEPTH_MAX {
        text.push_str(&format!("{}k:\n", " ".repeat(depth)));
    }
    assert_eq!(error(&text), "t.yaml:68:65: yaml nested deeper than 64 levels");
    let text = format!("name: x\nduration: 1s\nnodes: {}", "[".repeat(100_000));
    assert_eq!(error(&text), "t.yaml:3:263: yaml nested deeper than 64 levels");
    let text = format!("name: x\nduration: 1s\nnodes:\n{}", "- ".repeat(1_000_000));
    assert_eq!(error(&text), "t.yaml:4:127: yaml nested deeper than 64 levels");
}

/// Goal: aliases are refused at the first one, so a "billion laughs" file costs nothing.
/// Method: the classic nine-level bomb.
#[test]
fn hostile_alias_bomb() {
    let mut text = String::from(
        "name: x\nduration: 1s\nnodes: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for level in 1..9 {
        let previous = level - 1;
        text.push_str(&format!("l{level}: &l{level} [{}]\n", vec![format!("*l{previous}"); 9].join(", ")));
    }
    assert_eq!(error(&text), "t.yaml:5:10: yaml aliases are not supported");
}

/// Goal: long scalars are refused at their start: over the byte limit with their length,
/// far over it (multi-megabyte) as soon as the scanner's lookahead runs out. Method: a
/// 100 KiB name, a 3 MiB name after a comment, a 3 MiB quoted workload key.
#[test]
fn hostile_huge_scalar() {
    let text = format!("name: {}\nduration: 1s\nnodes: 1\n", "x".repeat(100 << 10));
    assert_eq!(error(&text), "t.yaml:1:7: scalar is 102400 bytes, more than the maximum 65536");
    let text = format!("duration: 1s\nnodes: 1\nname: # the name\n  {}\n", "x".repeat(3 << 20));
    assert_eq!(
        error(&text),
        "t.yaml:4:3: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}workload:\n  - {{at: 1s, node: a, delete: \"{}\"}}\n", "x".repeat(3 << 20));
    assert_eq!(
        error(&text),
        "t.yaml:5:5: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
}

/// Goal: a long flow collection where a key could start (top level, after `- `) cannot
/// make the scanner buffer megabytes of tokens. Method: a 4 MiB top-level flow mapping and
/// a 4 MiB flow list in a block sequence; a 1 MiB flow list in value position is fine.
#[test]
fn hostile_long_flow_collections() {
    let text = format!("{{name: x, duration: 1s, nodes: 1, seed: 1{}}}", ", s: 1".repeat(690_000));
    assert_eq!(
        error(&text),
        "t.yaml:1:1: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}faults:\n  - [{}]\n", "1,".repeat(2_000_000));
    assert_eq!(
        error(&text),
        "t.yaml:5:5: yaml value longer than 131072 characters: split it, or write long lists in block style"
    );
    let text = format!("{BASE}faults: [{}]\n", "{at: 1s, heal: all},".repeat(10_000));
    assert_eq!(valid(&text).faults.len(), 10_000);
}

/// Goal: a huge node count is refused without allocating the nodes. Method: 10^8 and a
/// count beyond u64.
#[test]
fn hostile_node_count() {
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 100000000\n"),
        "t.yaml:3:8: node count 100000000 is outside 1..=10000"
    );
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 99999999999999999999999\n"),
        "t.yaml:3:8: node count 99999999999999999999999 is outside 1..=10000"
    );
}

/// Goal: the value budget bounds the tree's memory. Method: a flow list with more items
/// than `YAML_VALUES_MAX`, within the size budget.
#[test]
fn hostile_value_count() {
    let text = format!("name: x\nduration: 1s\nnodes: 1\nworkload: [{}]\n", "1,".repeat(YAML_VALUES_MAX));
    // The root mapping, the seven scalars before the list and the list itself count too,
    // so item number `YAML_VALUES_MAX - 8` is one too many; items are two columns apart.
    let column = 12 + 2 * (YAML_VALUES_MAX - 8 - 1);
    assert_eq!(error(&text), format!("t.yaml:4:{column}: more than 250000 yaml values"));
}

/// Goal: tags, extra documents and invalid UTF-8 are refused with a position. Method: one
/// input each.
#[test]
fn hostile_other_constructs() {
    assert_eq!(
        error("name: !!str x\nduration: 1s\nnodes: 1\n"),
        "t.yaml:1:7: yaml tags are not supported, found `!!str`"
    );
    assert_eq!(
        error("name: x\nduration: 1s\nnodes: 1\n---\nname: y\n"),
        "t.yaml:4:1: expected one yaml document, found a second one"
    );
    assert_eq!(error(""), "t.yaml:1:1: empty file: expected a mapping with `name`, `duration` and `nodes`");
    let file = TemporaryFile::new("latin1.yaml", b"name: x\nduration: 1s\nnodes: [caf\xe9]\n");
    let expected = format!("{}:3:12: file is not valid utf-8", file.0.display());
    assert_eq!(load(&file.0).unwrap_err().to_string(), expected);
}

/// Goal: arbitrary bytes never panic. Method: every prefix of the contract example, and
/// the example with every fifth byte in turn replaced by YAML punctuation.
#[test]
fn no_panic_on_mangled_input() {
    for end in 0..=CONTRACT_EXAMPLE.len() {
        if CONTRACT_EXAMPLE.is_char_boundary(end) {
            let _ = parse("t.yaml", &CONTRACT_EXAMPLE[..end]);
        }
    }
    let bytes = CONTRACT_EXAMPLE.as_bytes();
    for index in (0..bytes.len()).step_by(5) {
        for replacement in [b'[', b'{', b':', b'-', b'*', b'"', b'\n'] {
            let mut mangled = bytes.to_vec();
            mangled[index] = replacement;
            if let Ok(text) = std::str::from_utf8(&mangled) {
                let _ = parse("t.yaml", text);
            }
        }
    }
}
