//! String literals for ClickHouse SQL. 18.16 has no server-side `{name:Type}` parameters,
//! so values are quoted here: every byte that could end or bend a literal is escaped.

/// `s` as a single-quoted ClickHouse string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A list of literals for `IN (...)`.
pub fn quote_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().map(quote).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// ClickHouse's reading of a quoted literal (its escape rules, written independently):
    /// the value and where the literal ends.
    fn read_literal(text: &str) -> Option<(String, usize)> {
        let b: Vec<char> = text.chars().collect();
        if b.first() != Some(&'\'') {
            return None;
        }
        let mut out = String::new();
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                '\'' => return Some((out, i + 1)),
                '\\' => {
                    let n = *b.get(i + 1)?;
                    i += 2;
                    match n {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        'x' => {
                            let hex: String = b.get(i..i + 2)?.iter().collect();
                            out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
                            i += 2;
                        }
                        other => out.push(other),
                    }
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        None
    }

    proptest! {
        #[test]
        fn any_string_reads_back_whole(s in ".*", tail in "[ a-z0-9'\\\\)]*") {
            let q = quote(&s);
            let text = format!("{q}{tail}");
            let (value, end) = read_literal(&text).expect("a closed literal");
            prop_assert_eq!(value, s);
            // The literal ends where the quoting ends: nothing after it is swallowed.
            prop_assert_eq!(end, q.chars().count());
        }
    }

    #[test]
    fn known_cases() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\'b"), r"'a\\\'b'");
        assert_eq!(quote("x\ny"), r"'x\ny'");
        assert_eq!(quote_list(["a", "b"]), "'a', 'b'");
    }
}
