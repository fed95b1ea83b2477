//! The query layer: [`Engine`] is what a search store must do (list, count, get one, each under
//! the index's visibility rule); [`Postgres`] is the one built, querying the owning tables
//! directly (full-text `tsvector` and `pg_trgm` expression indexes, see `0015_search.sql`).
//! Every user value is a bound parameter; only identifiers taken from the index declaration
//! (never from the request) are written into the SQL text.

use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::{Postgres as Pg, QueryBuilder, Row};
use uuid::Uuid;

use super::filters::{Cond, Op, Scalar};
use super::index::{Index, Kind};
use crate::context::Ctx;
use crate::error::ToolError;

/// An engine-neutral search: conditions, free text, order and page.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// ANDed conditions.
    pub conds: Vec<Cond>,
    /// Free text (already trimmed; empty = none).
    pub q: Option<String>,
    /// Sort column and direction (descending when true); `None` = the index default.
    pub sort: Option<(String, bool)>,
    /// Rows to return.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
    /// Take the page the way the page-first query replaced (build every matching document, then
    /// sort and cut): only for the test that checks both give the same page.
    #[doc(hidden)]
    pub reference: bool,
}

/// A search store behind the index routes.
pub trait Engine: Send + Sync {
    /// One page of matching documents the caller may see.
    fn list<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Value>, ToolError>>;
    /// How many documents match (and may be seen).
    fn count<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<i64, ToolError>>;
    /// The document `id`, if it exists and the caller may see it.
    fn get<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Value>, ToolError>>;
}

/// The Postgres engine: each search is one statement over the owning tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postgres;

/// The prefix-matching tsquery text for `q`: its words (letters and digits only, so the text is
/// always valid tsquery syntax), each as a prefix, ANDed; `None` when `q` has no word.
pub fn tsquery(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| format!("{}:*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" & "))
}

/// `WITH p AS (caller) SELECT <what> FROM (<index select>) d WHERE <visibility> <conds> <q>`.
fn base(
    ctx: &Ctx,
    index: &Index,
    what: &str,
    query: Option<&Query>,
) -> Result<QueryBuilder<'static, Pg>, ToolError> {
    let mut qb = with_caller(ctx);
    push_matching(&mut qb, ctx, index, what, query)?;
    Ok(qb)
}

/// `WITH p AS (…)`: the caller's id and admin flag, which index selects and rules read as `p`.
fn with_caller(ctx: &Ctx) -> QueryBuilder<'static, Pg> {
    let mut qb = QueryBuilder::new("WITH p AS (SELECT ");
    qb.push_bind(ctx.user_id());
    qb.push("::uuid AS uid, ");
    qb.push_bind(ctx.is_admin());
    qb.push("::boolean AS admin)");
    qb
}

/// ` SELECT what FROM (the index's select) d WHERE …`: the documents the caller may see that
/// match `query`'s conditions and free text.
fn push_matching(
    qb: &mut QueryBuilder<'static, Pg>,
    ctx: &Ctx,
    index: &Index,
    what: &str,
    query: Option<&Query>,
) -> Result<(), ToolError> {
    qb.push(" SELECT ");
    qb.push(what);
    qb.push(" FROM (");
    qb.push(index.select.as_str());
    qb.push(") d WHERE true");
    visibility(qb, ctx, index)?;
    if let Some(query) = query {
        for cond in &query.conds {
            push_cond(qb, cond);
        }
        if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
            push_text(qb, index, q);
        }
    }
    Ok(())
}

/// The index's rule: `always`, then (unless admin) `shown` and public rows or the caller's own.
fn visibility(
    qb: &mut QueryBuilder<'static, Pg>,
    ctx: &Ctx,
    index: &Index,
) -> Result<(), ToolError> {
    let seen = index.seen;
    if seen.login {
        ctx.caller()?;
    }
    if let Some(always) = seen.always {
        qb.push(" AND (");
        qb.push(always);
        qb.push(")");
    }
    if ctx.is_admin() {
        // An admin reads hidden rows as an admin, except of what they are a party to: there the
        // owning operation treats them as that party (a thread's guest or host who is an admin).
        if let (Some(shown), Some(user)) = (seen.shown, ctx.user_id()) {
            if !seen.parties.is_empty() {
                qb.push(" AND ((");
                qb.push(shown);
                qb.push(") OR NOT coalesce(false");
                for party in seen.parties {
                    qb.push(format!(" OR d.{party} = "));
                    qb.push_bind(user);
                }
                qb.push(", false))");
            }
        }
        return Ok(());
    }
    if let Some(shown) = seen.shown {
        qb.push(" AND (");
        qb.push(shown);
        qb.push(")");
    }
    qb.push(" AND (false");
    if let Some(public) = seen.public {
        qb.push(" OR (");
        qb.push(public);
        qb.push(")");
    }
    if let Some(user) = ctx.user_id() {
        for party in seen.parties {
            qb.push(format!(" OR d.{party} = "));
            qb.push_bind(user);
        }
    }
    qb.push(")");
    Ok(())
}

