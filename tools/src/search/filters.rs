//! The `filters` object of a search, parsed into engine-neutral conditions.
//!
//! Shape: `{ field: value | [values] | "<conventions syntax>" | { "$op": value, … } }`, ANDed
//! across fields, ORed within a list. A plain value matches as the conventions say for its type
//! (text: case-insensitive partial match; ids, enums, booleans, numbers, dates: equality;
//! `null`: is null). Strings also take the conventions' range syntax (`$lt-5`, `$gte-100`,
//! `$btw-10-20`, `$btw-2026-01-01-2026-02-01`) and the date specials `$today`, `$week`, `$month`.
//! Operators: `$eq $ne $in $nin $lt $lte $gt $gte $btw [min, max] $like $null`. Anything else — an
//! unknown field, an operator the field's type does not take, a value of the wrong type — is a
//! `BadInput` naming the field and listing what is valid.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::index::{Field, Kind};
use crate::error::ToolError;
use crate::money::Money;

/// The most conditions (fields × values) one search may carry.
pub const MAX_VALUES: usize = 100;

/// A typed value to compare a column with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text (also enum values, canonical).
    Text(String),
    /// An id.
    Id(Uuid),
    /// A boolean.
    Bool(bool),
    /// An integer (also money in cents).
    Int(i64),
    /// A floating-point number (non-money numbers).
    Float(f64),
    /// A date.
    Date(NaiveDate),
    /// A point in time.
    Time(DateTime<Utc>),
}

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal (text: contains, case-insensitive).
    Eq(Scalar),
    /// Not equal (null counts as different).
    Ne(Scalar),
    /// Any of.
    In(Vec<Scalar>),
    /// None of.
    Nin(Vec<Scalar>),
    /// Less than.
    Lt(Scalar),
    /// At most.
    Lte(Scalar),
    /// More than.
    Gt(Scalar),
    /// At least.
    Gte(Scalar),
    /// Between, inclusive.
    Btw(Scalar, Scalar),
    /// A `LIKE`-style pattern with `*` as the wildcard, case-insensitive (text).
    Like(String),
    /// Is null (`true`) or is not null (`false`).
    Null(bool),
}

/// A condition on one field.
#[derive(Debug, Clone)]
pub struct Cond {
    /// The field.
    pub field: Field,
    /// What it must satisfy.
    pub op: Op,
}

fn names(fields: &[Field], pick: fn(&Field) -> bool) -> String {
    let list: Vec<&str> = fields
        .iter()
        .filter(|f| pick(f))
        .map(|f| f.name.as_str())
        .collect();
    list.join(", ")
}

/// The field `name` of the index, if filters may use it, else the error listing the valid ones.
pub fn filter_field<'a>(
    fields: &'a [Field],
    index: &str,
    name: &str,
    what: &str,
) -> Result<&'a Field, ToolError> {
    fields
        .iter()
        .find(|f| f.name == name && f.filterable())
        .ok_or_else(|| {
            ToolError::field(
                what,
                format!(
                    "`{name}` is not a filterable field of index `{index}`; the filterable fields are: {}",
                    names(fields, Field::filterable)
                ),
            )
        })
}

/// The field `sortBy` names, or the error listing the sortable ones.
pub fn sort_field<'a>(
    fields: &'a [Field],
    index: &str,
    name: &str,
) -> Result<&'a Field, ToolError> {
    fields
        .iter()
        .find(|f| f.name == name && f.sortable())
        .ok_or_else(|| {
            ToolError::field(
                "sortBy",
                format!(
                    "`{name}` is not a sortable field of index `{index}`; the sortable fields are: {}",
                    names(fields, Field::sortable)
                ),
            )
        })
}

