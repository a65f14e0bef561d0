//! Helpers shared by the CLI test files: run the real `ferry` binary as a child process and
//! give each test its own scratch directory.
#![allow(dead_code, reason = "each test file uses its own subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one `ferry` process did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferry ARGS` in `directory`.
pub fn ferry_in(directory: &Path, args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(directory)
        .output()
        .expect("cargo builds the ferry binary before its integration tests");
    Outcome {
        code: output.status.code().expect("ferry exits with a code, not by a signal"),
        stdout: String::from_utf8(output.stdout).expect("ferry writes UTF-8 to stdout"),
        stderr: String::from_utf8(output.stderr).expect("ferry writes UTF-8 to stderr"),
    }
}

/// Runs `ferry ARGS` in the package root, where `scenarios/` is.
pub fn ferry(args: &[&str]) -> Outcome {
    ferry_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// An empty directory for one test's files, under cargo's scratch directory for tests.
pub fn fresh_directory(test_name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli").join(test_name);
    if directory.exists() {
        std::fs::remove_dir_all(&directory).expect("the scratch directory belongs to this test");
    }
    std::fs::create_dir_all(&directory).expect("the scratch directory can be created");
    directory
}

/// Writes `text` to `directory/name` and returns the path.
pub fn write_file(directory: &Path, name: &str, text: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, text).expect("the scratch directory is writable");
    path
}
