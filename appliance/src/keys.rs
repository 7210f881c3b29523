//! Keypair files in solana-keygen's format (a JSON array of the 64 secret+public bytes).

use anyhow::{Context, Result};
use solana_keypair::Keypair;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Read the keypair at `path`, creating it (mode 0600) if it does not exist.
pub fn load_or_create(path: &Path) -> Result<Keypair> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading keypair {}", path.display()))?;
        let bytes: Vec<u8> = serde_json::from_str(&text)
            .with_context(|| format!("keypair {} is not a JSON byte array", path.display()))?;
        return Keypair::try_from(bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("keypair {} is invalid: {e}", path.display()));
    }
    let kp = Keypair::new();
    let json = serde_json::to_string(&kp.to_bytes().to_vec())?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating keypair {}", path.display()))?;
    f.write_all(json.as_bytes())?;
    f.sync_all()?;
    Ok(kp)
}
