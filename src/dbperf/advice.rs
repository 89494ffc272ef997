//! Index advice for slow and frequent fingerprints, after PgHero's heuristic: one table,
//! a WHERE of `= <> < > <= >= LIKE BETWEEN IN IS NULL` conditions joined by AND, and an
//! ORDER BY read in one direction. Equality columns come first, most selective first
//! (selectivity from `pg_stats`), then the ORDER BY column when every condition is an
//! equality, then the best range column; at most two columns. An existing index whose
//! leading columns are these covers the query and nothing is suggested.

use serde::Serialize;
use sqlparser::ast::{
    BinaryOperator, Expr, InTarget, OrderByKind, OrderBySort, SetExpr, Statement, TableFactor,
    Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::pg::{quote_ident, Catalog, Column, Table};

/// Below this many rows a sequential scan is cheap and no index is suggested.
pub const MIN_ROWS: f64 = 10_000.0;
/// PostgreSQL's own defaults when a column has no statistics.
const DEFAULT_EQ_SEL: f64 = 0.005;
const DEFAULT_INEQ_SEL: f64 = 1.0 / 3.0;
const DEFAULT_RANGE_SEL: f64 = 0.005;
const DEFAULT_MATCH_SEL: f64 = 0.005;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    In,
    IsNull,
    IsNotNull,
    NotEq,
    Range,
    Between,
    Like,
}

impl Op {
    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::In | Op::IsNull)
    }

    fn words(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::In => "IN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
            Op::NotEq => "<>",
            Op::Range => "a range",
            Op::Between => "BETWEEN",
            Op::Like => "LIKE",
        }
    }
}

/// What the query asks of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// As written (`schema.table` or `table`).
    pub table: String,
    pub conditions: Vec<(String, Op)>,
    /// ORDER BY columns up to where the direction changes, and whether it is DESC.
    pub order: Vec<String>,
    pub descending: bool,
}

/// Why a query got no suggestion, or the suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub table: Option<String>,
    /// Suggested index columns, in order; empty when there is no suggestion.
    pub columns: Vec<String>,
    /// `CREATE INDEX CONCURRENTLY ...`, when something is suggested.
    pub statement: Option<String>,
    /// An existing index that already serves the query.
    pub covered_by: Option<String>,
    /// The reasoning, in words.
    pub reason: String,
    /// Estimated rows the best condition leaves, with and without the index's columns.
    pub rows: Option<f64>,
    pub estimated_rows: Option<f64>,
}

impl Advice {
    fn none(table: Option<String>, reason: impl Into<String>) -> Advice {
        Advice {
            table,
            columns: Vec::new(),
            statement: None,
            covered_by: None,
            reason: reason.into(),
            rows: None,
            estimated_rows: None,
        }
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        Expr::Nested(inner) => column_name(inner),
        _ => None,
    }
}

fn is_value(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_value(expr),
        Expr::UnaryOp { expr, .. } => is_value(expr),
        _ => false,
    }
}

fn conditions(e: &Expr, out: &mut Vec<(String, Op)>) -> Result<(), String> {
    let unsupported = || Err(format!("the condition `{e}` is not one the advisor reads"));
    match e {
        Expr::Nested(inner) => conditions(inner, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conditions(left, out)?;
            conditions(right, out)
        }
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => Op::Eq,
                BinaryOperator::NotEq => Op::NotEq,
                BinaryOperator::Lt
                | BinaryOperator::Gt
                | BinaryOperator::LtEq
                | BinaryOperator::GtEq => Op::Range,
                _ => return unsupported(),
            };
            let col = match (column_name(left), column_name(right)) {
                (Some(c), None) if is_value(right) => c,
                (None, Some(c)) if is_value(left) => c,
                _ => return unsupported(),
            };
            out.push((col, op));
            Ok(())
        }
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated: false,
            ..
        } if list.iter().all(is_value) => match column_name(expr) {
            Some(c) => {
                out.push((c, Op::In));
                Ok(())
            }
            None => unsupported(),
        },
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } if is_value(low) && is_value(high) => match column_name(expr) {
            Some(c) => {
                out.push((c, Op::Between));
                Ok(())
            }
            None => unsupported(),
        },
        Expr::Like {
            expr,
            negated: false,
            pattern,
            ..
        }
        | Expr::ILike {
            expr,
            negated: false,
            pattern,
            ..
        } if is_value(pattern) => match column_name(expr) {
            Some(c) => {
                out.push((c, Op::Like));
                Ok(())
            }
            None => unsupported(),
        },
        Expr::IsNull(inner) | Expr::IsNotNull(inner) => match column_name(inner) {
            Some(c) => {
                let op = if matches!(e, Expr::IsNull(_)) {
                    Op::IsNull
                } else {
                    Op::IsNotNull
                };
                out.push((c, op));
                Ok(())
            }
            None => unsupported(),
        },
        _ => unsupported(),
    }
}

