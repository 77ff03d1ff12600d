//! Runs codegen over the workspace's `spec/` directory (or `$SPEC_DIR`, used by test fixtures).
fn main() {
    println!("cargo:rerun-if-env-changed=SPEC_DIR");
    let spec_dir = std::env::var("SPEC_DIR").unwrap_or_else(|_| "../spec".to_string());
    if let Err(diagnostics) = codegen::compile(&spec_dir) {
        // Cargo shows a failed build script's stderr: one located line per mistake in the spec.
        eprintln!("{diagnostics}");
        std::process::exit(1);
    }
}