/// ` LIMIT … OFFSET …` of `query`'s page.
fn push_page(qb: &mut QueryBuilder<'static, Pg>, query: &Query) {
    qb.push(" LIMIT ");
    qb.push_bind(query.limit);
    qb.push(" OFFSET ");
    qb.push_bind(query.offset);
}

/// Free text: the tsvector column (prefix words), or fuzzy word similarity on names and places.
fn push_text(qb: &mut QueryBuilder<'static, Pg>, index: &Index, q: &str) {
    let Some(search) = index.search else {
        // An index without text columns matches no free text.
        qb.push(" AND false");
        return;
    };
    qb.push(" AND (");
    match tsquery(q) {
        Some(ts) => {
            qb.push(format!("d.{} @@ to_tsquery('simple', ", search.tsv));
            qb.push_bind(ts);
            qb.push(")");
        }
        None => {
            qb.push("false");
        }
    }
    if let Some(fuzzy) = search.fuzzy {
        qb.push(" OR ");
        qb.push_bind(q.to_lowercase());
        qb.push(format!(" <% d.{fuzzy}"));
    }
    qb.push(")");
}

/// Whether a search's statement is prepared once per connection and its plan reused. Searches with
/// free text run as unnamed statements, which Postgres plans at every execution with the actual
/// values: a cached generic plan cannot know that `q`'s tsquery is selective (it would compute
/// every row's tsvector instead of using the GIN index). Without free text the plan does not hinge
/// on the values, and planning a view's statement costs more than running it (≈ 5 ms for
/// `ListingDetailView`), so it is prepared; Postgres still plans the first five executions with
/// the values and keeps a custom plan when the generic one would cost more. Reads run outside a
/// transaction, so a `SET LOCAL plan_cache_mode` would not hold; this needs no session state.
fn cache_the_plan(query: Option<&Query>) -> bool {
    query.is_none_or(|q| q.q.as_deref().is_none_or(str::is_empty))
}

fn bind(qb: &mut QueryBuilder<'static, Pg>, value: &Scalar) {
    match value.clone() {
        Scalar::Text(v) => qb.push_bind(v),
        Scalar::Id(v) => qb.push_bind(v),
        Scalar::Bool(v) => qb.push_bind(v),
        Scalar::Int(v) => qb.push_bind(v),
        Scalar::Float(v) => qb.push_bind(v),
        Scalar::Date(v) => qb.push_bind(v),
        Scalar::Time(v) => qb.push_bind(v),
    };
}

