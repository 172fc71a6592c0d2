#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peat_mesh::fuzzing::revocation(data));
