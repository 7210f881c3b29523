//! Agave's program-account filters (`dataSize`, `memcmp`, `tokenAccountState`): read from a
//! request with Agave's limits and errors, and matched against account data. Shared by
//! getProgramAccounts (and the token methods) and programSubscribe. Compiled on its own by
//! the fuzz crate with params.rs, so it needs nothing of a node.

use super::framing::RpcError;
use super::params::Config;
use base64::Engine;
use serde_json::Value;

/// Agave's `MAX_GET_PROGRAM_ACCOUNT_FILTERS`.
pub const MAX_FILTERS: usize = 4;
/// Agave's memcmp limits: decoded bytes, and the text checked before decoding (base-58
/// decoding is quadratic in the length).
pub const MAX_MEMCMP_BYTES: usize = 128;
pub const MAX_MEMCMP_BASE58_CHARS: usize = 175;
pub const MAX_MEMCMP_BASE64_CHARS: usize = 172;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    DataSize(u64),
    Memcmp {
        offset: usize,
        bytes: Vec<u8>,
    },
    /// A valid SPL Token / Token-2022 account (Agave's `GenericTokenAccount::valid_account_data`).
    TokenAccountState,
}

impl Filter {
    pub fn matches(&self, data: &[u8]) -> bool {
        match self {
            Filter::DataSize(n) => data.len() as u64 == *n,
            Filter::Memcmp { offset, bytes } => data
                .get(*offset..offset.saturating_add(bytes.len()))
                .is_some_and(|d| d == bytes.as_slice()),
            Filter::TokenAccountState => runtime::index::token::valid_account_data(data),
        }
    }
}

/// Whether `data` passes every filter.
pub fn passes(filters: &[Filter], data: &[u8]) -> bool {
    filters.iter().all(|f| f.matches(data))
}

fn invalid(e: impl std::fmt::Display) -> RpcError {
    RpcError::invalid_params(format!("Invalid param: {e}"))
}

/// `cfg.filters`: at most [`MAX_FILTERS`], each checked as Agave's `RpcFilterType::verify`
/// (its errors' names: `DataTooLarge`, `Base58DecodeError(..)`, `Base64DecodeError(..)`).
pub fn parse(cfg: &Config) -> Result<Vec<Filter>, RpcError> {
    let Some(v) = cfg.get("filters").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| RpcError::invalid_params("filters must be an array"))?;
    if list.len() > MAX_FILTERS {
        return Err(RpcError::invalid_params(format!(
            "Too many filters provided; max {MAX_FILTERS}"
        )));
    }
    list.iter().map(parse_one).collect()
}

fn parse_one(f: &Value) -> Result<Filter, RpcError> {
    if f.as_str() == Some("tokenAccountState") {
        return Ok(Filter::TokenAccountState);
    }
    if let Some(n) = f.get("dataSize") {
        return n
            .as_u64()
            .map(Filter::DataSize)
            .ok_or_else(|| RpcError::invalid_params("dataSize must be an integer"));
    }
    let m = f.get("memcmp").ok_or_else(|| {
        RpcError::invalid_params("unknown filter: use dataSize, memcmp or tokenAccountState")
    })?;
    let offset = m
        .get("offset")
        .and_then(Value::as_u64)
        .and_then(|o| usize::try_from(o).ok())
        .ok_or_else(|| RpcError::invalid_params("memcmp.offset must be an integer"))?;
    let text = m
        .get("bytes")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("memcmp.bytes must be a string"))?;
    let bytes = match m.get("encoding").filter(|v| !v.is_null()) {
        None => base58(text)?,
        Some(e) => match e.as_str() {
            Some("base58") => base58(text)?,
            Some("base64") => {
                if text.len() > MAX_MEMCMP_BASE64_CHARS {
                    return Err(invalid("DataTooLarge"));
                }
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| invalid(format_args!("Base64DecodeError({e:?})")))?
            }
            _ => {
                return Err(RpcError::invalid_params(
                    "memcmp.encoding must be \"base58\" or \"base64\"",
                ));
            }
        },
    };
    if bytes.len() > MAX_MEMCMP_BYTES {
        return Err(invalid("DataTooLarge"));
    }
    Ok(Filter::Memcmp { offset, bytes })
}

fn base58(text: &str) -> Result<Vec<u8>, RpcError> {
    if text.len() > MAX_MEMCMP_BASE58_CHARS {
        return Err(invalid("DataTooLarge"));
    }
    bs58::decode(text)
        .into_vec()
        .map_err(|e| invalid(format_args!("Base58DecodeError({e:?})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(filters: Value) -> Config {
        json!({ "filters": filters }).as_object().unwrap().clone()
    }

    /// The message after the framing's "Invalid params: " prefix.
    fn err(filters: Value) -> String {
        let e = parse(&cfg(filters)).unwrap_err();
        assert_eq!(e.code, -32602);
        e.message
            .strip_prefix("Invalid params: ")
            .expect("the framing's prefix")
            .to_string()
    }

    #[test]
    fn parses_and_matches_agaves_filters() {
        let f = parse(&cfg(json!([
            {"dataSize": 4},
            {"memcmp": {"offset": 1, "bytes": bs58::encode([2, 3]).into_string()}},
            {"memcmp": {"offset": 2, "bytes": "Aw==", "encoding": "base64"}},
        ])))
        .unwrap();
        assert!(passes(&f, &[1, 2, 3, 4]));
        assert!(!passes(&f, &[1, 2, 4, 4]));
        assert!(!passes(&f, &[1, 2, 3, 4, 5]));
        let big = Filter::Memcmp {
            offset: usize::MAX,
            bytes: vec![1],
        };
        assert!(!big.matches(&[1]), "an offset past the end never matches");
        assert_eq!(
            parse(&cfg(json!(["tokenAccountState"]))).unwrap(),
            vec![Filter::TokenAccountState]
        );
        assert!(parse(&Config::new()).unwrap().is_empty());
    }

    #[test]
    fn refuses_as_agave() {
        assert_eq!(
            err(
                json!([{"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}, {"dataSize": 1}])
            ),
            "Too many filters provided; max 4"
        );
        assert_eq!(
            err(json!([{"memcmp": {"offset": 0, "bytes": "2".repeat(50_000)}}])),
            "Invalid param: DataTooLarge"
        );
        assert_eq!(
            err(json!([{"memcmp": {"offset": 0, "bytes": "z".repeat(175)}}])),
            "Invalid param: DataTooLarge",
            "175 base-58 characters decode to more than 128 bytes"
        );
        assert!(
            err(json!([{"memcmp": {"offset": 0, "bytes": "0OIl"}}]))
                .starts_with("Invalid param: Base58DecodeError(InvalidCharacter")
        );
        assert!(
            err(json!([{"memcmp": {"offset": 0, "bytes": "!", "encoding": "base64"}}]))
                .starts_with("Invalid param: Base64DecodeError(")
        );
        assert!(err(json!([{"memcmp": {"offset": -1, "bytes": ""}}])).contains("offset"));
        assert!(err(json!([{"bogus": 1}])).contains("unknown filter"));
        assert!(err(json!({"dataSize": 1})).contains("array"));
    }
}
