//! The `ferry` command-line tool: scenario runner, seed sweeper, validator and real node.
#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod node;
