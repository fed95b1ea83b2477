//! Small helpers that turn the spec's list filters into SQL with bound parameters.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::error::ToolError;
use crate::types::{Filter, Page, Paging};

/// Adds `AND (<term v1> OR <term v2> …)` for a filter's values, where the value `null` becomes
/// `column IS NULL` and every other value is rendered by `term`.
fn or_group<'a>(
    qb: &mut QueryBuilder<'a, Postgres>,
    column: &str,
    filter: Option<&Filter>,
    mut term: impl FnMut(&mut QueryBuilder<'a, Postgres>, &str) -> Result<(), ToolError>,
) -> Result<(), ToolError> {
    let values = filter.map(Filter::values).unwrap_or_default();
    if values.is_empty() {
        return Ok(());
    }
    qb.push(" AND (");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        if *value == "null" {
            qb.push(format!("{column} IS NULL"));
        } else {
            term(qb, value)?;
        }
    }
    qb.push(")");
    Ok(())
}

/// Adds a string filter: partial, case-insensitive, values OR-ed; `null` matches empty.
pub fn text_filter(qb: &mut QueryBuilder<'_, Postgres>, column: &str, filter: Option<&Filter>) {
    let _ = or_group(qb, column, filter, |qb, value| {
        qb.push(format!("{column} ILIKE "));
        qb.push_bind(format!("%{}%", escape_like(value)));
        Ok(())
    });
}

/// Adds an exact id filter; ids that do not parse are an error naming `field`.
pub fn id_filter(
    qb: &mut QueryBuilder<'_, Postgres>,
    column: &str,
    field: &str,
    filter: Option<&Filter>,
) -> Result<(), ToolError> {
    or_group(qb, column, filter, |qb, value| {
        let id = Uuid::parse_str(value).map_err(|_| {
            ToolError::field_said(
                field,
                format!("`{field}` must be ids (UUIDs such as 3f2b8c4e-9d1a-4c55-8e0f-2a6b7c8d9e01); got \"{value}\""),
            )
        })?;
        qb.push(format!("{column} = "));
        qb.push_bind(id);
        Ok(())
    })
}

/// Adds a case-insensitive exact match on an enum-like text column.
pub fn enum_filter(qb: &mut QueryBuilder<'_, Postgres>, column: &str, filter: Option<&Filter>) {
    let _ = or_group(qb, column, filter, |qb, value| {
        qb.push(format!("lower({column}) = lower("));
        qb.push_bind(value.to_string());
        qb.push(")");
        Ok(())
    });
}

/// Adds a date filter in the spec's syntax: exact `YYYY-MM-DD` values, `$today`, and the ranges
/// `$gte-<date>`, `$gt-<date>`, `$lte-<date>`, `$lt-<date>`; anything else is an error naming `field`.
pub fn date_filter(
    qb: &mut QueryBuilder<'_, Postgres>,
    column: &str,
    field: &str,
    filter: Option<&Filter>,
) -> Result<(), ToolError> {
    or_group(qb, column, filter, |qb, value| {
        let (op, date) = match value {
            "$today" => ("=", chrono::Utc::now().date_naive().to_string()),
            v => [
                ("$gte-", ">="),
                ("$gt-", ">"),
                ("$lte-", "<="),
                ("$lt-", "<"),
            ]
            .iter()
            .find_map(|(prefix, op)| v.strip_prefix(prefix).map(|d| (*op, d.to_string())))
            .unwrap_or(("=", v.to_string())),
        };
        let date: chrono::NaiveDate = date.parse().map_err(|_| {
            ToolError::field_said(
                field,
                format!(
                    "`{field}` must be dates like 2027-03-10, $today, or ranges like $gte-2027-03-10, \
                     $gt-…, $lte-…, $lt-…; got \"{value}\""
                ),
            )
        })?;
        qb.push(format!("{column} {op} "));
        qb.push_bind(date);
        Ok(())
    })
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A row plus the `count(*) OVER () AS total_count` column list queries add.
pub struct Counted<T> {
    /// The row.
    pub row: T,
    /// Rows matching the filters, ignoring the page.
    pub total: i64,
}

impl<'r, T: FromRow<'r, PgRow>> FromRow<'r, PgRow> for Counted<T> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Counted {
            row: T::from_row(row)?,
            total: row.try_get("total_count")?,
        })
    }
}

/// Starts a list query: `SELECT {columns}, count(*) OVER () AS total_count FROM {from}`, where
/// `from` names the table(s) and the first `WHERE` condition; filters are pushed after it and
/// [`fetch_page`] runs it.
pub fn list_select<'a>(columns: &str, from: &str) -> QueryBuilder<'a, Postgres> {
    QueryBuilder::new(format!(
        "SELECT {columns}, count(*) OVER () AS total_count FROM {from}"
    ))
}

/// Runs a list query (which must select `count(*) OVER () AS total_count`), appending the order
/// and the page window; returns the rows and the response's paging block.
pub async fn fetch_page<T>(
    db: &mut PgConnection,
    mut qb: QueryBuilder<'_, Postgres>,
    order_by: &str,
    page: Page,
) -> Result<(Vec<T>, Paging), ToolError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    qb.push(" ORDER BY ");
    qb.push(order_by);
    qb.push(" LIMIT ");
    qb.push_bind(page.limit());
    qb.push(" OFFSET ");
    qb.push_bind(page.offset());
    let rows: Vec<Counted<T>> = qb.build_query_as().fetch_all(db).await?;
    // A page past the end has no row to carry the window count; it reports zero matches.
    let total = rows.first().map(|r| r.total).unwrap_or(0);
    Ok((
        rows.into_iter().map(|r| r.row).collect(),
        page.paging(total),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }

    #[test]
    fn filters_render_or_groups() {
        let mut qb = QueryBuilder::<Postgres>::new("SELECT 1 WHERE TRUE");
        text_filter(
            &mut qb,
            "email",
            Some(&Filter::Many(vec!["a".into(), "null".into()])),
        );
        assert_eq!(
            qb.sql(),
            "SELECT 1 WHERE TRUE AND (email ILIKE $1 OR email IS NULL)"
        );
        let mut qb = QueryBuilder::<Postgres>::new("");
        assert!(id_filter(
            &mut qb,
            "user_id",
            "userId",
            Some(&Filter::One("nope".into()))
        )
        .is_err());
    }
}
