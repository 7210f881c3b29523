//! Prometheus series of the self-tuning runtime: the declared counters (state, windows,
//! changes, reverts) plus each knob's value, default and reward estimates.

use super::prometheus::{Out, get};
use runtime::tuner::Knob;
use runtime::tuner::metrics::TunerCounters;

pub(super) fn write(o: &mut Out, t: &TunerCounters) {
    o.set(t, "");
    let families: [(&str, &str); 5] = [
        (
            "gigacompute_tuner_knob_value",
            "Value each live knob has now (set by the tuner, the configuration or an override).",
        ),
        (
            "gigacompute_tuner_knob_default",
            "Each live knob's configured value: where the tuner reverts to.",
        ),
        (
            "gigacompute_tuner_knob_enabled",
            "1 when the tuner may turn the knob (tuner.knobs and tuner.mode).",
        ),
        (
            "gigacompute_tuner_reward_estimate",
            "Expected reward of the setting now (choice=\"current\") and of one level lower or higher on this knob, as a multiple of the configured values' (0: never measured).",
        ),
        (
            "gigacompute_tuner_reward_stddev",
            "Uncertainty (standard deviation) of gigacompute_tuner_reward_estimate.",
        ),
    ];
    for (name, help) in families {
        o.head(name, "gauge", help);
    }
    for k in Knob::ALL {
        let g = t.knob(k);
        let knob = format!("knob=\"{}\"", k.name());
        o.line("gigacompute_tuner_knob_value", &knob, g.value.get());
        o.line("gigacompute_tuner_knob_default", &knob, g.default.get());
        o.line("gigacompute_tuner_knob_enabled", &knob, get(&g.enabled));
        for (choice, e) in [
            ("current", &g.current),
            ("lower", &g.lower),
            ("higher", &g.higher),
        ] {
            let labels = format!("{knob},choice=\"{choice}\"");
            o.line("gigacompute_tuner_reward_estimate", &labels, e.mean.get());
            o.line("gigacompute_tuner_reward_stddev", &labels, e.sd.get());
        }
    }
}
