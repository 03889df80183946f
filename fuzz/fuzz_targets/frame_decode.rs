//! `validate_jpeg`, then `jpeg_decode::decode` on whatever passes: never a
//! panic or abort, only `Ok` images that match their size or `invalid_frame`
//! errors. The body is `streamhost::fuzz_entry::frame_decode`, which
//! `host/tests/fuzz_regressions.rs` replays over the corpus and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(broken) = streamhost::fuzz_entry::frame_decode(data) {
        panic!("frame_decode invariant broken: {broken}");
    }
});