/// Reads a query's table, conditions and order, or says why it cannot.
pub fn shape(sql: &str) -> Result<Shape, String> {
    let statements = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(48)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|_| "the query does not parse as PostgreSQL".to_string())?;
    let [Statement::Query(q)] = statements.as_slice() else {
        return Err("only single SELECT statements are advised on".into());
    };
    let SetExpr::Select(select) = q.body.as_ref() else {
        return Err("only plain SELECTs are advised on (no UNION or VALUES)".into());
    };
    let [from] = select.from.as_slice() else {
        return Err("the query reads more than one table (or none)".into());
    };
    if !from.joins.is_empty() {
        return Err("the query joins tables; the advisor reads single-table queries".into());
    }
    let TableFactor::Table { name, .. } = &from.relation else {
        return Err("the query reads a subquery or a function, not a table".into());
    };
    let table = name.to_string();
    let mut conds = Vec::new();
    if let Some(w) = &select.selection {
        conditions(w, &mut conds)?;
    }
    let mut order = Vec::new();
    let mut descending = false;
    if let Some(ob) = &q.order_by {
        if let OrderByKind::Expressions(list) = &ob.kind {
            for (i, o) in list.iter().enumerate() {
                let desc = matches!(o.options.sort, Some(OrderBySort::Desc));
                if i == 0 {
                    descending = desc;
                } else if desc != descending {
                    break;
                }
                match column_name(&o.expr) {
                    Some(c) => order.push(c),
                    None => break,
                }
            }
        }
    }
    Ok(Shape {
        table,
        conditions: conds,
        order,
        descending,
    })
}

/// Share of rows one value of `c` matches.
fn eq_share(c: Option<&Column>, rows: f64) -> f64 {
    let Some(c) = c else { return DEFAULT_EQ_SEL };
    let nulls = c.null_frac.unwrap_or(0.0);
    let share = match c.n_distinct {
        Some(d) if d > 0.0 => 1.0 / d,
        Some(d) if d < 0.0 && rows > 0.0 => 1.0 / (-d * rows),
        _ => DEFAULT_EQ_SEL,
    };
    (share * (1.0 - nulls)).clamp(0.0, 1.0)
}

fn share(op: Op, c: Option<&Column>, rows: f64) -> f64 {
    match op {
        Op::Eq | Op::In => eq_share(c, rows),
        Op::IsNull => c.and_then(|c| c.null_frac).unwrap_or(DEFAULT_EQ_SEL),
        Op::IsNotNull => 1.0 - c.and_then(|c| c.null_frac).unwrap_or(0.0),
        Op::NotEq => 1.0 - eq_share(c, rows),
        Op::Range => DEFAULT_INEQ_SEL,
        Op::Between => DEFAULT_RANGE_SEL,
        Op::Like => DEFAULT_MATCH_SEL,
    }
}

