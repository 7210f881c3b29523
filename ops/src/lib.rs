//! Operator tooling: `gigacompute configure` (host checks and changes), `monitor` (the live
//! view of a running appliance's counters) `nic` (its raw ports) and
//! `tuner` (what the self-tuning runtime does and why). Each reads a running
//! appliance only through its metrics region, never its memory.

pub mod cluster;
pub mod configure;
pub mod monitor;
pub mod nic;
pub mod tuner;
