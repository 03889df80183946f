//! A libjpeg error manager that treats corrupt data as an error.
//!
//! libjpeg, and so the `mozjpeg` crate, only *warns* about a truncated file, a
//! bad Huffman code or a marker in the middle of entropy data, then fills the
//! rest of the image with grey and carries on. For a server that answers a
//! corrupt frame with `invalid_frame` rather than analysing garbage, those
//! warnings must end the decode. This is the one module in the crate with
//! `unsafe`: building a `jpeg_error_mgr` needs libjpeg's C initialiser, and
//! reading the message code needs the raw pointer libjpeg hands its callbacks.
//! Both callbacks unwind, exactly as the `mozjpeg` crate's own error handler
//! does; `jpeg_decode::decode` catches the unwind and reports the reason.
//! One warning is tolerated: "extraneous bytes before marker", which many
//! cameras produce and which leaves the image intact.

#![allow(unsafe_code)]

use mozjpeg_sys::{
    c_int, jpeg_common_struct, jpeg_error_mgr, JWRN_EXTRANEOUS_DATA, JWRN_HIT_MARKER,
    JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF, JWRN_MUST_RESYNC, JWRN_NOT_SEQUENTIAL,
};

/// An error manager whose errors and corrupt-data warnings unwind with a reason.
pub fn strict_error_mgr() -> jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is a plain C struct (integers, raw pointers and
    // Option<fn>), for which all-zero bytes are a valid value (None / null);
    // jpeg_std_error then initialises every field, as libjpeg requires.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a valid, exclusively borrowed jpeg_error_mgr.
    unsafe {
        mozjpeg_sys::jpeg_std_error(&mut err);
    }
    err.error_exit = Some(unwind_on_error);
    err.emit_message = Some(unwind_on_corrupt_data);
    err
}

fn message_code(cinfo: &jpeg_common_struct) -> c_int {
    // SAFETY: libjpeg calls its callbacks with `err` pointing at the error
    // manager it was given, which outlives the decompressor.
    unsafe { cinfo.err.as_ref() }.map_or(-1, |e| e.msg_code)
}

extern "C-unwind" fn unwind_on_error(cinfo: &mut jpeg_common_struct) {
    let code = message_code(cinfo);
    std::panic::resume_unwind(Box::new(format!("decoder error (libjpeg code {code})")));
}

extern "C-unwind" fn unwind_on_corrupt_data(cinfo: &mut jpeg_common_struct, level: c_int) {
    // Levels >= 0 are trace messages; -1 is a warning about corrupt data.
    if level >= 0 {
        return;
    }
    let code = message_code(cinfo);
    let reason = match code {
        c if c == JWRN_EXTRANEOUS_DATA as c_int => return,
        c if c == JWRN_JPEG_EOF as c_int => "premature end of data (truncated)".to_string(),
        c if c == JWRN_HIT_MARKER as c_int => "marker inside entropy-coded data".to_string(),
        c if c == JWRN_HUFF_BAD_CODE as c_int => "bad Huffman code".to_string(),
        c if c == JWRN_MUST_RESYNC as c_int => "corrupt data, lost sync".to_string(),
        c if c == JWRN_NOT_SEQUENTIAL as c_int => "scans out of order".to_string(),
        c => format!("corrupt data (libjpeg warning {c})"),
    };
    std::panic::resume_unwind(Box::new(reason));
}
