//! The slot commit (records → data writes → flush → superblock → flush → publish) and the
//! compaction trigger, as `ArrayStore` methods.

use super::appender::Appender;
use super::device::IoOp;
use super::index::Loc;
use super::layout::{self, Probe, SegmentState};
use super::superblock_io::write_superblock;
use super::{ArrayStore, Writer};
use crate::StoreError;
use crate::commitment::Commitment;
use ahash::HashSet;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_pubkey::Pubkey;
use std::sync::atomic::Ordering;

impl ArrayStore {
    pub(super) fn commit_locked(
        &self,
        w: &mut Writer,
        commitment: &mut Commitment,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        let s = &*self.shared;
        // The accounts' previous states leave the lattice hash (they are cached: the slot's
        // transactions just read them).
        let old = accounts
            .iter()
            .map(|(k, _)| s.current(k).map(|v| v.map(|(a, _)| a)))
            .collect::<Result<Vec<_>, _>>()?;
        let started = std::time::Instant::now();
        let staged = commitment.stage(slot, accounts, old);
        s.commitment_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let result = self.write_slot(w, &staged, slot, accounts, meta);
        match result {
            Ok(()) => commitment.publish(staged),
            Err(_) => commitment.rollback(staged),
        }
        result
    }

    fn write_slot(
        &self,
        w: &mut Writer,
        staged: &crate::commitment::Staged,
        slot: u64,
        accounts: &[(Pubkey, AccountSharedData)],
        meta: &[u8],
    ) -> Result<(), StoreError> {
        let s = &*self.shared;
        let bs = s.bs();
        let mut sb = w.sb.clone();
        sb.seq += 1;
        sb.last_slot = Some(slot);
        let mut appenders: Vec<Appender> = (0..s.devices.len())
            .map(|d| Appender::new(d, &sb))
            .collect();
        let mut placed: Vec<(usize, Loc, bool)> = Vec::with_capacity(accounts.len());
        w.placement.observe(accounts);
        let written: HashSet<&Pubkey> = accounts.iter().map(|(k, _)| k).collect();
        for ((key, account), leaf) in accounts.iter().zip(&staged.positions) {
            layout::encode_account(&mut w.scratch, key, slot, account, *leaf);
            let d = w.placement.device_for(account.owner(), key);
            let loc = appenders[d].append(s, &mut sb, slot, &w.scratch)?;
            placed.push((d, loc, account.lamports() == 0));
        }
        let mut payload = Vec::with_capacity(crate::commitment::HEADER_BYTES + meta.len());
        staged.header.encode(&mut payload);
        payload.extend_from_slice(meta);
        layout::encode_record(
            &mut w.scratch,
            &layout::meta_key(slot),
            slot,
            layout::FLAG_META,
            0,
            0,
            &[0; 32],
            0,
            &payload,
        );
        let meta_dev = w.placement.meta_device();
        let meta_loc = appenders[meta_dev].append(s, &mut sb, slot, &w.scratch)?;
        // Rewrite what the compactor found live in its victim, unless this slot supersedes
        // it; then the victim is free in the same superblock.
        let mut moves = Vec::new();
        let evac = w.evacuated.take();
        if let Some(ev) = &evac {
            // A tombstone must outlive every older version of its key. Those can only lie in
            // segments born before the tombstone's slot: once none is left (but the victim),
            // the tombstone can go.
            let oldest_birth = w
                .sb
                .segments
                .iter()
                .enumerate()
                .flat_map(|(d, v)| v.iter().enumerate().map(move |(i, st)| (d, i, st)))
                .filter(|(d, i, st)| st.fill > 0 && !(*d == ev.device && *i as u32 == ev.segment))
                .map(|(_, _, st)| st.birth_slot)
                .min()
                .unwrap_or(u64::MAX);
            for (old, bytes) in &ev.records {
                let Ok(Probe::Record(h)) = layout::decode_record(bytes) else {
                    continue;
                };
                let still_live = if h.flags & layout::FLAG_META != 0 {
                    w.metas.iter().any(|(_, l)| l == old)
                } else if h.flags & layout::FLAG_TOMBSTONE != 0 {
                    h.slot > oldest_birth
                        && !written.contains(&Pubkey::new_from_array(h.key))
                        && s.index.get(&h.key).is_none()
                } else {
                    !written.contains(&Pubkey::new_from_array(h.key))
                        && s.index.get(&h.key) == Some(*old)
                };
                if !still_live {
                    continue;
                }
                let d = if h.flags & layout::FLAG_META != 0 {
                    meta_dev
                } else {
                    w.placement.device_for(
                        &Pubkey::new_from_array(h.owner),
                        &Pubkey::new_from_array(h.key),
                    )
                };
                let new = appenders[d].append(s, &mut sb, slot, bytes)?;
                moves.push((h.key, h.flags, *old, new));
            }
            let seg = &mut sb.segments[ev.device][ev.segment as usize];
            *seg = SegmentState::default();
        }
        // Data first, on every device; then its flush; then the superblock and its flush.
        let result = (|| {
            let writes: Vec<(usize, Vec<IoOp>)> = appenders
                .iter_mut()
                .map(|a| {
                    (
                        a.device,
                        a.take_writes(bs)
                            .into_iter()
                            .map(|(o, b)| IoOp::write(o, b))
                            .collect(),
                    )
                })
                .collect();
            s.execute(writes)?;
            let syncs = appenders
                .iter()
                .filter(|a| a.touched)
                .map(|a| (a.device, vec![IoOp::sync()]))
                .collect();
            s.execute(syncs)?;
            write_superblock(s, &sb)
        })();
        if let Err(e) = result {
            // Nothing of this slot is referenced by a durable superblock. The victim stays
            // evacuated for the next attempt.
            w.evacuated = evac;
            return Err(match e {
                StoreError::NoSpace { path, .. } => StoreError::NoSpace { path, slot },
                e => e,
            });
        }
        // Durable: publish.
        for ((key, account), (d, loc, tomb)) in accounts.iter().zip(&placed) {
            let kb = key.to_bytes();
            let old = if *tomb {
                s.index.remove(&kb)
            } else {
                s.index.insert(&kb, *loc)
            };
            if let Some(old) = old {
                w.space.sub(s, old);
            }
            if !*tomb {
                w.space.add(s, *d, *loc);
                s.cache.update(key, Some((account.clone(), slot)));
            } else {
                s.cache.update(key, None);
            }
        }
        w.space.add(s, meta_dev, meta_loc);
        w.metas.push_back((slot, meta_loc));
        while w.metas.len() > s.cfg.meta_retention_slots {
            let (_, l) = w.metas.pop_front().expect("non-empty");
            w.space.sub(s, l);
        }
        let mut relocated = 0;
        for (key, flags, old, new) in moves {
            if flags & layout::FLAG_META != 0 {
                if let Some(m) = w.metas.iter_mut().find(|(_, l)| *l == old) {
                    m.1 = new;
                    w.space.add(s, new.device as usize, new);
                }
            } else if flags & layout::FLAG_TOMBSTONE == 0 && s.index.relocate(&key, old, new) {
                w.space.add(s, new.device as usize, new);
            }
            relocated += 1;
        }
        if let Some(ev) = evac {
            w.space.live[ev.device][ev.segment as usize] = 0;
            s.compactions.fetch_add(1, Ordering::Relaxed);
            s.relocated.fetch_add(relocated, Ordering::Relaxed);
        }
        s.used_bytes.store(
            sb.segments.iter().flatten().map(|x| x.fill as u64).sum(),
            Ordering::Relaxed,
        );
        w.sb = sb;
        Ok(())
    }

