//! runtime/src/compute_budget.rs is fuzzed from its own source: pulling in the runtime crate
//! (Agave's SVM, program runtime, sbpf) would make every fuzz build several times heavier. The
//! file is copied without its inner doc comments (which `include!` refuses) and compiled in a
//! module where `solana_compute_budget` is a small shim with the same constants and struct
//! (src/lib.rs).
use std::{env, fs, path::PathBuf};

fn main() {
    let src = "../runtime/src/compute_budget.rs";
    println!("cargo:rerun-if-changed={src}");
    let text = fs::read_to_string(src).expect("read compute_budget.rs");
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("compute_budget.rs");
    fs::write(out, body).expect("write");
}
