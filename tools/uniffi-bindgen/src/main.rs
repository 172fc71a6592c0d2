//! UniFFI's bindings generator, pinned to the workspace's UniFFI version:
//! `cargo run -p uniffi-bindgen -- generate --library <libpeat_mesh_ffi.so> --language kotlin ...`
//! (`scripts/gen-kotlin` runs it).

fn main() {
    uniffi::uniffi_bindgen_main()
}
