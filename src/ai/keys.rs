//! Gateway keys: what apps send instead of a provider key. From `ai.gateway_keys`
//! (`GROWTH_GATEWAY_KEYS`) or, on the first start, generated and kept in the data dir.

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use crate::config::Config;

pub struct Keys {
    keys: Vec<String>,
    pub origin: Origin,
}

/// Where the keys came from, so start-up can say so once.
pub enum Origin {
    Configured,
    Generated(PathBuf),
    File(PathBuf),
}

impl Keys {
    pub fn load(config: &Config) -> std::io::Result<Keys> {
        if !config.ai.gateway_keys.is_empty() {
            return Ok(Keys {
                keys: config.ai.gateway_keys.clone(),
                origin: Origin::Configured,
            });
        }
        let path = config.server.data_dir.join("gateway_key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let keys: Vec<String> = text.split_whitespace().map(str::to_string).collect();
            if !keys.is_empty() {
                return Ok(Keys {
                    keys,
                    origin: Origin::File(path),
                });
            }
        }
        let bytes: [u8; 24] = rand::random();
        let key = format!("gsk_{}", hex::encode(bytes));
        write_secret(&path, &key)?;
        Ok(Keys {
            keys: vec![key],
            origin: Origin::Generated(path),
        })
    }

    #[cfg(test)]
    pub fn fixed(keys: &[&str]) -> Keys {
        Keys {
            keys: keys.iter().map(|k| k.to_string()).collect(),
            origin: Origin::Configured,
        }
    }

    pub fn first(&self) -> &str {
        self.keys.first().map_or("", String::as_str)
    }

    /// Which key the request carries (`Authorization: Bearer` or `x-api-key`), by index.
    pub fn check(&self, h: &HeaderMap) -> Option<usize> {
        let bearer = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let given = bearer.or_else(|| {
            h.get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })?;
        // Every key is compared, so the time taken does not say which one came close.
        let mut found = None;
        for (i, k) in self.keys.iter().enumerate() {
            let same = k.len() == given.len() && bool::from(k.as_bytes().ct_eq(given.as_bytes()));
            if same && found.is_none() {
                found = Some(i);
            }
        }
        found
    }
}

fn write_secret(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_or_x_api_key() {
        let k = Keys::fixed(&["key-one-0123456789", "key-two-0123456789"]);
        let mut h = HeaderMap::new();
        assert_eq!(k.check(&h), None);
        h.insert("x-api-key", "key-two-0123456789".parse().unwrap());
        assert_eq!(k.check(&h), Some(1));
        h.insert(
            "authorization",
            "Bearer key-one-0123456789".parse().unwrap(),
        );
        assert_eq!(k.check(&h), Some(0));
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(k.check(&h), None);
    }

    #[test]
    fn generated_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.server.data_dir = dir.path().to_path_buf();
        let first = Keys::load(&c).unwrap();
        assert!(matches!(first.origin, Origin::Generated(_)));
        let again = Keys::load(&c).unwrap();
        assert!(matches!(again.origin, Origin::File(_)));
        assert_eq!(first.first(), again.first());
        assert!(first.first().starts_with("gsk_"));
    }
}