/// Parses a `filters` object against the index's fields.
pub fn parse(
    filters: &Map<String, Value>,
    fields: &[Field],
    index: &str,
    label: &str,
) -> Result<Vec<Cond>, ToolError> {
    let mut conds = Vec::new();
    let mut count = 0usize;
    for (name, value) in filters {
        let field = filter_field(fields, index, name, label)?;
        let at = format!("{label}.{name}");
        let ops = parse_value(field, value, &at)?;
        for op in ops {
            count += match &op {
                Op::In(v) | Op::Nin(v) => v.len(),
                _ => 1,
            };
            conds.push(Cond {
                field: field.clone(),
                op,
            });
        }
    }
    if count > MAX_VALUES {
        return Err(ToolError::field(
            label,
            format!("holds {count} values; at most {MAX_VALUES} are allowed in one search"),
        ));
    }
    Ok(conds)
}

fn parse_value(field: &Field, value: &Value, at: &str) -> Result<Vec<Op>, ToolError> {
    match value {
        Value::Null => Ok(vec![Op::Null(true)]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ToolError::field(
                    at,
                    "an empty list matches nothing; send at least one value",
                ));
            }
            Ok(vec![Op::In(list(field, items, at)?)])
        }
        Value::Object(ops) => {
            if ops.is_empty() {
                return Err(ToolError::field(
                    at,
                    "an empty condition object; use operators such as $gte or $in",
                ));
            }
            ops.iter()
                .map(|(op, arg)| operator(field, op, arg, &format!("{at}.{op}")))
                .collect()
        }
        Value::String(text) => string_form(field, text, at).map(|op| vec![op]),
        _ => plain(field, value, at).map(|op| vec![op]),
    }
}

fn list(field: &Field, items: &[Value], at: &str) -> Result<Vec<Scalar>, ToolError> {
    if items.len() > MAX_VALUES {
        return Err(ToolError::field(at, format!("at most {MAX_VALUES} values")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| scalar(field, v, &format!("{at}[{i}]")))
        .collect()
}

/// A plain value: equality in the field's sense (text: partial match; list fields: contains).
fn plain(field: &Field, value: &Value, at: &str) -> Result<Op, ToolError> {
    let value = scalar(field, value, at)?;
    Ok(match field.kind {
        Kind::IdList | Kind::TextList => Op::In(vec![value]),
        _ => Op::Eq(value),
    })
}

/// The conventions' string forms: `null`, `$lt-…`, `$btw-…-…`, `$today`, or a plain value.
fn string_form(field: &Field, text: &str, at: &str) -> Result<Op, ToolError> {
    if text == "null" {
        return Ok(Op::Null(true));
    }
    let ranged = matches!(
        field.kind,
        Kind::Integer | Kind::Number { .. } | Kind::Date | Kind::DateTime
    );
    if ranged {
        if let Some(op) = date_special(field, text)? {
            return Ok(op);
        }
        for (prefix, make) in [
            ("$lte-", Op::Lte as fn(Scalar) -> Op),
            ("$lt-", Op::Lt),
            ("$gte-", Op::Gte),
            ("$gt-", Op::Gt),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                return Ok(make(scalar(field, &Value::String(rest.into()), at)?));
            }
        }
        if let Some(rest) = text.strip_prefix("$btw-") {
            // Dates hold dashes too: try every split until both sides parse.
            for (i, _) in rest.match_indices('-') {
                let (a, b) = (&rest[..i], &rest[i + 1..]);
                if let (Ok(a), Ok(b)) = (
                    scalar(field, &Value::String(a.into()), at),
                    scalar(field, &Value::String(b.into()), at),
                ) {
                    return Ok(Op::Btw(a, b));
                }
            }
            return Err(ToolError::field(
                at,
                format!("`{text}` is not a range; write $btw-<min>-<max>, e.g. $btw-10-20"),
            ));
        }
    }
    if text.starts_with('$') {
        return Err(ToolError::field(
            at,
            format!(
                "`{text}` is not a value or form this {} field takes; {}",
                field.kind.as_str(),
                if ranged {
                    "the forms are $lt-<v>, $lte-<v>, $gt-<v>, $gte-<v>, $btw-<min>-<max>, $today, $week, $month and null"
                } else {
                    "write a plain value, a list, null, or an object of operators"
                }
            ),
        ));
    }
    plain(field, &Value::String(text.into()), at)
}

/// `$today`, `$week` (the current ISO week) and `$month` (the current month), in UTC.
fn date_special(field: &Field, text: &str) -> Result<Option<Op>, ToolError> {
    if !matches!(field.kind, Kind::Date | Kind::DateTime) {
        return Ok(None);
    }
    let today = Utc::now().date_naive();
    let (from, to) = match text {
        "$today" => (today, today + Duration::days(1)),
        "$week" => {
            let start = today - Duration::days(today.weekday().num_days_from_monday() as i64);
            (start, start + Duration::days(7))
        }
        "$month" => {
            let start = today.with_day(1).unwrap_or(today);
            let next = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
            }
            .unwrap_or(start);
            (start, next)
        }
        _ => return Ok(None),
    };
    Ok(Some(match field.kind {
        Kind::Date => Op::Btw(Scalar::Date(from), Scalar::Date(to - Duration::days(1))),
        _ => Op::Btw(
            Scalar::Time(from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()),
            Scalar::Time(
                (to.and_hms_opt(0, 0, 0).unwrap_or_default() - Duration::microseconds(1)).and_utc(),
            ),
        ),
    }))
}

