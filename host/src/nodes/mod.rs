//! Native (in-process, trusted) node kinds. Each is a plain function over host
//! values; `pipeline::registry` maps a manifest `kind` to one of them.

pub mod jpeg_decode;
