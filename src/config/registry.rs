//! The key registry: each setting is declared once, in a `section!`, and that one
//! declaration makes the struct field, its default, its help text, its kind (from its Rust
//! type) and its environment variable. `config --keys`, README's table, the environment
//! layer and the tests all read the registry, so none of them can drift from the structs.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What kind of value a key holds, so an environment string can be read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
    /// Comma-separated in the environment.
    List,
    /// A TOML table or array of tables (`[[ai.providers]]`): set in the file only.
    Table,
}

/// The kind of a field's Rust type. A new enum setting needs one line:
/// `impl Setting for MyEnum { const KIND: Kind = Kind::Str; }`.
pub trait Setting {
    const KIND: Kind;
}

macro_rules! kinds {
    ($($kind:ident: $($ty:ty),+;)*) => {
        $($(impl Setting for $ty { const KIND: Kind = Kind::$kind; })+)*
    };
}

kinds! {
    Str: String, PathBuf, SocketAddr;
    Int: u16, u32, u64, usize, i64;
    Float: f64;
    Bool: bool;
    List: Vec<String>;
}

impl<T: Setting> Setting for Option<T> {
    const KIND: Kind = T::KIND;
}

/// One field of a section, as `section!` declares it.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// A second environment name other tools already use (`OPENAI_API_KEY`), read when
    /// the `GROWTH_*` one is unset.
    pub alias: Option<&'static str>,
}

/// One setting: its section and field.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub section: &'static str,
    /// The Rust type of the section (`PerformanceConfig`), for the reader check.
    pub section_type: &'static str,
    pub field: &'static Field,
}

impl Key {
    /// The dotted path in the TOML file, e.g. `ai.default_ttl`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.section, self.field.name)
    }

    /// `server.*` keys drop their section (`GROWTH_LISTEN`); the rest keep it
    /// (`GROWTH_AI_DEFAULT_TTL`). Tables have none: they are set in the file.
    pub fn env_name(&self) -> Option<String> {
        if self.field.kind == Kind::Table {
            return None;
        }
        let path = self.path();
        let path = path.strip_prefix("server.").unwrap_or(&path);
        Some(format!("GROWTH_{}", path.replace('.', "_").to_uppercase()))
    }
}

/// Declares a config section once: the struct with serde's `default` and
/// `deny_unknown_fields`, its `Default`, and `FIELDS`, its registry entries.
///
/// ```text
/// section! {
///     /// `[alerts]`: what the section is for.
///     pub struct AlertsConfig {
///         interval: u64 = 60 => "seconds between rule evaluations";
///         #[serde(skip_serializing_if = "Option::is_none")]
///         webhook: Option<String> = None => "URL posted to when a rule fires", env "ALERT_WEBHOOK";
///     }
/// }
/// ```
///
/// The help string is also the field's doc comment. Then add the section to `sections!`.
macro_rules! section {
    (@alias) => { None };
    (@alias $alias:literal) => { Some($alias) };
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $(
                $(#[$attr:meta])*
                $field:ident : $ty:ty = $default:expr => $help:literal $(, env $alias:literal)? ;
            )*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                #[doc = $help]
                $(#[$attr])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $name {
            /// This section's settings, in declaration order.
            pub const FIELDS: &'static [registry::Field] = &[$(registry::Field {
                name: stringify!($field),
                kind: <$ty as registry::Setting>::KIND,
                help: $help,
                alias: section!(@alias $($alias)?),
            },)*];
        }
    };
}

/// Declares `Config`, one field per section, and `SECTIONS`, the registry's index.
macro_rules! sections {
    ($($section:ident: $ty:ident,)*) => {
        /// Every setting, by section: `[server]`, `[storage]`, ...
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Config {
            $(pub $section: $ty,)*
        }

        const SECTIONS: &[(&str, &str, &[registry::Field])] =
            &[$((stringify!($section), stringify!($ty), $ty::FIELDS),)*];
    };
}

pub(crate) use {section, sections};

/// Reads an environment string as a value of the key's kind.
pub fn parse_env(kind: Kind, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match kind {
        Kind::Str => toml::Value::String(raw.to_string()),
        Kind::Int => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not an integer"))?,
        ),
        Kind::Float => toml::Value::Float(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("{raw:?} is not true or false")),
        }),
        Kind::List => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Table => return Err("is set in the config file only".into()),
    })
}

/// A default as the table shows it: strings bare, absent values as `none`.
pub fn show_default(value: Option<&toml::Value>) -> String {
    match value {
        None => "none".into(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Float(f)) if f.fract() == 0.0 => format!("{f:.0}"),
        Some(toml::Value::Table(t)) if t.is_empty() => "{}".into(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_rust_type() {
        assert_eq!(<Option<String> as Setting>::KIND, Kind::Str);
        assert_eq!(<u64 as Setting>::KIND, Kind::Int);
        assert_eq!(<Vec<String> as Setting>::KIND, Kind::List);
        assert_eq!(parse_env(Kind::Int, " 12 "), Ok(toml::Value::Integer(12)));
        assert!(parse_env(Kind::Bool, "maybe").is_err());
        assert!(parse_env(Kind::Table, "x").is_err());
    }
}
