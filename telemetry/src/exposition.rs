//! The Prometheus text exposition (version 0.0.4), built family by family: every series of a
//! metric name is written together under one `# HELP` and `# TYPE`, whatever order the
//! writers add them in (the format requires it, and a declared set adds members of several
//! families at once).

use crate::counters::CounterSet;
use std::collections::HashMap;
use std::fmt::Write;

struct Family {
    name: String,
    kind: String,
    help: String,
    lines: String,
}

#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl Exposition {
    /// Declares the family `name` (its first declaration gives its type and help).
    pub fn head(&mut self, name: &str, kind: &str, help: &str) {
        self.family(name, kind, help);
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Family {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    help: help.to_string(),
                    lines: String::new(),
                });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// One series of family `name` (declared before with [`Exposition::head`]; an
    /// undeclared family is written untyped). `labels`: `a="x",b="y"` or empty.
    /// A histogram's `_bucket`, `_sum` and `_count` series go to the histogram's family.
    pub fn line(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        let histogram = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = name.strip_suffix(suffix)?;
            let &i = self.index.get(base)?;
            (self.families[i].kind == "histogram").then_some(base.to_string())
        });
        let f = self.family(histogram.as_deref().unwrap_or(name), "untyped", "");
        if labels.is_empty() {
            let _ = writeln!(f.lines, "{name} {v}");
        } else {
            let _ = writeln!(f.lines, "{name}{{{labels}}} {v}");
        }
    }

    /// Every declared counter of `set`, each with `labels` and its own fixed labels.
    pub fn set<T: CounterSet>(&mut self, set: &T, labels: &str) {
        for c in T::COUNTERS {
            let name = c.prometheus_name();
            self.head(&name, c.kind.name(), c.help());
            let mut l = labels.to_string();
            for (k, v) in c.labels {
                if !l.is_empty() {
                    l.push(',');
                }
                let _ = write!(l, "{k}=\"{v}\"");
            }
            self.line(&name, &l, c.exposed_value(set));
        }
    }

    pub fn finish(self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        for f in self.families {
            if !f.help.is_empty() {
                let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            }
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.lines);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TileStats;

    #[test]
    fn families_are_grouped_with_one_head() {
        let mut e = Exposition::default();
        let (a, b) = (TileStats::default(), TileStats::default());
        a.add_in(3);
        e.set(&a, "tile=\"a\"");
        e.set(&b, "tile=\"b\"");
        let text = e.finish();
        let n = "gigacompute_tile_in_total";
        let block = format!(
            "# HELP {n} Work items taken in by the tile.\n# TYPE {n} counter\n{n}{{tile=\"a\"}} 3\n{n}{{tile=\"b\"}} 0\n"
        );
        assert!(text.contains(&block), "{text}");
        assert_eq!(text.matches("# TYPE gigacompute_tile_in_total").count(), 1);
    }

    #[test]
    fn histogram_series_stay_in_their_family() {
        let mut e = Exposition::default();
        e.head("h_seconds", "histogram", "A histogram.");
        e.head("other", "gauge", "Another.");
        e.line("other", "", 1);
        e.line("h_seconds_bucket", "le=\"+Inf\"", 2);
        e.line("h_seconds_sum", "", 0.5);
        e.line("h_seconds_count", "", 2);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP h_seconds A histogram.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 0.5\nh_seconds_count 2\n\
             # HELP other Another.\n# TYPE other gauge\nother 1\n"
        );
    }
}
