//! Fault injection: a `DeviceIo` wrapper that makes chosen operations fail the way real
//! devices do (EIO, ENOSPC, short writes, flipped bits on read). Used by the tests; an
//! operator never configures it.

use super::device::{DeviceIo, IoOp, OpKind};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The op fails with this errno (libc::EIO, libc::ENOSPC).
    Errno(i32),
    /// A write stores only its first half and reports that.
    ShortWrite,
    /// A read returns its data with one bit flipped at this byte of the buffer.
    FlipBit(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub op: OpKind,
    /// Matching ops let through before this one fires (once).
    pub skip: u32,
    pub action: FaultAction,
}

/// Faults armed for one device; shared with the test that arms them.
#[derive(Default)]
pub struct FaultPlan {
    pending: Mutex<Vec<Fault>>,
}

impl FaultPlan {
    pub fn arm(&self, f: Fault) {
        self.pending.lock().push(f);
    }
    pub fn armed(&self) -> usize {
        self.pending.lock().len()
    }

    fn take(&self, kind: OpKind) -> Option<FaultAction> {
        let mut p = self.pending.lock();
        let i = p.iter().position(|f| f.op == kind)?;
        if p[i].skip > 0 {
            p[i].skip -= 1;
            return None;
        }
        Some(p.remove(i).action)
    }
}

pub struct FaultyDevice {
    pub inner: Box<dyn DeviceIo>,
    pub plan: Arc<FaultPlan>,
}

impl DeviceIo for FaultyDevice {
    fn execute(&mut self, ops: &mut [IoOp]) {
        let actions: Vec<_> = ops.iter().map(|op| self.plan.take(op.kind)).collect();
        let mut pass = Vec::new();
        let mut slots = Vec::new();
        for (i, (op, a)) in ops.iter_mut().zip(&actions).enumerate() {
            match a {
                Some(FaultAction::Errno(e)) => op.result = -(*e as i64),
                _ => {
                    if let (Some(FaultAction::ShortWrite), Some(b)) = (a, op.buf.as_mut()) {
                        let half = b.len() / 2 / 512 * 512;
                        b.set_len(half);
                    }
                    pass.push(std::mem::replace(op, IoOp::sync()));
                    slots.push(i);
                }
            }
        }
        self.inner.execute(&mut pass);
        for (op, i) in pass.into_iter().zip(slots) {
            ops[i] = op;
        }
        for (op, a) in ops.iter_mut().zip(&actions) {
            match a {
                Some(FaultAction::ShortWrite) => {
                    if let Some(b) = op.buf.as_mut() {
                        b.set_len(b.capacity());
                    }
                }
                Some(FaultAction::FlipBit(at)) if op.result > 0 => {
                    let b = op.buf.as_mut().expect("read buffer");
                    let at = at % b.len();
                    b.as_mut()[at] ^= 0x10;
                }
                _ => {}
            }
        }
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
