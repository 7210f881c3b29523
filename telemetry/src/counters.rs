//! Counters declared once. [`declare_counters!`](crate::declare_counters) writes the struct of
//! `AtomicU64` fields and, beside it, a static table of every field's name, kind, unit, help
//! text and accessor ([`CounterSet::COUNTERS`]). The Prometheus text, the JSON views and the
//! monitor's columns are derived from that table, so a counter is named in one place: its
//! declaration. The help text is the field's doc comment.
//!
//! ```
//! telemetry::declare_counters! {
//!     #[repr(C)]
//!     #[derive(Default)]
//!     pub struct Queue {
//!         /// Frames taken from the queue.
//!         packets: Counter(Count) "queue_rx_packets",
//!         /// The ring to verification was full.
//!         ring_full: Counter(Count) "queue_drops" [reason = "ring_full"],
//!         /// Frames waiting.
//!         depth: Gauge(Count) "queue_depth",
//!         ;
//!         /// Fields after the `;` are plain: not counters (text, arrays by reason, ...).
//!         pub other: [std::sync::atomic::AtomicU64; 2],
//!     }
//! }
//! use telemetry::counters::CounterSet;
//! assert_eq!(Queue::COUNTERS[0].prometheus_name(), "gigacompute_queue_rx_packets_total");
//! assert_eq!(Queue::COUNTERS[1].help(), "The ring to verification was full.");
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of every exposed metric name.
pub const PREFIX: &str = "gigacompute_";

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (until the process restarts); exposed with `_total`.
    Counter,
    /// A level sampled now (a depth, a slot number, 1 or 0).
    Gauge,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// What one unit of the stored value is. Prometheus names carry the base unit (`_bytes`,
/// `_seconds`); nanoseconds are stored and exposed as seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Nanoseconds,
}

impl Unit {
    fn suffix(self) -> &'static str {
        match self {
            Unit::Count => "",
            Unit::Bytes => "_bytes",
            Unit::Nanoseconds => "_seconds",
        }
    }
}

/// One declared counter of a struct `T`.
pub struct Counter<T: 'static> {
    /// The field's name: the key in JSON views, the column in text views.
    pub field: &'static str,
    /// Metric stem: the Prometheus name without [`PREFIX`], unit and `_total`.
    pub metric: &'static str,
    /// Fixed labels of this member of a labelled family (`reason="ring_full"`).
    pub labels: &'static [(&'static str, &'static str)],
    pub kind: Kind,
    pub unit: Unit,
    /// The field's doc comment, as written (see [`Counter::help`]).
    pub doc: &'static str,
    pub get: fn(&T) -> &AtomicU64,
}

impl<T> Counter<T> {
    pub fn value(&self, s: &T) -> u64 {
        (self.get)(s).load(Ordering::Relaxed)
    }

    /// The doc comment on one line (doc lines start with a space; they are joined as is).
    pub fn help(&self) -> &'static str {
        self.doc.trim()
    }

    pub fn prometheus_name(&self) -> String {
        let total = match self.kind {
            Kind::Counter => "_total",
            Kind::Gauge => "",
        };
        format!("{PREFIX}{}{}{total}", self.metric, self.unit.suffix())
    }

    /// The value in the exposed unit (seconds for nanoseconds).
    pub fn exposed_value(&self, s: &T) -> f64 {
        let v = self.value(s);
        match self.unit {
            Unit::Nanoseconds => v as f64 / 1e9,
            _ => v as f64,
        }
    }
}

/// A struct declared by [`declare_counters!`](crate::declare_counters).
pub trait CounterSet: Sized + 'static {
    const COUNTERS: &'static [Counter<Self>];

    /// (field, value) of every declared counter, in declaration order (JSON views).
    fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Self::COUNTERS.iter().map(move |c| (c.field, c.value(self)))
    }

    /// Copy every declared counter from `other` (a published copy of an owner-kept set).
    fn copy_from(&self, other: &Self) {
        for c in Self::COUNTERS {
            (c.get)(self).store(c.value(other), Ordering::Relaxed);
        }
    }
}

/// Declares a struct of `AtomicU64` counters and its [`CounterSet`] table. Each counter is
/// `/// help` then `field: Kind(Unit) "metric_stem" [label = "value", ...],`; plain fields
/// (not counters) follow a `;`. Every counter field is `pub`; a doc comment is required (it
/// is the help text).
#[macro_export]
macro_rules! declare_counters {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $kind:ident ( $unit:ident ) $metric:literal
                    $([ $($lk:ident = $lv:literal),* $(,)? ])? ,
            )*
            $(
                ;
                $( $(#[$fattr:meta])* $fvis:vis $other:ident : $oty:ty ),* $(,)?
            )?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[doc = $doc])+ pub $field: ::std::sync::atomic::AtomicU64, )*
            $( $( $(#[$fattr])* $fvis $other: $oty, )* )?
        }

        impl $crate::counters::CounterSet for $name {
            const COUNTERS: &'static [$crate::counters::Counter<Self>] = &[$(
                $crate::counters::Counter {
                    field: stringify!($field),
                    metric: $metric,
                    labels: &[$($( (stringify!($lk), $lv), )*)?],
                    kind: $crate::counters::Kind::$kind,
                    unit: $crate::counters::Unit::$unit,
                    doc: concat!($($doc),+),
                    get: |s| &s.$field,
                },
            )*];
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TileStats;

    crate::declare_counters! {
        #[derive(Default)]
        struct Probe {
            /// Bytes in,
            /// over two lines.
            rx: Counter(Bytes) "probe_rx",
            /// Time spent.
            busy_ns: Counter(Nanoseconds) "probe_busy" [tile = "a", x = "y"],
            /// A level.
            depth: Gauge(Count) "probe_depth",
            ;
            plain: u32,
        }
    }

    #[test]
    fn declaration_gives_names_units_and_help() {
        let p = Probe::default();
        p.rx.store(5, Ordering::Relaxed);
        p.busy_ns.store(2_500_000_000, Ordering::Relaxed);
        let c = Probe::COUNTERS;
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].prometheus_name(), "gigacompute_probe_rx_bytes_total");
        assert_eq!(c[0].help(), "Bytes in, over two lines.");
        assert_eq!(
            c[1].prometheus_name(),
            "gigacompute_probe_busy_seconds_total"
        );
        assert_eq!(c[1].labels, &[("tile", "a"), ("x", "y")]);
        assert_eq!(c[1].exposed_value(&p), 2.5);
        assert_eq!(c[2].prometheus_name(), "gigacompute_probe_depth");
        assert_eq!(c[2].kind, Kind::Gauge);
        assert_eq!(
            p.fields().collect::<Vec<_>>(),
            [("rx", 5), ("busy_ns", 2_500_000_000), ("depth", 0)]
        );
        let q = Probe::default();
        q.copy_from(&p);
        assert_eq!(q.rx.load(Ordering::Relaxed), 5);
        assert_eq!(p.plain, 0);
    }

    #[test]
    fn tile_stats_are_declared() {
        let names: Vec<_> = TileStats::COUNTERS.iter().map(|c| c.field).collect();
        assert_eq!(
            names,
            [
                "in_total",
                "out_total",
                "busy_ns",
                "idle_ns",
                "backpressure_ns",
                "queue_depth"
            ]
        );
    }
}
