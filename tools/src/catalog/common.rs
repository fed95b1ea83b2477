//! What the catalog's four object kinds share: who may see and manage a listing (and therefore
//! its calendar entries and texts), generic load / soft-delete / version checks, and the spec's
//! range filters over amounts and dates.

use chrono::{Days, Months, NaiveDate};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::money::Money;
use crate::types::Filter;

/// The access-relevant facts of a listing.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ListingAccess {
    /// The listing's id.
    pub id: Uuid,
    /// Its host (owner).
    pub host_id: Uuid,
    /// Whether guests can see it.
    pub is_published: bool,
}

impl ListingAccess {
    /// Whether the caller is the host or an admin.
    pub fn managed_by(&self, ctx: &Ctx) -> bool {
        ctx.is_admin() || ctx.user_id() == Some(self.host_id)
    }
    /// Whether the caller may see it: published listings are public, drafts only for host/admin.
    pub fn visible_to(&self, ctx: &Ctx) -> bool {
        self.is_published || self.managed_by(ctx)
    }
}

/// Loads an active listing the caller may see (a hidden draft is "not found", like a missing id).
pub async fn visible_listing(ctx: &Ctx, id: Uuid, lock: bool) -> Result<ListingAccess, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT id, host_id, is_published FROM catalog.listings WHERE id = $1 AND is_active{}",
        if lock { " FOR NO KEY UPDATE" } else { "" }
    );
    let listing: Option<ListingAccess> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
    listing
        .filter(|l| l.visible_to(ctx))
        .ok_or_else(|| ToolError::not_found("listing"))
}

/// Takes the listing's row lock (`FOR NO KEY UPDATE`): the one lock order for every write that adds
/// holds on a listing's nights (host blocks, bookings). Without it, calls that queue on each
/// other's uncommitted holds in the exclusion constraints wake together when the one they waited
/// for gives up, and deadlock. The lock does not block foreign-key checks of other rows.
pub async fn lock_listing(ctx: &Ctx, id: Uuid) -> Result<(), ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query("SELECT 1 FROM catalog.listings WHERE id = $1 FOR NO KEY UPDATE")
        .bind(id)
        .fetch_optional(&mut *db)
        .await?;
    Ok(())
}

/// Loads a listing the caller manages: 404 when they cannot even see it, 403 when they can see it
/// but are neither its host nor an admin.
pub async fn managed_listing(ctx: &Ctx, id: Uuid, lock: bool) -> Result<ListingAccess, ToolError> {
    let listing = visible_listing(ctx, id, lock).await?;
    if !listing.managed_by(ctx) {
        return Err(ToolError::forbidden(
            "only the listing's host or an admin may change it or its calendar and texts",
        ));
    }
    Ok(listing)
}

/// Appends the listing visibility rule for alias `l`: active, and published unless the caller is
/// its host or an admin.
pub fn push_visible(qb: &mut QueryBuilder<'_, Postgres>, ctx: &Ctx, l: &str) {
    qb.push(format!(" AND {l}.is_active"));
    if ctx.is_admin() {
        return;
    }
    match ctx.user_id() {
        Some(user) => {
            qb.push(format!(" AND ({l}.is_published OR {l}.host_id = "));
            qb.push_bind(user);
            qb.push(")");
        }
        None => {
            qb.push(format!(" AND {l}.is_published"));
        }
    }
}

/// Appends "the listing in `column` is visible to the caller" for rows that belong to a listing.
pub fn push_listing_visible(qb: &mut QueryBuilder<'_, Postgres>, ctx: &Ctx, column: &str) {
    qb.push(format!(
        " AND EXISTS (SELECT 1 FROM catalog.listings vl WHERE vl.id = {column}"
    ));
    push_visible(qb, ctx, "vl");
    qb.push(")");
}

/// Loads one active row of `table` by id, optionally locked; `what` names it in the 404.
pub async fn load_active<T>(
    ctx: &Ctx,
    table: &str,
    columns: &str,
    id: Uuid,
    lock: bool,
    what: &str,
) -> Result<T, ToolError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE id = $1 AND is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found(what))
}

/// A row that belongs to a listing (calendar entries, locale texts) and shares its visibility.
pub trait OfListing {
    /// The owning listing.
    fn listing_id(&self) -> Uuid;
}

