//! Query fingerprints: one id for every spelling of "the same query" with other literals.
//!
//! Parsed with `sqlparser` (PostgreSQL dialect): every literal and bind placeholder becomes
//! `$n` (numbered in order, so `WHERE id = 42` and an ORM's `WHERE id = $1` are one
//! query), an `IN (...)` list and a multi-row `VALUES` become one item, unquoted
//! identifiers are lower-cased and the statement is printed back in one canonical layout.
//! Text that does not parse falls back to the tokenizer (same placeholders, keywords upper
//! case, whitespace collapsed), and text the tokenizer refuses to a character scan.
//! Untrusted text is capped at `MAX_TEXT` bytes and the parser's nesting at `MAX_DEPTH`.

use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use sqlparser::ast::{
    Expr, Ident, InTarget, ObjectName, ObjectNamePart, Query, SetExpr, Statement, Value, VisitMut,
    VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Longest text fingerprinted; the rest is not looked at (the stored query keeps it).
pub const MAX_TEXT: usize = 10 * 1024;
/// Deepest nesting the parser follows before the tokenizer takes over.
const MAX_DEPTH: usize = 48;
/// Recently seen texts: ORMs send the same bind-parameter text over and over.
const MEMO_ENTRIES: usize = 4096;
/// Longest text the memo keeps.
const MEMO_MAX_TEXT: usize = 2048;

/// A query's fingerprint: a short stable id and the normalised text it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// 16 hex digits of SHA-256 over `text`.
    pub id: String,
    pub text: String,
    /// How the text was normalised.
    pub how: Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Parsed,
    Tokenized,
    Scanned,
}

/// Fingerprints `sql`.
pub fn fingerprint(sql: &str) -> Fingerprint {
    let sql = cap(sql);
    let (text, how) = match parsed(sql) {
        Some(t) => (t, Method::Parsed),
        None => match tokenized(sql) {
            Some(t) => (t, Method::Tokenized),
            None => (scanned(sql), Method::Scanned),
        },
    };
    Fingerprint {
        id: id_of(&text),
        text,
        how,
    }
}

/// The process-wide memo ingest uses.
pub fn memo() -> &'static Fingerprinter {
    static MEMO: std::sync::OnceLock<Fingerprinter> = std::sync::OnceLock::new();
    MEMO.get_or_init(Fingerprinter::default)
}