fn count(n: f64) -> String {
    let n = n.max(0.0).round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The suggestion for one query text against the catalog.
pub fn advise(sql: &str, catalog: &Catalog) -> Advice {
    let s = match shape(sql) {
        Ok(s) => s,
        Err(why) => return Advice::none(None, why),
    };
    let Some(t) = catalog.table(&s.table) else {
        return Advice::none(
            Some(s.table.clone()),
            format!("table {} is not in database.url's catalog", s.table),
        );
    };
    advise_shape(&s, t, catalog)
}

fn advise_shape(s: &Shape, t: &Table, catalog: &Catalog) -> Advice {
    let name = format!("{}.{}", t.schema, t.name);
    if t.rows < MIN_ROWS {
        return Advice::none(
            Some(name),
            format!(
                "{} has about {} rows; below {} a sequential scan is cheap",
                t.name,
                count(t.rows.max(0.0)),
                count(MIN_ROWS)
            ),
        );
    }
    for (c, _) in &s.conditions {
        if t.column(c).is_none() {
            return Advice::none(Some(name), format!("{c} is not a column of {}", t.name));
        }
    }
    let mut eq: Vec<(String, Op, f64)> = Vec::new();
    let mut range: Vec<(String, Op, f64)> = Vec::new();
    for (c, op) in &s.conditions {
        let sh = share(*op, t.column(c), t.rows);
        let list = if op.is_equality() {
            &mut eq
        } else {
            &mut range
        };
        if !list.iter().any(|(n, _, _)| n == c) {
            list.push((c.clone(), *op, sh));
        }
    }
    eq.sort_by(|a, b| a.2.total_cmp(&b.2));
    range.sort_by(|a, b| a.2.total_cmp(&b.2));
    let mut cols: Vec<String> = Vec::new();
    let mut why: Vec<String> = Vec::new();
    let mut left = t.rows;
    for (c, op, sh) in &eq {
        if cols.len() == 2 || (cols.len() == 1 && left <= 10.0) {
            break;
        }
        cols.push(c.clone());
        left *= sh;
        why.push(format!(
            "{c} {} matches about {:.2}% of rows ({} of {})",
            op.words(),
            sh * 100.0,
            count(t.rows * sh),
            count(t.rows)
        ));
    }
    let all_equal = range.is_empty();
    if all_equal && cols.len() < 2 {
        if let Some(o) = s.order.iter().find(|o| !cols.contains(o)) {
            if t.column(o).is_some() {
                cols.push(o.clone());
                why.push(format!(
                    "ORDER BY {o}{} is then read in index order, without a sort",
                    if s.descending { " DESC" } else { "" }
                ));
            }
        }
    }
    if cols.len() < 2 {
        if let Some((c, op, sh)) = range.first() {
            // A range narrows only as the last index column.
            if *sh < 0.5 {
                cols.push(c.clone());
                left *= sh;
                why.push(format!(
                    "{c} {} is estimated to keep {:.1}% of rows",
                    op.words(),
                    sh * 100.0
                ));
            }
        }
    }
    if cols.is_empty() && !s.order.is_empty() && s.conditions.is_empty() {
        if let Some(o) = s.order.first().filter(|o| t.column(o).is_some()) {
            cols.push(o.clone());
            why.push(format!(
                "ORDER BY {o} with a LIMIT reads the first rows of an index on {o}"
            ));
        }
    }
    if cols.is_empty() {
        return Advice::none(
            Some(name),
            "no condition is selective enough for an index to help",
        );
    }
    let covering = catalog.indexes_of(t).find(|i| {
        !i.partial
            && !i.expression
            && i.method == "btree"
            && i.columns.len() >= cols.len()
            && i.columns[..cols.len()] == cols[..]
    });
    if let Some(i) = covering {
        return Advice {
            table: Some(name),
            columns: cols.clone(),
            statement: None,
            covered_by: Some(i.name.clone()),
            reason: format!(
                "covered by existing index {} on ({})",
                i.name,
                i.columns.join(", ")
            ),
            rows: Some(t.rows),
            estimated_rows: Some(left),
        };
    }
    let statement = format!(
        "CREATE INDEX CONCURRENTLY ON {} ({});",
        t.qualified(),
        cols.iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let reason = format!(
        "{} has about {} rows and no index starts with ({}): {}.",
        t.name,
        count(t.rows),
        cols.join(", "),
        why.join("; ")
    );
    Advice {
        table: Some(name),
        columns: cols,
        statement: Some(statement),
        covered_by: None,
        reason,
        rows: Some(t.rows),
        estimated_rows: Some(left),
    }
}

/// The statement to EXPLAIN for a query text: re-printed from its parse (so only one
/// plain SELECT is ever sent), or `None`. `generic` tells whether it still has `$n`.
pub fn explainable(sql: &str) -> Option<(String, bool)> {
    let statements = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(48)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .ok()?;
    let [Statement::Query(q)] = statements.as_slice() else {
        return None;
    };
    let text = q.to_string();
    let mut generic = false;
    let _ = sqlparser::ast::visit_expressions(&statements, |e| {
        if let Expr::Value(v) = e {
            if matches!(v.value, Value::Placeholder(_)) {
                generic = true;
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    Some((text, generic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbperf::pg::Index;

    fn catalog(with_index: bool) -> Catalog {
        let col = |n: &str, d: Option<f64>| Column {
            name: n.into(),
            data_type: "text".into(),
            null_frac: Some(0.0),
            n_distinct: d,
        };
        let columns = vec![
            col("id", Some(-1.0)),
            col("user_id", Some(1000.0)),
            col("status", Some(3.0)),
            col("created_at", Some(-0.9)),
        ];
        let mut c = Catalog::one_table("recipes", columns, 200_000.0);
        let recipes = c.tables.get_mut("public.recipes").unwrap();
        (recipes.seq_scan, recipes.seq_tup_read) = (10, 2_000_000);
        if with_index {
            c.indexes.push(Index {
                schema: "public".into(),
                table: "recipes".into(),
                name: "recipes_user_created".into(),
                columns: vec!["user_id".into(), "created_at".into()],
                unique: false,
                primary: false,
                partial: false,
                expression: false,
                method: "btree".into(),
                definition: String::new(),
                size_bytes: 0,
                scans: 0,
            });
        }
        c
    }

    #[test]
    fn equality_then_order_by() {
        let a = advise(
            "SELECT id, name FROM recipes WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
            &catalog(false),
        );
        assert_eq!(a.columns, ["user_id", "created_at"], "{a:?}");
        assert_eq!(
            a.statement.as_deref(),
            Some("CREATE INDEX CONCURRENTLY ON public.recipes (user_id, created_at);")
        );
        assert!(a.reason.contains("user_id"), "{}", a.reason);
        let b = advise(
            "SELECT id FROM recipes WHERE user_id = $1 ORDER BY created_at DESC",
            &catalog(true),
        );
        assert_eq!(b.covered_by.as_deref(), Some("recipes_user_created"));
        assert!(b.statement.is_none());
    }

    #[test]
    fn most_selective_equality_first() {
        let a = advise(
            "SELECT * FROM recipes WHERE status = $1 AND user_id = $2",
            &catalog(false),
        );
        assert_eq!(a.columns, ["user_id", "status"], "{a:?}");
    }

    #[test]
    fn what_is_not_advised_says_why() {
        for q in [
            "SELECT * FROM recipes r JOIN users u ON u.id = r.user_id WHERE u.id = $1",
            "SELECT * FROM recipes WHERE user_id = $1 OR status = $2",
            "DELETE FROM recipes WHERE id = $1",
            "not sql",
        ] {
            let a = advise(q, &catalog(false));
            assert!(a.statement.is_none() && !a.reason.is_empty(), "{q}: {a:?}");
        }
    }

    #[test]
    fn explainable_sends_one_select_only() {
        assert!(explainable("SELECT 1; DROP TABLE recipes").is_none());
        assert!(explainable("DELETE FROM recipes").is_none());
        let (t, generic) = explainable("SELECT * FROM recipes WHERE user_id = 'a'").unwrap();
        assert!(!generic);
        assert!(t.starts_with("SELECT"));
        assert!(
            explainable("SELECT * FROM recipes WHERE user_id = $1")
                .unwrap()
                .1
        );
    }
}
