//! Event properties read in Rust exactly as DuckDB's `json_extract_string(properties,
//! '/key')` reads them, for the engines that cannot: ClickHouse 18.16 has only
//! `visitParamExtract*`, which finds a key at any depth and misses `"k": v` with a space,
//! so a funnel's filters and breakdown there are applied here to the rows it fetches.

use std::fmt::Write;

/// The text of top-level property `key` of a stored JSON object, or `None` where DuckDB
/// gives NULL (no properties, not an object, no such key, a JSON null). Strings come
/// unescaped; numbers, booleans, objects and arrays as DuckDB (yyjson) writes them.
pub fn text(properties: Option<&str>, key: &str) -> Option<String> {
    let Some(Json::Object(members)) = parse(properties?) else {
        return None;
    };
    // The first of repeated keys, as DuckDB's lookup finds it.
    match &members.iter().find(|(k, _)| k == key)?.1 {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => {
            let mut out = String::new();
            other.write(&mut out);
            Some(out)
        }
    }
}

/// A JSON document as DuckDB keeps it: members in stored order, repeated keys kept
/// (`serde_json::Value` sorts keys and keeps the last of a repeated one).
enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// A number beyond i64/u64 or f64, written back as stored.
    Raw(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// yyjson's minified writer: only `"`, `\\` and control characters escaped (short
    /// forms where JSON has them, else `\\u00XX` in upper case), numbers as `number`.
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Unsigned(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Signed(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(f) => out.push_str(&number(*f)),
            Json::Raw(raw) => out.push_str(raw),
            Json::String(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        '\u{8}' => out.push_str("\\b"),
                        '\u{c}' => out.push_str("\\f"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04X}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            Json::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::String(k.clone()).write(out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// A double as yyjson writes it: the shortest digits that read back the same; plain
/// notation (with `.0` on whole numbers) while the decimal point falls within -6..=21
/// places, like JavaScript, else `1.5e300` / `2.5e-8` (no `+`).
pub fn number(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: `-1.25e-7`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if digits == "0" {
        return format!("{sign}0.0");
    }
    let len = digits.len() as i32;
    // Where the point falls after the digits' first one: 0.ddd x 10^dot.
    let dot = exp + 1;
    let body = if -6 < dot && dot <= 21 {
        if dot <= 0 {
            format!("0.{}{digits}", "0".repeat((-dot) as usize))
        } else if dot >= len {
            format!("{digits}{}.0", "0".repeat((dot - len) as usize))
        } else {
            format!("{}.{}", &digits[..dot as usize], &digits[dot as usize..])
        }
    } else if len == 1 {
        format!("{digits}e{exp}")
    } else {
        format!("{}.{}e{exp}", &digits[..1], &digits[1..])
    };
    format!("{sign}{body}")
}

/// A small reader of the stored text into `Json`, keeping each number's text: DuckDB
/// writes an integer beyond 64 bits or a float beyond f64 back as it was stored, and
/// serde_json's default float reading may miss the nearest double by one unit.
struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip();
        (self.s.get(self.at) == Some(&b)).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str, v: Json) -> Option<Json> {
        self.s[self.at..].starts_with(word.as_bytes()).then(|| {
            self.at += word.len();
            v
        })
    }

    fn value(&mut self, depth: u32) -> Option<Json> {
        self.skip();
        if depth > 1000 {
            return None;
        }
        match *self.s.get(self.at)? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                if self.eat(b'}').is_some() {
                    return Some(Json::Object(members));
                }
                loop {
                    self.skip();
                    let k = self.string()?;
                    self.eat(b':')?;
                    members.push((k, self.value(depth + 1)?));
                    if self.eat(b',').is_none() {
                        self.eat(b'}')?;
                        return Some(Json::Object(members));
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Json::Array(items));
                    }
                }
            }
            b'"' => self.string().map(Json::String),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(self.at) {
            self.at += 1;
        }
        let raw = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        if raw.is_empty() {
            return None;
        }
        let integer = !raw.contains(['.', 'e', 'E']);
        if integer {
            if let Ok(n) = raw.parse::<u64>() {
                return Some(Json::Unsigned(n));
            }
            if let Ok(n) = raw.parse::<i64>() {
                return Some(Json::Signed(n));
            }
            raw.strip_prefix('-').unwrap_or(raw).parse::<u128>().ok()?;
            return Some(Json::Raw(raw.to_string()));
        }
        let f: f64 = raw.parse().ok()?;
        Some(if f.is_finite() {
            Json::Float(f)
        } else {
            Json::Raw(raw.to_string())
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(h, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        if self.s.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            match *self.s.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    self.at += 1;
                    let c = match *self.s.get(self.at)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.at += 1;
                            let hi = self.hex4()?;
                            self.at -= 1;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                self.at += 1;
                                if self.s.get(self.at..self.at + 2)? != b"\\u" {
                                    return None;
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                self.at -= 1;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    self.at += 1;
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b => {
                    self.at += 1;
                    out.push(b);
                }
            }
        }
    }
}

/// The whole text as one JSON document; `None` when it is not one.
fn parse(text: &str) -> Option<Json> {
    let mut r = Reader {
        s: text.as_bytes(),
        at: 0,
    };
    let v = r.value(0)?;
    r.skip();
    (r.at == r.s.len()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    /// DuckDB's own answer, the oracle.
    fn duck(conn: &duckdb::Connection, props: Option<&str>, key: &str) -> Option<String> {
        conn.query_row(
            "SELECT json_extract_string(?::JSON, ?)",
            duckdb::params![props, super::super::funnel::pointer(key)],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            (-1000i32..1000, 0u32..4)
                .prop_map(|(m, e)| Value::from(m as f64 / 10f64.powi(e as i32))),
            "\\PC{0,6}".prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\/\\u{7f}\\u{80}-\\u{ff}é💡a]{0,4}".prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-c/~ ]{1,2}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn edge_cases_read_as_duckdb_reads_them() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        let mut bad = Vec::new();
        for (props, key) in [
            (None, "a"),
            (Some("{}"), "a"),
            (Some("[1]"), "a"),
            (Some("\"a\""), "a"),
            (Some("{\"a\":null}"), "a"),
            (Some("{\"a\":1.5e300}"), "a"),
            (Some("{\"a\":1e20}"), "a"),
            (Some("{\"a\":100.0}"), "a"),
            (Some("{\"a\":1e-7}"), "a"),
            (Some("{\"a\":18446744073709551615}"), "a"),
            (Some("{\"a\":-9223372036854775808}"), "a"),
            (Some("{\"a\":{\"b\":[1,\"x\\u001f/\"]}}"), "a"),
            (Some("{\"a/b\":\"slash\"}"), "a/b"),
            (Some("{\"a~b\":\"tilde\"}"), "a~b"),
            (Some("{\"b\":{\"a\":\"deep\"}}"), "a"),
            (Some("{\"a\": \"spaced\"}"), "a"),
            (Some("{\"a\":true}"), "a"),
            (Some("{\"a\":0.1}"), "a"),
            (Some("{\"a\":-0}"), "a"),
            (Some("{\"a\":[1e400,-184467440737095516150]}"), "a"),
            (Some("{\"a\":\"\\ud83d\\udca1\\/\"}"), "a"),
            (Some("{\"a\":[\"\\ud83d\\udca1\\/\"]}"), "a"),
            (Some(" { \"a\" : [ 1 , 2 ] } "), "a"),
            (Some("{\"a\":1e-6}"), "a"),
            (Some("{\"a\":1.5e-7}"), "a"),
            (Some("{\"a\":1.25e21}"), "a"),
            (Some("{\"a\":-1.25e-200}"), "a"),
            (Some("{\"a\":123e18}"), "a"),
            (Some("{\"a\":184467440737095516150}"), "a"),
            (Some("{\"z\":1,\"a\":{\"y\":1,\"b\":2,\"y\":3}}"), "a"),
            (Some("{\"a\":123456789.125}"), "a"),
            (Some("{\"a\":1e16}"), "a"),
            (Some("{\"a\":1e15}"), "a"),
            (Some("{\"a\":0.0001}"), "a"),
            (Some("{\"a\":0.00001}"), "a"),
            (Some("{\"a\":-0.0}"), "a"),
            (Some("{\"a\":[1e+21,1e21,2.5E-8]}"), "a"),
            (Some("{\"a\":\"\\u007f\\u0080\"}"), "a"),
            (Some("{\"a\":[\"\\u007f\\u0080\\u2028é\"]}"), "a"),
            (Some("{\"a\":1,\"a\":2}"), "a"),
        ] {
            let (got, want) = (text(props, key), duck(&conn, props, key));
            if got != want {
                bad.push(format!("{props:?} {key}: {got:?} vs duckdb {want:?}"));
            }
        }
        assert!(bad.is_empty(), "{bad:#?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Any properties object as ingest stores it (serde_json's text): every key, and
        /// one that is absent, reads as DuckDB reads it.
        #[test]
        fn any_stored_properties_read_as_duckdb_reads_them(
            m in prop::collection::btree_map("[a-c/~ ]{1,2}", value(), 0..4)
        ) {
            let conn = duckdb::Connection::open_in_memory().unwrap();
            let stored = Value::Object(m.clone().into_iter().collect()).to_string();
            for key in m.keys().map(String::as_str).chain(["zz"]) {
                prop_assert_eq!(text(Some(&stored), key), duck(&conn, Some(&stored), key), "{} {}", stored, key);
            }
        }
    }
}
