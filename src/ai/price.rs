//! What a call cost: USD per million prompt and completion tokens, from `ai.prices`
//! over a few list prices, matched by exact model name or the longest name prefix.

use std::collections::BTreeMap;

use crate::config::AiPrice;

/// Public list prices (USD per million tokens, input/output) as of 2025; `ai.prices`
/// overrides or extends them.
const LIST: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1", 2.00, 8.00),
    ("o3-mini", 1.10, 4.40),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-opus", 15.00, 75.00),
    ("claude-opus-4", 15.00, 75.00),
];

pub struct Prices {
    table: Vec<(String, AiPrice)>,
}

impl Prices {
    pub fn new(configured: &BTreeMap<String, AiPrice>) -> Prices {
        let mut table: Vec<(String, AiPrice)> = LIST
            .iter()
            .filter(|(m, _, _)| !configured.contains_key(*m))
            .map(|(m, input, output)| {
                (
                    m.to_string(),
                    AiPrice {
                        input: *input,
                        output: *output,
                    },
                )
            })
            .collect();
        table.extend(configured.iter().map(|(k, v)| (k.clone(), *v)));
        // Longest names first, so "gpt-4o-mini" wins over "gpt-4o".
        table.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        Prices { table }
    }

    /// USD, or `None` when the model has no price.
    pub fn cost(&self, model: &str, prompt: u32, completion: u32) -> Option<f64> {
        let (_, p) = self
            .table
            .iter()
            .find(|(m, _)| model.starts_with(m.as_str()))?;
        Some((f64::from(prompt) * p.input + f64::from(completion) * p.output) / 1e6)
    }
}

/// The list price of a call, for the synthetic demo data.
pub fn list_cost(model: &str, prompt: i32, completion: i32) -> f64 {
    let prices = Prices::new(&BTreeMap::new());
    prices
        .cost(model, prompt.max(0) as u32, completion.max(0) as u32)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_overrides() {
        let mut c = BTreeMap::new();
        c.insert(
            "llama".to_string(),
            AiPrice {
                input: 0.0,
                output: 0.0,
            },
        );
        c.insert(
            "gpt-4o".to_string(),
            AiPrice {
                input: 1.0,
                output: 2.0,
            },
        );
        let p = Prices::new(&c);
        let mini = p
            .cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
            .unwrap();
        assert!((mini - 0.75).abs() < 1e-9, "{mini}");
        assert!((p.cost("gpt-4o", 1_000_000, 0).unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(p.cost("llama3.2", 10, 10), Some(0.0));
        assert_eq!(p.cost("unknown", 10, 10), None);
    }
}
