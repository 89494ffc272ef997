//! Web plumbing the capabilities share: auth extractors, ingest bodies, typed query
//! parameters, the read window and cache, the OpenAPI pieces. No routes live here.

pub mod agent;
pub mod auth;
pub mod body;
pub mod cache;
pub mod client;
pub mod engine;
pub mod event_time;
pub mod field;
pub mod ingest;
pub mod limits;
pub mod openapi;
pub mod params;
pub mod session;
pub mod telemetry;
pub mod window;

pub use auth::{Admin, Sender};
pub use cache::CachedRead;
pub use params::{Params, PathParam, WindowQuery};
pub use window::Window;
