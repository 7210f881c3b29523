//! What every crate's configuration section shares: the error a failed check returns, and
//! serde adapters for values written as text (base58 keys, addresses) in the TOML file.
//!
//! Each crate owns its section (serde type, defaults, `validate`); the binary only composes
//! them, so a knob is declared in exactly one place.

/// A configuration value out of its allowed range; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// `Err(InvalidConfig(message()))` unless `ok`.
pub fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), InvalidConfig> {
    if ok {
        Ok(())
    } else {
        Err(InvalidConfig(message()))
    }
}

/// `#[serde(with = "telemetry::config::text")]`: a value written as its `Display` text and
/// read back with `FromStr` (a base58 pubkey, for one).
pub mod text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e| D::Error::custom(not_a::<T>(&s, e)))
    }

    /// `"xyz" is not a valid pubkey (Invalid Base58 string)`: names what was expected.
    pub(super) fn not_a<T>(text: &str, e: impl Display) -> String {
        let name = std::any::type_name::<T>();
        let name = match name.rsplit("::").next().unwrap_or(name) {
            // solana_pubkey::Pubkey is an alias of solana_address::Address; the file and the
            // operator call it a pubkey.
            "Address" => "pubkey".to_string(),
            other => other.to_lowercase(),
        };
        format!("{text:?} is not a valid {name} ({e})")
    }
}

/// `#[serde(with = "telemetry::config::text_keys")]`: a map whose keys are written as text.
pub mod text_keys {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};
    use std::collections::BTreeMap;
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<K: Display, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            m.serialize_entry(&k.to_string(), v)?;
        }
        m.end()
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: FromStr + Ord,
        K::Err: Display,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        BTreeMap::<String, V>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| match k.parse() {
                Ok(key) => Ok((key, v)),
                Err(e) => Err(D::Error::custom(super::text::not_a::<K>(&k, e))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        #[serde(with = "text")]
        addr: Ipv4Addr,
        #[serde(with = "text_keys")]
        weights: BTreeMap<Ipv4Addr, u32>,
    }

    #[test]
    fn text_values_and_keys_round_trip_and_bad_text_is_an_error() {
        let s: Sample =
            serde_json::from_str(r#"{"addr":"10.0.0.1","weights":{"10.0.0.2":3}}"#).unwrap();
        assert_eq!(s.addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(s.weights[&Ipv4Addr::new(10, 0, 0, 2)], 3);
        let back = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Sample>(&back).unwrap(), s);
        let bad = serde_json::from_str::<Sample>(r#"{"addr":"nope","weights":{}}"#);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("\"nope\" is not a valid ipv4addr")
        );
        assert!(ensure(false, || "k must be 1".into()).is_err());
        assert!(ensure(true, || unreachable!()).is_ok());
    }
}
