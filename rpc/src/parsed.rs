//! Agave's encoders behind `encoding: "jsonParsed"` (and the transaction encodings), fed from
//! this node's state: account-decoder's `encode_ui_account` with the mint data a token
//! account needs, and transaction-status's `encode` over a status rebuilt as Agave's
//! `TransactionStatusMeta`. Using Agave's maintained parsers (rather than our own) keeps every
//! program's parsed shape, and its base-64 fallbacks, exactly Agave's.

use crate::framing::RpcError;
use crate::params::Encoding;
use runtime::chain::{TokenBalance, TxStatus};
use serde_json::Value;
use solana_account::{AccountSharedData, ReadableAccount};
use solana_account_decoder::parse_account_data::{
    AccountAdditionalDataV3, SplTokenAdditionalDataV2,
};
use solana_account_decoder::parse_token::{
    get_token_account_mint, is_known_spl_token_id, token_amount_to_ui_amount_v3,
};
use solana_account_decoder::{UiAccountEncoding, UiDataSliceConfig, encode_ui_account};
use solana_message::compiled_instruction::CompiledInstruction;
use solana_message::v0::LoadedAddresses;
use solana_pubkey::Pubkey;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction_status::{
    EncodeError, InnerInstruction, InnerInstructions, TransactionStatusMeta,
    TransactionTokenBalance, UiTransactionEncoding, VersionedTransactionWithStatusMeta,
};
use spl_token_2022_interface::extension::interest_bearing_mint::InterestBearingConfig;
use spl_token_2022_interface::extension::scaled_ui_amount::ScaledUiAmountConfig;
use spl_token_2022_interface::extension::{BaseStateWithExtensions, StateWithExtensions};
use spl_token_2022_interface::state::Mint;

/// Reads another account at the request's commitment: a token account's mint, the Clock
/// sysvar. A storage error is the caller's RPC error, never a silent `null`.
pub type Lookup<'a> = &'a dyn Fn(&Pubkey) -> Result<Option<AccountSharedData>, RpcError>;

/// The native mint's decimals (wrapped SOL), as Agave reports them without reading an account.
const NATIVE_MINT: Pubkey = Pubkey::from_str_const("So11111111111111111111111111111111111111112");
const NATIVE_MINT_DECIMALS: u8 = 9;

fn ui_encoding(e: Encoding) -> UiAccountEncoding {
    match e {
        Encoding::Binary => UiAccountEncoding::Binary,
        Encoding::Base58 => UiAccountEncoding::Base58,
        Encoding::Base64 => UiAccountEncoding::Base64,
        Encoding::JsonParsed => UiAccountEncoding::JsonParsed,
    }
}

/// An account as Agave's `get_encoded_account` writes it, once the caller has refused base 58
/// for data too large: a token program's account in jsonParsed is parsed with its mint's data
/// (and without `dataSlice`, as Agave), any other through account-decoder, which falls back to
/// base 64 (sliced) for data it cannot parse.
pub fn account(
    key: &Pubkey,
    a: &AccountSharedData,
    encoding: Encoding,
    slice: Option<(usize, usize)>,
    lookup: Lookup<'_>,
) -> Result<Value, RpcError> {
    let (additional, slice) =
        if encoding == Encoding::JsonParsed && is_known_spl_token_id(a.owner()) {
            let data = match get_token_account_mint(a.data()) {
                Some(mint) => token_additional_data(&mint, lookup)?,
                None => None,
            };
            (
                data.map(|d| AccountAdditionalDataV3 {
                    spl_token_additional_data: Some(d),
                }),
                None,
            )
        } else {
            (
                None,
                slice.map(|(offset, length)| UiDataSliceConfig { offset, length }),
            )
        };
    let ui = encode_ui_account(key, a, ui_encoding(encoding), additional, slice);
    serde_json::to_value(ui).map_err(RpcError::internal)
}