fn operator(field: &Field, op: &str, arg: &Value, at: &str) -> Result<Op, ToolError> {
    if !field.kind.operators().contains(&op) {
        return Err(ToolError::field(
            at,
            format!(
                "`{op}` is not an operator for the {} field `{}`; its operators are: {}",
                field.kind.as_str(),
                field.name,
                field.kind.operators().join(", ")
            ),
        ));
    }
    let one = |v: &Value| scalar(field, v, at);
    let many = |v: &Value| match v {
        Value::Array(items) if !items.is_empty() => list(field, items, at),
        Value::Array(_) => Err(ToolError::field(at, "needs at least one value")),
        other => Ok(vec![one(other)?]),
    };
    Ok(match op {
        "$eq" => Op::Eq(one(arg)?),
        "$ne" => Op::Ne(one(arg)?),
        "$in" => Op::In(many(arg)?),
        "$nin" => Op::Nin(many(arg)?),
        "$lt" => Op::Lt(one(arg)?),
        "$lte" => Op::Lte(one(arg)?),
        "$gt" => Op::Gt(one(arg)?),
        "$gte" => Op::Gte(one(arg)?),
        "$btw" => match arg {
            Value::Array(pair) if pair.len() == 2 => Op::Btw(one(&pair[0])?, one(&pair[1])?),
            _ => {
                return Err(ToolError::field(
                    at,
                    "takes a list of two values, [min, max]",
                ))
            }
        },
        "$like" => match arg {
            Value::String(p) if !p.is_empty() && p.chars().count() <= 200 => Op::Like(p.clone()),
            _ => {
                return Err(ToolError::field(
                    at,
                    "takes a pattern of 1 to 200 characters, * as the wildcard",
                ))
            }
        },
        "$null" => match arg {
            Value::Bool(b) => Op::Null(*b),
            _ => {
                return Err(ToolError::field(
                    at,
                    "takes true (is null) or false (is not null)",
                ))
            }
        },
        _ => unreachable!("operators are checked above"),
    })
}

