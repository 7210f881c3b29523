//! The io_uring error path: a failed `io_uring_enter` must not hand buffers the kernel still
//! holds back to the pool, nor credit their late completions to the next batch.

use super::*;
use crate::array::iomem::IoMemory;

fn ring_on(file: File, mem: &IoMemory) -> Option<UringDevice> {
    match UringDevice::new(file, 8, None, mem) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("io_uring unavailable here ({e}); test skipped");
            None
        }
    }
}

#[test]
fn a_failed_submit_drains_its_requests_and_credits_nothing_to_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev");
    let file = open_device(&path, 1 << 20, false).unwrap().file;
    let mem = IoMemory::new(4096, 65536, 16, 2);
    let Some(mut dev) = ring_on(file, &mem) else {
        return;
    };
    let mut writes: Vec<IoOp> = (0..4u8)
        .map(|i| {
            let mut b = mem.alloc(4096);
            b.as_mut().fill(i + 1);
            IoOp::write(i as u64 * 4096, b)
        })
        .collect();
    // The kernel takes the writes, but the caller is told the submit failed.
    dev.inject_submit_errors = Some((1, libc::EBUSY));
    dev.execute(&mut writes);
    for op in &writes {
        assert!(
            op.buf.is_some(),
            "buffers came back only after their completions"
        );
        assert!(
            op.error().is_some(),
            "a batch whose submit failed is not reported done"
        );
    }
    // Every write had completed before execute returned: the data is there.
    let on_disk = std::fs::read(&path).unwrap();
    for i in 0..4 {
        assert!(
            on_disk[i * 4096..(i + 1) * 4096]
                .iter()
                .all(|&b| b == i as u8 + 1)
        );
    }
    drop(writes);
    // The next batch gets its own completions, not the writes' late ones.
    let mut sync = [IoOp::sync()];
    dev.execute(&mut sync);
    assert_eq!(
        sync[0].result, 0,
        "the sync is credited with its own completion"
    );
    let mut read = [IoOp::read(4096, mem.alloc(4096))];
    dev.execute(&mut read);
    assert_eq!(read[0].result, 4096);
    assert!(
        read[0]
            .buf
            .as_ref()
            .unwrap()
            .as_ref()
            .iter()
            .all(|&b| b == 2)
    );
    assert!(!dev.poisoned());
}

#[test]
fn a_ring_that_cannot_be_drained_is_poisoned_and_keeps_the_kernels_buffers() {
    // A read from an empty pipe never completes: the request stays in the kernel.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let read_end = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    let write_end = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let mem = IoMemory::new(4096, 65536, 16, 2);
    let Some(mut dev) = ring_on(read_end, &mem) else {
        return;
    };
    dev.inject_submit_errors = Some((u32::MAX, libc::EIO));
    let mut ops = [IoOp::read(0, mem.alloc(4096))];
    dev.execute(&mut ops);
    assert!(dev.poisoned());
    assert!(
        ops[0].buf.is_none(),
        "a buffer the kernel may still fill is never returned to the pool"
    );
    assert_eq!(ops[0].result, -(libc::EIO as i64));
    // Nothing runs on a poisoned ring, and nothing is credited to it.
    dev.inject_submit_errors = None;
    let mut sync = [IoOp::sync()];
    dev.execute(&mut sync);
    assert_eq!(sync[0].result, -(libc::EIO as i64));
    drop(write_end);
}