/// `%text%` for a contains match, with LIKE's own characters escaped.
fn contains(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// One equality in the field's sense (text: contains, case-insensitive).
fn push_eq(qb: &mut QueryBuilder<'static, Pg>, column: &str, kind: &Kind, value: &Scalar) {
    match (kind, value) {
        (Kind::Text, Scalar::Text(text)) => {
            qb.push(format!("d.{column} ILIKE "));
            qb.push_bind(contains(text));
        }
        (Kind::DateTime, Scalar::Time(t)) => {
            qb.push(format!("d.{column} = "));
            qb.push_bind(*t);
        }
        (Kind::IdList | Kind::TextList, v) => {
            qb.push("(");
            bind(qb, v);
            qb.push(format!(" = ANY(d.{column}))"));
        }
        (_, v) => {
            qb.push(format!("d.{column} = "));
            bind(qb, v);
        }
    }
}

fn push_any(qb: &mut QueryBuilder<'static, Pg>, column: &str, kind: &Kind, values: &[Scalar]) {
    qb.push("(false");
    for value in values {
        qb.push(" OR ");
        push_eq(qb, column, kind, value);
    }
    qb.push(")");
}

fn push_cond(qb: &mut QueryBuilder<'static, Pg>, cond: &Cond) {
    let Some(column) = cond.field.column.as_deref() else {
        return;
    };
    let kind = &cond.field.kind;
    qb.push(" AND ");
    let cmp = |qb: &mut QueryBuilder<'static, Pg>, op: &str, v: &Scalar| {
        qb.push(format!("d.{column} {op} "));
        bind(qb, v);
    };
    match &cond.op {
        Op::Eq(v) => push_eq(qb, column, kind, v),
        Op::Ne(v) => {
            qb.push("NOT coalesce(");
            push_eq(qb, column, kind, v);
            qb.push(", false)");
        }
        Op::In(vs) => push_any(qb, column, kind, vs),
        Op::Nin(vs) => {
            qb.push("NOT coalesce(");
            push_any(qb, column, kind, vs);
            qb.push(", false)");
        }
        Op::Lt(v) => cmp(qb, "<", v),
        Op::Lte(v) => cmp(qb, "<=", v),
        Op::Gt(v) => cmp(qb, ">", v),
        Op::Gte(v) => cmp(qb, ">=", v),
        Op::Btw(a, b) => {
            qb.push(format!("d.{column} BETWEEN "));
            bind(qb, a);
            qb.push(" AND ");
            bind(qb, b);
        }
        Op::Like(pattern) => {
            let escaped = pattern
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
                .replace('*', "%");
            qb.push(format!("d.{column} ILIKE "));
            qb.push_bind(escaped);
        }
        Op::Null(true) => {
            qb.push(format!("d.{column} IS NULL"));
        }
        Op::Null(false) => {
            qb.push(format!("d.{column} IS NOT NULL"));
        }
    }
}

impl Engine for Postgres {
    fn list<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<Vec<Value>, ToolError>> {
        Box::pin(async move {
            // The page first: which ids, in order, from the columns the conditions and the sort
            // read (Postgres drops the select's unread columns, so a view's aggregates, briefs and
            // tsvectors are not computed for every match); then the whole documents of those ids
            // only. Same rows, same order as selecting everything and sorting.
            let (column, desc) = match &query.sort {
                Some((column, desc)) => (column.as_str(), *desc),
                None => (index.default_sort.0, index.default_sort.1),
            };
            let dir = if desc { "DESC" } else { "ASC" };
            let order = format!(" ORDER BY d.{column} {dir} NULLS LAST, d.id {dir}");
            let mut qb = with_caller(ctx);
            if query.reference {
                push_matching(&mut qb, ctx, index, "*", Some(query))?;
                qb.push(&order);
                push_page(&mut qb, query);
            } else {
                qb.push(", page AS (");
                push_matching(&mut qb, ctx, index, "d.id", Some(query))?;
                qb.push(&order);
                push_page(&mut qb, query);
                qb.push(") SELECT d.* FROM (");
                qb.push(index.select.as_str());
                qb.push(") d WHERE d.id IN (SELECT id FROM page)");
                qb.push(&order);
            }
            let mut db = ctx.db().await?;
            let rows = qb
                .build()
                .persistent(cache_the_plan(Some(query)))
                .fetch_all(&mut *db)
                .await?;
            rows.iter().map(|row| index.decode(row)).collect()
        })
    }

    fn count<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        query: &'a Query,
    ) -> BoxFuture<'a, Result<i64, ToolError>> {
        Box::pin(async move {
            let mut qb = base(ctx, index, "count(*) AS n", Some(query))?;
            let mut db = ctx.db().await?;
            let row = qb
                .build()
                .persistent(cache_the_plan(Some(query)))
                .fetch_one(&mut *db)
                .await?;
            Ok(row.try_get::<i64, _>("n")?)
        })
    }

    fn get<'a>(
        &'a self,
        ctx: &'a Ctx,
        index: &'a Index,
        id: Uuid,
    ) -> BoxFuture<'a, Result<Option<Value>, ToolError>> {
        Box::pin(async move {
            let mut qb = base(ctx, index, "*", None)?;
            qb.push(" AND d.id = ");
            qb.push_bind(id);
            let mut db = ctx.db().await?;
            let row = qb
                .build()
                .persistent(cache_the_plan(None))
                .fetch_optional(&mut *db)
                .await?;
            row.as_ref().map(|r| index.decode(r)).transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_becomes_safe_prefix_words() {
        assert_eq!(
            tsquery("Lisbon  loft!").as_deref(),
            Some("lisbon:* & loft:*")
        );
        assert_eq!(tsquery("') | !(x"), Some("x:*".into()));
        assert_eq!(tsquery("&|!"), None);
    }
}