/// Fingerprints with two memos of recent short texts (long texts are rare and would make
/// them large: they are not kept), each keyed by a keyed 64-bit hash:
/// - the exact text, which answers ORMs' bind-parameter texts without any work;
/// - the text's shape (`shape_key`: its tokens, every literal as one marker), which answers
///   texts that differ only in literal values and spacing with a tokenization instead of a
///   parse. The parse path replaces every literal, so one shape has one fingerprint.
pub struct Fingerprinter {
    exact: Mutex<lru::LruCache<u64, Fingerprint>>,
    shapes: Mutex<lru::LruCache<u64, Fingerprint>>,
    keys: std::collections::hash_map::RandomState,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        let memo = || {
            Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(MEMO_ENTRIES).unwrap_or(NonZeroUsize::MIN),
            ))
        };
        Fingerprinter {
            exact: memo(),
            shapes: memo(),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl Fingerprinter {
    pub fn get(&self, sql: &str) -> Fingerprint {
        if sql.len() > MEMO_MAX_TEXT {
            return fingerprint(sql);
        }
        // Keyed with random keys per process, so crafted texts cannot collide on purpose.
        let key = self.keys.hash_one(sql);
        if let Some(f) = self.exact.lock().get(&key) {
            return f.clone();
        }
        let shape = shape_key(sql, &self.keys);
        let known = shape.and_then(|k| self.shapes.lock().get(&k).cloned());
        let f = known.unwrap_or_else(|| fingerprint(sql));
        if let Some(k) = shape {
            self.shapes.lock().put(k, f.clone());
        }
        self.exact.lock().put(key, f.clone());
        f
    }
}

/// The tokens of `sql` with whitespace and comments left out and every literal (and bind
/// placeholder) as one marker, hashed; `None` when the tokenizer refuses the text. Lists
/// are not folded here: `f(1, 2)` and `f(1)` are different shapes.
fn shape_key(sql: &str, keys: &std::collections::hash_map::RandomState) -> Option<u64> {
    use std::hash::{BuildHasher, Hash, Hasher};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut h = keys.build_hasher();
    for t in &tokens {
        match t {
            Token::Whitespace(_) => {}
            t if is_literal(t) => 0u8.hash(&mut h),
            other => {
                1u8.hash(&mut h);
                other.hash(&mut h);
            }
        }
    }
    Some(h.finish())
}

/// A value the app chose (or a bind placeholder for one): what a fingerprint leaves out.
fn is_literal(t: &Token) -> bool {
    matches!(
        t,
        Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::Placeholder(_)
    )
}

fn id_of(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

fn cap(sql: &str) -> &str {
    if sql.len() <= MAX_TEXT {
        return sql;
    }
    let mut end = MAX_TEXT;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    &sql[..end]
}

/// Replaces literals with numbered placeholders and lower-cases unquoted names.
struct Normalise {
    next: usize,
}

impl Normalise {
    fn placeholder(&mut self) -> Value {
        self.next += 1;
        Value::Placeholder(format!("${}", self.next))
    }
}

/// Spells a name as PostgreSQL reads it: unquoted names fold to lower case, and quotes
/// around a name that needs none (`"recipes"`, as ORMs write) are dropped.
fn lower(ident: &mut Ident) {
    match ident.quote_style {
        None => {
            if ident.value.bytes().any(|b| b.is_ascii_uppercase()) {
                ident.value.make_ascii_lowercase();
            }
        }
        Some('"') => {
            let plain = ident
                .value
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                && ident
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if plain {
                ident.quote_style = None;
            }
        }
        Some(_) => {}
    }
}

impl VisitorMut for Normalise {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Values(values) = query.body.as_mut() {
            values.rows.truncate(1);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        for part in relation.0.iter_mut() {
            #[allow(irrefutable_let_patterns)]
            if let ObjectNamePart::Identifier(ident) = part {
                lower(ident);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            // A list of literals is one placeholder, however long; a list of
            // expressions (columns, calls) stays as written.
            Expr::In {
                target: InTarget::List(list),
                ..
            } if !list.is_empty() && list.iter().all(|e| matches!(e, Expr::Value(_))) => {
                list.truncate(1);
            }
            Expr::Value(v) if !matches!(v.value, Value::Null) => v.value = self.placeholder(),
            Expr::Identifier(ident) => lower(ident),
            Expr::CompoundIdentifier(idents) => idents.iter_mut().for_each(lower),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn parsed(sql: &str) -> Option<String> {
    let dialect = PostgreSqlDialect {};
    let mut statements: Vec<Statement> = Parser::new(&dialect)
        .with_recursion_limit(MAX_DEPTH)
        .try_with_sql(sql)
        .ok()?
        .parse_statements()
        .ok()?;
    if statements.is_empty() {
        return None;
    }
    let mut v = Normalise { next: 0 };
    let _ = statements.visit(&mut v);
    let mut out = String::with_capacity(sql.len());
    for (i, s) in statements.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        use std::fmt::Write;
        let _ = write!(out, "{s}");
    }
    Some(out)
}

fn tokenized(sql: &str) -> Option<String> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize().ok()?;
    let mut out = String::with_capacity(sql.len());
    let mut n = 0usize;
    let mut space = false;
    for t in tokens {
        let piece = match t {
            Token::Whitespace(_) => {
                space = true;
                continue;
            }
            Token::EOF => break,
            t if is_literal(&t) => {
                push_placeholder(&mut out, &mut n, space);
                space = false;
                continue;
            }
            Token::Word(w) if w.quote_style.is_none() => {
                if w.keyword == Keyword::NoKeyword {
                    w.value.to_ascii_lowercase()
                } else {
                    w.value.to_ascii_uppercase()
                }
            }
            other => other.to_string(),
        };
        let glue = matches!(piece.as_str(), "," | ")" | ";" | "." | "::")
            || out.ends_with('(')
            || out.ends_with('.')
            || out.ends_with("::");
        if !out.is_empty() && !glue && (space || needs_space(&out, &piece)) {
            out.push(' ');
        }
        space = false;
        out.push_str(&piece);
    }
    let out = out.trim_end_matches(';').trim().to_string();
    (!out.is_empty()).then_some(out)
}

/// Appends the next placeholder, or, right after `$k,`, folds this literal into that one
/// (a list of literals is one placeholder however long).
fn push_placeholder(out: &mut String, n: &mut usize, space: bool) {
    let t = out.trim_end();
    if let Some(before) = t.strip_suffix(',') {
        let before = before.trim_end();
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && before[..before.len() - digits].ends_with('$') {
            let keep = before.len();
            out.truncate(keep);
            return;
        }
    }
    if !out.is_empty() && (space || needs_space(out, "$")) && !out.ends_with(['(', ' ', '.']) {
        out.push(' ');
    }
    *n += 1;
    out.push('$');
    out.push_str(&n.to_string());
}

/// Keeps two word-like pieces apart when the source had no space between them.
fn needs_space(out: &str, piece: &str) -> bool {
    let last = out.chars().next_back();
    let first = piece.chars().next();
    matches!((last, first), (Some(a), Some(b)) if is_word(a) && is_word(b))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The last resort: quoted strings and numbers become placeholders, whitespace collapses.
fn scanned(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut n = 0usize;
    let mut prev_word = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            // To the closing quote ('' is an escaped quote), or the end.
            loop {
                match chars.next() {
                    None => break,
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                    }
                    Some('\'') => break,
                    Some(_) => {}
                }
            }
            push_placeholder(&mut out, &mut n, false);
            prev_word = true;
        } else if c.is_ascii_digit() && !prev_word {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                chars.next();
            }
            push_placeholder(&mut out, &mut n, false);
            prev_word = true;
        } else if c.is_whitespace() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
            prev_word = false;
        } else {
            out.push(c.to_ascii_lowercase());
            prev_word = is_word(c);
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> Fingerprint {
        fingerprint(s)
    }

    #[test]
    fn literals_and_spellings_are_one_fingerprint() {
        let a = fp("SELECT * FROM meal_plans WHERE user_id = 42");
        let b = fp("select *   from MEAL_PLANS\n where user_id=7");
        let c = fp("SELECT * FROM meal_plans WHERE user_id = $1");
        let d = fp("SELECT * FROM \"meal_plans\" WHERE \"meal_plans\".\"user_id\" = 9");
        assert_eq!(a.id, b.id, "{} vs {}", a.text, b.text);
        assert_ne!(
            a.id, d.id,
            "a qualified column is another spelling, kept apart"
        );
        assert!(d.text.contains("meal_plans.user_id"), "{}", d.text);
        assert_eq!(a.id, c.id, "{} vs {}", a.text, c.text);
        assert_eq!(a.how, Method::Parsed);
        assert!(!a.text.contains("42"), "{}", a.text);
        assert_eq!(a.text, "SELECT * FROM meal_plans WHERE user_id = $1");
    }

    #[test]
    fn strings_in_lists_and_values_rows_are_squashed() {
        let a = fp("SELECT id FROM recipes WHERE user_id = 'a' AND id IN (1, 2, 3)");
        let b = fp("SELECT id FROM recipes WHERE user_id = 'bob' AND id IN (9)");
        assert_eq!(a.id, b.id, "{} vs {}", a.text, b.text);
        assert!(!a.text.contains("'a'"));
        let c = fp("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')");
        let d = fp("INSERT INTO t (a, b) VALUES (3, 'z')");
        assert_eq!(c.id, d.id, "{} vs {}", c.text, d.text);
    }

    #[test]
    fn different_queries_differ() {
        assert_ne!(
            fp("SELECT * FROM a WHERE x = 1").id,
            fp("SELECT * FROM b WHERE x = 1").id
        );
        assert_ne!(
            fp("SELECT * FROM a WHERE x = 1").id,
            fp("SELECT * FROM a WHERE y = 1").id
        );
    }

    #[test]
    fn unparsable_text_falls_back_without_literals() {
        let a = fp("SELEKT name FROM users WHERE email = 'a@b.c' AND age > 30");
        let b = fp("selekt name  from users where email = 'x@y.z' and age > 31");
        assert_eq!(a.how, Method::Tokenized);
        assert_eq!(a.id, b.id, "{} vs {}", a.text, b.text);
        assert!(!a.text.contains("a@b.c"), "{}", a.text);
        let c = fp("SELECT 'unterminated");
        assert_eq!(c.how, Method::Scanned);
        assert!(!c.text.contains("unterminated"), "{}", c.text);
    }

    #[test]
    fn hostile_text_is_capped_and_never_panics() {
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let f = fp(&deep);
        assert!(f.text.len() <= MAX_TEXT + 64);
        let long = format!(
            "SELECT * FROM t WHERE a IN ({})",
            vec!["1"; 20_000].join(",")
        );
        let f = fp(&long);
        assert!(f.text.len() <= MAX_TEXT + 64);
        for s in ["", ";", "'", "\"", "$$", "é'ü", "\u{0}", "SELECT $$abc"] {
            let _ = fp(s);
        }
    }

    #[test]
    fn memo_answers_like_the_function() {
        let m = Fingerprinter::default();
        let q = "SELECT * FROM ingredients WHERE recipe_id = $1";
        assert_eq!(m.get(q), fingerprint(q));
        assert_eq!(m.get(q), fingerprint(q));
        // Texts that differ only in literals go through the shape memo: the same answer
        // as parsing each of them.
        for id in [42, 7, 1000] {
            let q = format!("SELECT * FROM meal_plans WHERE user_id = {id} AND note = 'n{id}'");
            assert_eq!(m.get(&q), fingerprint(&q));
        }
        // A shape differs when the number of literals does, even where the parse path
        // would fold a list: each gets its own parse.
        for q in [
            "SELECT substring(name, 1, 3) FROM t",
            "SELECT substring(name, 2) FROM t",
            "SELECT * FROM t WHERE a IN (1, 2, 3)",
            "SELECT * FROM t WHERE a IN (4)",
        ] {
            assert_eq!(m.get(q), fingerprint(q), "{q}");
        }
        assert_ne!(
            m.get("SELECT substring(name, 1, 3) FROM t").id,
            m.get("SELECT substring(name, 2) FROM t").id
        );
    }
}
