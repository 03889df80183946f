//! `Manifest::parse` on UTF-8 input, then `Dag::build` and the native nodes'
//! typed configs. The body is `streamhost::fuzz_entry::manifest`, which
//! `host/tests/fuzz_regressions.rs` replays over the corpus and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = streamhost::fuzz_entry::manifest(data) {
        panic!("manifest invariant broken: {broken}");
    }
});
