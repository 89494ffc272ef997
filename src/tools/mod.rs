//! Sub-commands that are not the server: demo data and the benches. They reach the
//! server the way users do (a child process of this binary, or `app::build`) and the
//! capabilities only through their public faces.

pub mod bench;
pub mod demo;
pub mod lifecycle;
