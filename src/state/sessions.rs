//! Dashboard sessions: the random ids a login hands out, each valid for a week. They live
//! in memory: a restart logs everyone out.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Starts a session and returns its id.
    pub fn create(&self) -> String {
        let bytes: [u8; 32] = rand::random();
        let id = hex::encode(bytes);
        let mut live = self.live.lock();
        let now = Instant::now();
        live.retain(|_, expires| *expires > now);
        live.insert(id.clone(), now + SESSION_TTL);
        id
    }

    pub fn is_valid(&self, id: &str) -> bool {
        let live = self.live.lock();
        live.get(id)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn remove(&self, id: &str) {
        self.live.lock().remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_remove() {
        let s = Sessions::default();
        let id = s.create();
        assert_eq!(id.len(), 64);
        assert!(s.is_valid(&id));
        assert!(!s.is_valid("nope"));
        s.remove(&id);
        assert!(!s.is_valid(&id));
    }
}