    /// Starts reading a compaction victim in the background when space amplification is over
    /// the limit; collects a finished read.
    pub(super) fn maybe_compact(&self, w: &mut Writer) {
        if w.compacting {
            match self.evacuator.results.try_recv() {
                Ok(Ok(e)) => {
                    w.compacting = false;
                    w.evacuated = Some(e);
                }
                Ok(Err(e)) => {
                    w.compacting = false;
                    tracing::error!(error = %e, "compaction read failed; the segment stays in use");
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    // The gc-compact tile is gone: do not wait for it forever.
                    w.compacting = false;
                    tracing::error!("the gc-compact tile stopped; compaction is off");
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            return;
        }
        if w.evacuated.is_some() {
            return;
        }
        let s = &self.shared;
        let used = s.used_bytes.load(Ordering::Relaxed) as f64;
        let live = s.live_bytes.load(Ordering::Relaxed) as f64;
        let min = 4.0 * s.label.segment_bytes as f64;
        let over_bound = used >= min && used > s.cfg.max_space_amplification * live;
        // Also reclaim when a device is about to run out of free segments, whatever the
        // ratio: a nearly full device otherwise fails commits that stale data could make room for.
        let scarce =
            w.sb.segments
                .iter()
                .any(|segs| segs.iter().filter(|st| st.fill == 0).count() < 2);
        if !over_bound && !scarce {
            return;
        }
        let Some((device, segment)) = w.space.victim(&w.sb) else {
            return;
        };
        let fill = w.sb.segments[device][segment as usize].fill;
        w.compacting = self.evacuator.request(super::evacuate::Victim {
            device,
            segment,
            fill,
        });
    }
}