/// Loads an active child row of a listing the caller may see; otherwise "`what` not found".
pub async fn load_visible_child<T>(
    ctx: &Ctx,
    (table, columns): (&str, &str),
    id: Uuid,
    lock: bool,
    what: &str,
) -> Result<T, ToolError>
where
    T: OfListing + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let row: T = load_active(ctx, table, columns, id, lock, what).await?;
    visible_listing(ctx, row.listing_id(), false)
        .await
        .map_err(|_| ToolError::not_found(what))?;
    Ok(row)
}

/// Loads (and locks) a child row the caller may change: its listing's host or an admin.
pub async fn load_managed_child<T>(
    ctx: &Ctx,
    table: (&str, &str),
    id: Uuid,
    what: &str,
) -> Result<T, ToolError>
where
    T: OfListing + for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let row: T = load_visible_child(ctx, table, id, true, what).await?;
    managed_listing(ctx, row.listing_id(), false).await?;
    Ok(row)
}

/// Soft-deletes one row of `table` and returns its last state.
pub async fn soft_delete<T>(ctx: &Ctx, table: &str, columns: &str, id: Uuid) -> Result<T, ToolError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE {table} SET is_active = false, record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {columns}"
    );
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut *db).await?)
}

/// One value of a numeric or date filter: exact, or a `$lt-`/`$lte-`/`$gt-`/`$gte-`/`$btw-a-b`
/// range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound<T> {
    /// `= v`
    Eq(T),
    /// `< v`
    Lt(T),
    /// `<= v`
    Lte(T),
    /// `> v`
    Gt(T),
    /// `>= v`
    Gte(T),
    /// `BETWEEN a AND b`
    Btw(T, T),
}

impl<T> Bound<T> {
    /// Parses a filter value with `parse` for the operands (`$btw-` tries every split point, so
    /// operands may contain `-` themselves, as dates do).
    pub fn parse(value: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Bound<T>> {
        type Make<T> = fn(T) -> Bound<T>;
        let ops: [(&str, Make<T>); 4] = [
            ("$lte-", Bound::Lte),
            ("$lt-", Bound::Lt),
            ("$gte-", Bound::Gte),
            ("$gt-", Bound::Gt),
        ];
        for (prefix, make) in ops {
            if let Some(rest) = value.strip_prefix(prefix) {
                return parse(rest).map(make);
            }
        }
        if let Some(rest) = value.strip_prefix("$btw-") {
            return rest
                .match_indices('-')
                .find_map(|(i, _)| Some(Bound::Btw(parse(&rest[..i])?, parse(&rest[i + 1..])?)));
        }
        parse(value).map(Bound::Eq)
    }

    /// Appends `column <op> $n` for this bound.
    pub fn push<'a>(self, qb: &mut QueryBuilder<'a, Postgres>, column: &str)
    where
        T: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send,
    {
        let (op, v, upper) = match self {
            Bound::Eq(v) => ("=", v, None),
            Bound::Lt(v) => ("<", v, None),
            Bound::Lte(v) => ("<=", v, None),
            Bound::Gt(v) => (">", v, None),
            Bound::Gte(v) => (">=", v, None),
            Bound::Btw(a, b) => ("BETWEEN", a, Some(b)),
        };
        qb.push(format!("{column} {op} "));
        qb.push_bind(v);
        if let Some(b) = upper {
            qb.push(" AND ");
            qb.push_bind(b);
        }
    }
}

/// Adds `AND (… OR …)` over a filter's values, where `null` is `column IS NULL` and `term`
/// renders every other value (or refuses it).
pub fn any_of<'a>(
    qb: &mut QueryBuilder<'a, Postgres>,
    filter: Option<&Filter>,
    column: &str,
    mut term: impl FnMut(&mut QueryBuilder<'a, Postgres>, &str) -> Result<(), ToolError>,
) -> Result<(), ToolError> {
    let values = filter.map(Filter::values).unwrap_or_default();
    for (i, value) in values.iter().enumerate() {
        qb.push(if i == 0 { " AND (" } else { " OR " });
        match *value {
            "null" => {
                qb.push(format!("{column} IS NULL"));
            }
            v => term(qb, v)?,
        }
    }
    if !values.is_empty() {
        qb.push(")");
    }
    Ok(())
}

/// Adds an amount filter (`pricePerNight=100`, `$gte-100`, `$btw-50-120.5`…) on a cents column.
pub fn money_filter(
    qb: &mut QueryBuilder<'_, Postgres>,
    column: &str,
    field: &str,
    filter: Option<&Filter>,
) -> Result<(), ToolError> {
    any_of(qb, filter, column, |qb, value| {
        let bound =
            Bound::parse(value, |v| Money::parse(v).ok().map(Money::cents)).ok_or_else(|| {
                ToolError::field(
                    field,
                    format!(
                        "`{value}` is not an amount or a range such as $gte-100 or $btw-50-120"
                    ),
                )
            })?;
        bound.push(qb, column);
        Ok(())
    })
}