/// What a token amount of `mint` needs to be shown (Agave's `get_additional_mint_data`):
/// its decimals, and for Token-2022's interest-bearing and scaled-UI-amount mints the
/// extension with the Clock's timestamp. `None` when the mint is absent or not a mint (the
/// token account then falls back to base 64, as Agave's does).
pub fn token_additional_data(
    mint: &Pubkey,
    lookup: Lookup<'_>,
) -> Result<Option<SplTokenAdditionalDataV2>, RpcError> {
    let Some(m) = lookup(mint)? else {
        return Ok((mint == &NATIVE_MINT)
            .then(|| SplTokenAdditionalDataV2::with_decimals(NATIVE_MINT_DECIMALS)));
    };
    let Ok(state) = StateWithExtensions::<Mint>::unpack(m.data()) else {
        return Ok(None);
    };
    let interest = state.get_extension::<InterestBearingConfig>().ok().copied();
    let scaled = state.get_extension::<ScaledUiAmountConfig>().ok().copied();
    let now = if interest.is_some() || scaled.is_some() {
        unix_timestamp(lookup)?
    } else {
        0
    };
    Ok(Some(SplTokenAdditionalDataV2 {
        decimals: state.base.decimals,
        interest_bearing_config: interest.map(|c| (c, now)),
        scaled_ui_amount_config: scaled.map(|c| (c, now)),
    }))
}

/// The Clock sysvar's timestamp at the lookup's commitment (Agave: `bank.clock()`).
fn unix_timestamp(lookup: Lookup<'_>) -> Result<i64, RpcError> {
    lookup(&solana_sdk_ids::sysvar::clock::ID)?
        .and_then(|a| bincode::deserialize::<solana_clock::Clock>(a.data()).ok())
        .map(|c| c.unix_timestamp)
        .ok_or_else(|| RpcError::internal("the Clock sysvar is unreadable"))
}

/// `encoding` as transaction-status reads it (Agave deserializes it from the config).
pub fn transaction_encoding(s: &str) -> Result<UiTransactionEncoding, RpcError> {
    Ok(match s {
        "binary" => UiTransactionEncoding::Binary,
        "base58" => UiTransactionEncoding::Base58,
        "base64" => UiTransactionEncoding::Base64,
        "json" => UiTransactionEncoding::Json,
        "jsonParsed" => UiTransactionEncoding::JsonParsed,
        other => {
            return Err(RpcError::invalid_params(format!(
                "unknown variant `{other}`, expected one of `binary`, `base64`, `base58`, `json`, `jsonParsed`."
            )));
        }
    })
}

/// Agave's `TransactionStatusMeta` of a stored status. Token amounts carry the decimals the
/// SVM recorded (the mint's extensions at execution time are not kept).
fn status_meta(st: &TxStatus) -> TransactionStatusMeta {
    let tokens = |v: &[TokenBalance]| {
        v.iter()
            .map(|t| TransactionTokenBalance {
                account_index: t.account_index,
                mint: t.mint.to_string(),
                ui_token_amount: token_amount_to_ui_amount_v3(
                    t.amount,
                    &SplTokenAdditionalDataV2::with_decimals(t.decimals),
                ),
                owner: t.owner.to_string(),
                program_id: t.program_id.to_string(),
            })
            .collect()
    };
    TransactionStatusMeta {
        status: st.err.clone().map_or(Ok(()), Err),
        fee: st.fee,
        pre_balances: st.pre_balances.clone(),
        post_balances: st.post_balances.clone(),
        inner_instructions: Some(
            st.inner_instructions
                .iter()
                .map(|g| InnerInstructions {
                    index: g.index,
                    instructions: g
                        .instructions
                        .iter()
                        .map(|ix| InnerInstruction {
                            instruction: CompiledInstruction {
                                program_id_index: ix.program_id_index,
                                accounts: ix.accounts.clone(),
                                data: ix.data.clone(),
                            },
                            stack_height: Some(u32::from(ix.stack_height)),
                        })
                        .collect(),
                })
                .collect(),
        ),
        log_messages: Some(st.logs.clone()),
        pre_token_balances: Some(tokens(&st.pre_token_balances)),
        post_token_balances: Some(tokens(&st.post_token_balances)),
        rewards: Some(Vec::new()),
        loaded_addresses: LoadedAddresses {
            writable: st.loaded_writable.clone(),
            readonly: st.loaded_readonly.clone(),
        },
        return_data: st.return_data.as_ref().map(|r| {
            solana_transaction_context::transaction::TransactionReturnData {
                program_id: r.program_id,
                data: r.data.clone(),
            }
        }),
        compute_units_consumed: Some(st.compute_units),
        cost_units: None,
    }
}

