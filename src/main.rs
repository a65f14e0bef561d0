//! The `ferry` binary: parses arguments and hands over to the library.

fn main() {
    std::process::exit(ferry::cli::main_with_args(std::env::args_os()));
}
