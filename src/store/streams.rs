//! The ingest streams as one enum: each one's table and the column its age is read from,
//! so retention, export and import name tables only through it (never from input).

use std::str::FromStr;

/// A stream of rows the server ingests, as users name it (`?stream=events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Events,
    Performance,
    Ai,
    Database,
    Conversions,
    Errors,
    System,
    Recommendations,
}

impl Stream {
    pub const ALL: [Stream; 8] = [
        Stream::Events,
        Stream::Performance,
        Stream::Ai,
        Stream::Database,
        Stream::Conversions,
        Stream::Errors,
        Stream::System,
        Stream::Recommendations,
    ];

    /// The name in URLs, file names and the `retention.<name>_days` key.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Events => "events",
            Stream::Performance => "performance",
            Stream::Ai => "ai",
            Stream::Database => "database",
            Stream::Conversions => "conversions",
            Stream::Errors => "errors",
            Stream::System => "system",
            Stream::Recommendations => "recommendations",
        }
    }

    /// The table, with the guide's name where the guide has one.
    pub fn table(self) -> &'static str {
        match self {
            Stream::Events => "user_events",
            Stream::Performance => "performance_metrics",
            Stream::Ai => "ai_performance_metrics",
            Stream::Database => "database_performance_metrics",
            Stream::Conversions => "conversions",
            Stream::Errors => "app_errors",
            Stream::System => "system_metrics",
            Stream::Recommendations => "scaling_recommendations",
        }
    }

    /// The column a row's age is read from, for retention and export windows: the time
    /// people acted (`event_time`, migration 0013) where a stream has it.
    pub fn age_column(self) -> &'static str {
        match self {
            Stream::Events
            | Stream::Performance
            | Stream::Ai
            | Stream::Database
            | Stream::Conversions => "event_time",
            Stream::Errors | Stream::System | Stream::Recommendations => "created_at",
        }
    }
}

impl FromStr for Stream {
    type Err = String;
    fn from_str(s: &str) -> Result<Stream, String> {
        Stream::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Stream::ALL.iter().map(|s| s.name()).collect();
                format!("{s:?} is not a stream; one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Stream::ALL {
            assert_eq!(s.name().parse::<Stream>(), Ok(s));
        }
        assert!("user_events".parse::<Stream>().is_err());
    }
}