/// `{transaction, meta, version}` of one status in `encoding`, as Agave's
/// `VersionedTransactionWithStatusMeta::encode` (getTransaction and each of getBlock's
/// transactions). A v0 transaction needs `maxSupportedTransactionVersion` (-32015).
pub fn transaction_with_meta(
    st: &TxStatus,
    encoding: UiTransactionEncoding,
    max_version: Option<u64>,
    show_rewards: bool,
) -> Result<Value, RpcError> {
    let transaction: VersionedTransaction =
        bincode::deserialize(&st.transaction).map_err(RpcError::internal)?;
    let tx = VersionedTransactionWithStatusMeta {
        transaction,
        meta: status_meta(st),
    };
    // Agave reads the parameter as a u8: anything larger supports every version.
    let max = max_version.map(|v| u8::try_from(v).unwrap_or(u8::MAX));
    match tx.encode(encoding, max, show_rewards) {
        Ok(v) => serde_json::to_value(v).map_err(RpcError::internal),
        Err(EncodeError::UnsupportedTransactionVersion(v)) => Err(RpcError::new(
            -32015,
            format!(
                "Transaction version ({v}) is not supported by the requesting client. Please try the request again with the following configuration parameter: \"maxSupportedTransactionVersion\": {v}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::chain::{InnerInstruction as StoredIx, InnerInstructions as StoredIxs};
    use serde_json::json;
    use solana_account::Account;
    use spl_token_2022_interface::extension::{
        BaseStateWithExtensionsMut, ExtensionType, StateWithExtensionsMut,
    };

    const TOKEN: Pubkey = Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
    const TOKEN_2022: Pubkey =
        Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");

    fn owned(owner: Pubkey, data: Vec<u8>) -> AccountSharedData {
        AccountSharedData::from(Account {
            lamports: 2_039_280,
            data,
            owner,
            executable: false,
            rent_epoch: u64::MAX,
        })
    }

    /// SPL Token's Mint layout: authority (COption), supply, decimals, initialized, freeze.
    fn mint_base(decimals: u8, supply: u64) -> [u8; 82] {
        let mut d = [0u8; 82];
        d[36..44].copy_from_slice(&supply.to_le_bytes());
        d[44] = decimals;
        d[45] = 1;
        d
    }

    /// SPL Token's Account layout: mint, owner, amount, ..., state (initialized) at 108.
    fn token_account(mint: &Pubkey, owner: &Pubkey, amount: u64) -> Vec<u8> {
        let mut d = vec![0u8; 165];
        d[0..32].copy_from_slice(mint.as_ref());
        d[32..64].copy_from_slice(owner.as_ref());
        d[64..72].copy_from_slice(&amount.to_le_bytes());
        d[108] = 1;
        d
    }

    fn enc(encoding: Encoding) -> crate::params::AccountEncoding {
        crate::params::AccountEncoding {
            encoding,
            slice: None,
        }
    }

    #[test]
    fn a_token_account_is_parsed_with_its_mints_decimals() {
        let (mint, owner, key) = (
            Pubkey::new_unique(),
            Pubkey::new_unique(),
            Pubkey::new_unique(),
        );
        let mint_account = owned(TOKEN, mint_base(6, 1_500_000).to_vec());
        let lookup = |k: &Pubkey| Ok((k == &mint).then(|| mint_account.clone()));
        let a = owned(TOKEN, token_account(&mint, &owner, 1_500_000));
        let v = crate::encode::account(&key, &a, &enc(Encoding::JsonParsed), &lookup).unwrap();
        assert_eq!(v["data"]["program"], "spl-token");
        assert_eq!(v["data"]["space"], 165);
        assert_eq!(v["data"]["parsed"]["type"], "account");
        let info = &v["data"]["parsed"]["info"];
        assert_eq!(info["mint"], mint.to_string());
        assert_eq!(info["owner"], owner.to_string());
        assert_eq!(info["state"], "initialized");
        assert_eq!(info["isNative"], false);
        assert_eq!(
            info["tokenAmount"],
            json!({"amount": "1500000", "decimals": 6, "uiAmount": 1.5, "uiAmountString": "1.5"})
        );
        assert_eq!(v["owner"], TOKEN.to_string());
        assert_eq!(v["space"], 165);

        // The mint itself needs nothing else.
        let m = crate::encode::account(&mint, &mint_account, &enc(Encoding::JsonParsed), &lookup)
            .unwrap();
        assert_eq!(m["data"]["parsed"]["type"], "mint");
        assert_eq!(m["data"]["parsed"]["info"]["decimals"], 6);
        assert_eq!(m["data"]["parsed"]["info"]["supply"], "1500000");
        assert_eq!(m["data"]["parsed"]["info"]["isInitialized"], true);

        // Without its mint a token account cannot be shown: base 64, as Agave.
        let none = |_: &Pubkey| Ok(None);
        let v = crate::encode::account(&key, &a, &enc(Encoding::JsonParsed), &none).unwrap();
        assert_eq!(v["data"][1], "base64");
    }

    #[test]
    fn a_token_2022_mint_with_an_extension_and_its_account() {
        let len = ExtensionType::try_calculate_account_len::<Mint>(&[
            ExtensionType::InterestBearingConfig,
        ])
        .unwrap();
        let mut data = vec![0u8; len];
        {
            let mut state =
                StateWithExtensionsMut::<Mint>::unpack_uninitialized(&mut data).unwrap();
            state.init_extension::<InterestBearingConfig>(true).unwrap();
            state.init_account_type().unwrap();
        }
        data[..82].copy_from_slice(&mint_base(2, 500));
        let mint = Pubkey::new_unique();
        let mint_account = owned(TOKEN_2022, data);
        let clock = solana_clock::Clock {
            unix_timestamp: 1_700_000_000,
            ..Default::default()
        };
        let clock_account = owned(
            solana_sdk_ids::sysvar::ID,
            bincode::serialize(&clock).unwrap(),
        );
        let lookup = |k: &Pubkey| {
            Ok(if k == &mint {
                Some(mint_account.clone())
            } else if k == &solana_sdk_ids::sysvar::clock::ID {
                Some(clock_account.clone())
            } else {
                None
            })
        };
        let m = crate::encode::account(&mint, &mint_account, &enc(Encoding::JsonParsed), &lookup)
            .unwrap();
        assert_eq!(m["data"]["program"], "spl-token-2022");
        assert_eq!(m["data"]["parsed"]["type"], "mint");
        assert_eq!(m["data"]["parsed"]["info"]["decimals"], 2);
        assert_eq!(
            m["data"]["parsed"]["info"]["extensions"][0]["extension"],
            "interestBearingConfig"
        );

        // Its token account: the amount goes through the extension at the Clock's time (a
        // zero rate leaves it as is).
        let a = owned(TOKEN_2022, token_account(&mint, &Pubkey::new_unique(), 250));
        let v = crate::encode::account(
            &Pubkey::new_unique(),
            &a,
            &enc(Encoding::JsonParsed),
            &lookup,
        )
        .unwrap();
        let amount = &v["data"]["parsed"]["info"]["tokenAmount"];
        assert_eq!(amount["amount"], "250");
        assert_eq!(amount["decimals"], 2);
        assert_eq!(amount["uiAmountString"], "2.5");

        // No Clock to read: the node's error, not a guess.
        let no_clock = |k: &Pubkey| Ok((k == &mint).then(|| mint_account.clone()));
        assert!(token_additional_data(&mint, &no_clock).is_err());
    }

    #[test]
    fn unparseable_data_falls_back_to_sliced_base64_and_base58_is_bounded() {
        let a = owned(Pubkey::new_unique(), vec![7u8; 300]);
        let none = |_: &Pubkey| Ok(None);
        let k = Pubkey::new_unique();
        let sliced = crate::params::AccountEncoding {
            encoding: Encoding::JsonParsed,
            slice: Some((1, 3)),
        };
        let v = crate::encode::account(&k, &a, &sliced, &none).unwrap();
        assert_eq!(v["data"], json!(["BwcH", "base64"]));
        let e = crate::encode::account(&k, &a, &enc(Encoding::Base58), &none).unwrap_err();
        assert_eq!(e.code, -32600);
        // A slice that fits is fine in base 58.
        let small = crate::params::AccountEncoding {
            encoding: Encoding::Base58,
            slice: Some((290, 100)),
        };
        let v = crate::encode::account(&k, &a, &small, &none).unwrap();
        assert_eq!(v["data"][1], "base58");
        // The system program's empty account is not a nonce: base 64.
        let sys = owned(Pubkey::default(), vec![]);
        let v = crate::encode::account(&k, &sys, &enc(Encoding::JsonParsed), &none).unwrap();
        assert_eq!(v["data"], json!(["", "base64"]));
    }

    fn status_of(tx: &solana_transaction::Transaction) -> TxStatus {
        TxStatus {
            signature: tx.signatures[0],
            slot: 9,
            err: None,
            fee: 5000,
            compute_units: 150,
            logs: vec!["Program 11111111111111111111111111111111 invoke [1]".into()],
            pre_balances: vec![10_000, 0, 1],
            post_balances: vec![4_000, 1_000, 1],
            pre_token_balances: vec![],
            post_token_balances: vec![],
            loaded_writable: vec![],
            loaded_readonly: vec![],
            transaction: bincode::serialize(tx).unwrap(),
            inner_instructions: vec![],
            return_data: None,
        }
    }

    #[test]
    fn a_system_transfer_is_parsed_with_its_cpis_and_meta() {
        use solana_keypair::Keypair;
        use solana_signer::Signer;
        let from = Keypair::new();
        let to = Pubkey::new_unique();
        let ix = solana_system_interface::instruction::transfer(&from.pubkey(), &to, 1_000);
        let tx = solana_transaction::Transaction::new(
            &[&from],
            solana_message::Message::new(&[ix], Some(&from.pubkey())),
            solana_hash::Hash::new_from_array([7; 32]),
        );
        let mut st = status_of(&tx);
        // As if the transfer had also been made by CPI (index 0, depth 2).
        st.inner_instructions = vec![StoredIxs {
            index: 0,
            instructions: vec![StoredIx {
                program_id_index: 2,
                accounts: vec![0, 1],
                data: tx.message.instructions[0].data.clone(),
                stack_height: 2,
            }],
        }];
        st.return_data = Some(runtime::chain::ReturnData {
            program_id: Pubkey::default(),
            data: vec![1, 2],
        });
        let v =
            transaction_with_meta(&st, UiTransactionEncoding::JsonParsed, Some(0), true).unwrap();
        let msg = &v["transaction"]["message"];
        assert_eq!(
            msg["accountKeys"][0],
            json!({"pubkey": from.pubkey().to_string(), "signer": true, "writable": true, "source": "transaction"})
        );
        assert_eq!(msg["accountKeys"][2]["writable"], false);
        let parsed = &msg["instructions"][0];
        assert_eq!(parsed["program"], "system");
        assert_eq!(parsed["programId"], "11111111111111111111111111111111");
        assert_eq!(parsed["stackHeight"], 1);
        assert_eq!(
            parsed["parsed"],
            json!({"type": "transfer", "info": {"source": from.pubkey().to_string(), "destination": to.to_string(), "lamports": 1000}})
        );
        assert_eq!(v["version"], "legacy");
        let meta = &v["meta"];
        assert_eq!(meta["status"], json!({"Ok": null}));
        assert_eq!(meta["err"], Value::Null);
        assert_eq!(meta["fee"], 5000);
        assert_eq!(meta["computeUnitsConsumed"], 150);
        assert_eq!(meta["innerInstructions"][0]["index"], 0);
        let inner = &meta["innerInstructions"][0]["instructions"][0];
        assert_eq!(inner["parsed"]["type"], "transfer");
        assert_eq!(inner["stackHeight"], 2);
        assert_eq!(
            meta["returnData"],
            json!({"programId": "11111111111111111111111111111111", "data": ["AQI=", "base64"]})
        );

        // json: the raw message, the inner instruction by indexes, loaded addresses listed.
        let v = transaction_with_meta(&st, UiTransactionEncoding::Json, None, true).unwrap();
        assert!(
            v.get("version").is_none(),
            "no version without maxSupportedTransactionVersion"
        );
        assert_eq!(
            v["transaction"]["message"]["instructions"][0]["programIdIndex"],
            2
        );
        assert_eq!(
            v["meta"]["innerInstructions"][0]["instructions"][0]["accounts"],
            json!([0, 1])
        );
        assert_eq!(
            v["meta"]["loadedAddresses"],
            json!({"writable": [], "readonly": []})
        );
        // base64: the transaction's bytes.
        let v = transaction_with_meta(&st, UiTransactionEncoding::Base64, None, true).unwrap();
        assert_eq!(v["transaction"][1], "base64");
        assert!(transaction_encoding("base85").is_err());
    }

    #[test]
    fn an_unknown_programs_instruction_is_partially_decoded() {
        use solana_keypair::Keypair;
        use solana_signer::Signer;
        let payer = Keypair::new();
        let program = Pubkey::new_unique();
        let ix = solana_instruction::Instruction::new_with_bytes(program, &[1, 2, 3], vec![]);
        let tx = solana_transaction::Transaction::new(
            &[&payer],
            solana_message::Message::new(&[ix], Some(&payer.pubkey())),
            solana_hash::Hash::new_from_array([7; 32]),
        );
        let v = transaction_with_meta(
            &status_of(&tx),
            UiTransactionEncoding::JsonParsed,
            None,
            true,
        )
        .unwrap();
        assert_eq!(
            v["transaction"]["message"]["instructions"][0],
            json!({"programId": program.to_string(), "accounts": [], "data": bs58::encode([1, 2, 3]).into_string(), "stackHeight": 1})
        );
    }
}