/// One value of the field's type.
fn scalar(field: &Field, value: &Value, at: &str) -> Result<Scalar, ToolError> {
    let text = match value {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    };
    let wrong =
        |what: &str| ToolError::field(at, format!("must be {what} for the field `{}`", field.name));
    match &field.kind {
        Kind::Text | Kind::TextList => match value {
            Value::String(s) if s.chars().count() <= 500 => Ok(Scalar::Text(s.clone())),
            Value::Number(n) => Ok(Scalar::Text(n.to_string())),
            _ => Err(wrong("a text of at most 500 characters")),
        },
        Kind::Id | Kind::IdList => text
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .map(Scalar::Id)
            .ok_or_else(|| wrong("an id (a UUID such as 0b6c1e0e-8c9d-4a51-9d3e-1f2a3b4c5d6e)")),
        Kind::Enum(values) => text
            .and_then(|s| values.iter().find(|v| v.eq_ignore_ascii_case(s.trim())))
            .map(|v| Scalar::Text(v.clone()))
            .ok_or_else(|| wrong(&format!("one of: {}", values.join(", ")))),
        Kind::Bool => match value {
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            Value::String(s) if s == "true" => Ok(Scalar::Bool(true)),
            Value::String(s) if s == "false" => Ok(Scalar::Bool(false)),
            _ => Err(wrong("true or false")),
        },
        Kind::Integer => match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .map(Scalar::Int)
        .ok_or_else(|| wrong("a whole number")),
        Kind::Number { cents: true } => {
            let raw = match value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                _ => return Err(wrong("an amount such as 120.50")),
            };
            Money::parse(&raw)
                .map(|m| Scalar::Int(m.cents()))
                .map_err(|why| wrong(&format!("an amount such as 120.50 ({why})")))
        }
        Kind::Number { cents: false } => match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|f| f.is_finite())
        .map(Scalar::Float)
        .ok_or_else(|| wrong("a number")),
        Kind::Date => text
            .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
            .map(Scalar::Date)
            .ok_or_else(|| wrong("a date such as 2026-07-01")),
        Kind::DateTime => text
            .and_then(|s| {
                let s = s.trim();
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
                    .or_else(|| {
                        NaiveDate::parse_from_str(s, "%Y-%m-%d")
                            .ok()
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .map(|t| t.and_utc())
                    })
            })
            .map(Scalar::Time)
            .ok_or_else(|| wrong("a time such as 2026-07-01T12:00:00Z (or a date)")),
        Kind::Nested => Err(wrong("nothing: nested fields are not filterable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str, kind: Kind) -> Field {
        Field {
            name: name.into(),
            column: Some(name.into()),
            kind,
            nullable: true,
            searchable: false,
            description: None,
        }
    }

    fn fields() -> Vec<Field> {
        vec![
            field("title", Kind::Text),
            field("price", Kind::Number { cents: true }),
            field("checkIn", Kind::Date),
            field("status", Kind::Enum(vec!["pending".into(), "paid".into()])),
        ]
    }

    fn run(filters: Value) -> Result<Vec<Op>, ToolError> {
        parse(filters.as_object().unwrap(), &fields(), "x", "filters")
            .map(|c| c.into_iter().map(|c| c.op).collect())
    }

    #[test]
    fn the_conventions_forms_and_operators_parse() {
        assert_eq!(
            run(json!({"price": "$btw-10-20.5"})).unwrap(),
            vec![Op::Btw(Scalar::Int(1000), Scalar::Int(2050))]
        );
        let d = |s| Scalar::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(
            run(json!({"checkIn": "$btw-2026-01-01-2026-02-01"})).unwrap(),
            vec![Op::Btw(d("2026-01-01"), d("2026-02-01"))]
        );
        assert_eq!(
            run(json!({"status": ["PAID"], "title": null})).unwrap(),
            vec![Op::In(vec![Scalar::Text("paid".into())]), Op::Null(true)]
        );
        assert_eq!(
            run(json!({"price": {"$gte": 5, "$lt": "7"}})).unwrap(),
            vec![Op::Gte(Scalar::Int(500)), Op::Lt(Scalar::Int(700))]
        );
    }

    #[test]
    fn bad_filters_name_the_field_and_the_valid_choices() {
        let err = run(json!({"nope": 1})).unwrap_err();
        assert!(
            err.message.contains("title, price, checkIn, status"),
            "{}",
            err.message
        );
        let err = run(json!({"title": {"$gt": "a"}})).unwrap_err();
        assert!(err.message.contains("$like"), "{}", err.message);
        let err = run(json!({"status": "shipped"})).unwrap_err();
        assert!(err.message.contains("pending, paid"), "{}", err.message);
        let err = run(json!({"checkIn": "$yesterday"})).unwrap_err();
        assert!(err.message.contains("$today"), "{}", err.message);
    }
}