/// Adds a date filter over entries covering `[start, end)`: an exact date or `$today` matches the
/// entries covering that night; `$week`/`$month` those overlapping the next 7 days / month;
/// `$lweek` the past 7 days; `$ltoday` those over before today; `$lin-<date>` those covering the
/// date; `$leq-`, `$lt-`, `$lte-`, `$gt-`, `$gte-` and `$btw-a-b` compare the first night.
pub fn date_filter(
    qb: &mut QueryBuilder<'_, Postgres>,
    start: &str,
    end: &str,
    field: &str,
    filter: Option<&Filter>,
    today: NaiveDate,
) -> Result<(), ToolError> {
    let parse = |v: &str| v.parse::<NaiveDate>().ok();
    any_of(qb, filter, start, |qb, value| {
        let window = |from: NaiveDate, to: Option<NaiveDate>| to.map(|to| (from, to));
        let range = match value {
            "$today" => window(today, today.succ_opt()),
            "$week" => window(today, today.checked_add_days(Days::new(7))),
            "$month" => window(today, today.checked_add_months(Months::new(1))),
            "$lweek" => today
                .checked_sub_days(Days::new(7))
                .map(|from| (from, today)),
            "$ltoday" => {
                qb.push(format!("{end} <= "));
                qb.push_bind(today);
                return Ok(());
            }
            v => v
                .strip_prefix("$lin-")
                .and_then(parse)
                .and_then(|d| window(d, d.succ_opt())),
        };
        if let Some((from, to)) = range {
            qb.push(format!("({start} < "));
            qb.push_bind(to);
            qb.push(format!(" AND {end} > "));
            qb.push_bind(from);
            qb.push(")");
            return Ok(());
        }
        let value = value.replacen("$leq-", "$lte-", 1);
        match Bound::parse(&value, parse) {
            Some(Bound::Eq(d)) => {
                qb.push(format!("({start} <= "));
                qb.push_bind(d);
                qb.push(format!(" AND {end} > "));
                qb.push_bind(d);
                qb.push(")");
            }
            Some(bound) => bound.push(qb, start),
            None => {
                return Err(ToolError::field(
                    field,
                    format!("`{value}` is not a date (YYYY-MM-DD), a range such as $gte-2030-01-01, or one of $today, $week, $month"),
                ))
            }
        }
        Ok(())
    })
}

/// Today's date (UTC), the reference for "in the past" and the date filter specials.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(v: &str) -> Option<NaiveDate> {
        v.parse().ok()
    }

    #[test]
    fn bounds_parse_amounts_and_dates() {
        let cents = |v: &str| Money::parse(v).ok().map(Money::cents);
        assert_eq!(Bound::parse("$gte-100", cents), Some(Bound::Gte(10_000)));
        assert_eq!(Bound::parse("$lt-9.5", cents), Some(Bound::Lt(950)));
        assert_eq!(
            Bound::parse("$btw-50-120.5", cents),
            Some(Bound::Btw(5_000, 12_050))
        );
        assert_eq!(Bound::parse("80", cents), Some(Bound::Eq(8_000)));
        assert_eq!(Bound::parse("$gte-x", cents), None);
        assert_eq!(
            Bound::parse("$btw-2030-01-01-2030-02-01", date),
            Some(Bound::Btw(
                date("2030-01-01").unwrap(),
                date("2030-02-01").unwrap()
            ))
        );
    }

    #[test]
    fn date_filters_render_windows() {
        let mut qb = QueryBuilder::<Postgres>::new("WHERE TRUE");
        let today = date("2030-01-10").unwrap();
        let filter = Filter::Many(vec!["$today".into(), "2030-02-01".into(), "null".into()]);
        date_filter(
            &mut qb,
            "c.date",
            "c.end_date",
            "date",
            Some(&filter),
            today,
        )
        .unwrap();
        assert_eq!(
            qb.sql(),
            "WHERE TRUE AND ((c.date < $1 AND c.end_date > $2) OR (c.date <= $3 AND c.end_date > $4) OR c.date IS NULL)"
        );
        let bad = Filter::One("tomorrow".into());
        let err = date_filter(&mut qb, "c.date", "c.end_date", "date", Some(&bad), today);
        assert_eq!(err.unwrap_err().field.as_deref(), Some("date"));
    }
}
