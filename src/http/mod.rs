//! Web plumbing the capabilities share: auth extractors, ingest bodies, the read window.
//! No routes live here.

pub mod agent;
pub mod auth;
pub mod body;
pub mod cache;
pub mod ingest;
pub mod session;
pub mod telemetry;
pub mod window;

pub use auth::{Admin, Sender};
pub use window::Window;
