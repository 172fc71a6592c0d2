//! Regenerates `include/peat_mesh.h` from the `ffi/` crate. With `--check`, fails
//! if the committed header differs from what would be generated.

use std::path::PathBuf;

fn main() {
    // `cargo run` sets CARGO_MANIFEST_DIR for the process; prefer it over the
    // compile-time value, which is stale when a shared target dir holds a
    // binary built from another checkout.
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let root = PathBuf::from(manifest).join("../..");
    let crate_dir = root.join("ffi");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    let path = root.join("include/peat_mesh.h");
    if std::env::args().any(|a| a == "--check") {
        let current = std::fs::read(&path).unwrap_or_default();
        if current != out {
            eprintln!("include/peat_mesh.h is out of date: run `cargo run -p gen-header`");
            std::process::exit(1);
        }
        println!("include/peat_mesh.h is up to date");
    } else {
        std::fs::write(&path, out).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
}
