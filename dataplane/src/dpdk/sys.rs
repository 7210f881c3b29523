//! Raw bindings: bindgen's output for `dataplane/dpdk/shim.h` (DPDK 22.11 plus the `gc_*`
//! wrappers of its static-inline fast path). Everything here is `unsafe`; the safe layer is the
//! rest of `dataplane::dpdk`.

#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/dpdk_sys.rs"));
