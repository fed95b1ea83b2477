//! Financial reports: immutable snapshots of a period's money, computed by the server from the
//! append-only payment ledger (`booking.payment_records`) — the caller names the period, never the
//! figures. Amounts are summed as integer cents in Postgres and stored as cents; a trigger refuses
//! any UPDATE or DELETE of a report.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::money::{Currency, Money};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Paging, RecordMeta, Text};

/// One currency's figures for the period (amounts in the currency's major unit).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyFigures {
    /// ISO currency of these amounts.
    pub currency: String,
    /// What guests paid (nights, cleaning, guest fees and city tax).
    pub gross_bookings: Money,
    /// The guest service fees within it.
    pub guest_fees: Money,
    /// The commission taken from hosts' payouts.
    pub host_commission: Money,
    /// The platform's revenue: guest fees plus host commission.
    pub total_revenue: Money,
    /// What is owed to hosts for these payments.
    pub total_payouts: Money,
    /// What was refunded to guests.
    pub total_refunds: Money,
    /// City tax collected.
    pub city_tax: Money,
    /// City tax per listing city.
    pub city_tax_by_location: BTreeMap<String, Money>,
    /// Payments counted.
    pub payment_count: i64,
    /// Refunds counted.
    pub refund_count: i64,
}

/// The stored form of [`CurrencyFigures`]: integer cents, never floating point.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredFigures {
    currency: String,
    gross: i64,
    guest_fees: i64,
    platform_fees: i64,
    payouts: i64,
    refunds: i64,
    city_tax: i64,
    city_tax_by_location: BTreeMap<String, i64>,
    payments: i64,
    refund_count: i64,
}

impl From<StoredFigures> for CurrencyFigures {
    fn from(s: StoredFigures) -> Self {
        let c = Money::from_cents;
        CurrencyFigures {
            currency: s.currency,
            gross_bookings: c(s.gross),
            guest_fees: c(s.guest_fees),
            host_commission: c(s.platform_fees - s.guest_fees),
            total_revenue: c(s.platform_fees),
            total_payouts: c(s.payouts),
            total_refunds: c(s.refunds),
            city_tax: c(s.city_tax),
            city_tax_by_location: s
                .city_tax_by_location
                .into_iter()
                .map(|(k, v)| (k, c(v)))
                .collect(),
            payment_count: s.payments,
            refund_count: s.refund_count,
        }
    }
}

/// A report as stored.
#[derive(sqlx::FromRow)]
struct ReportRow {
    id: Uuid,
    period: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    currency: Option<String>,
    figures: Value,
    created_by: Uuid,
    generated_at: DateTime<Utc>,
    #[sqlx(flatten)]
    meta: RecordMeta,
}

const COLUMNS: &str = "id, period, period_start, period_end, currency, figures, created_by,
    generated_at, is_active, record_version, created_at, updated_at, owner_id";

/// A financial report: one period's figures per currency.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FinancialReport {
    /// The report's id.
    pub id: Uuid,
    /// The period as asked, e.g. `2027-03`, `2027-Q1`, `2027`.
    pub period: String,
    /// First day of the period (UTC).
    pub period_start: NaiveDate,
    /// Last day of the period (UTC).
    pub period_end: NaiveDate,
    /// The currency the report was limited to (null: every currency, see byCurrency).
    pub currency: Option<String>,
    /// The platform's revenue, when the report has exactly one currency.
    pub total_revenue: Option<Money>,
    /// Payouts owed to hosts, when the report has exactly one currency.
    pub total_payouts: Option<Money>,
    /// Refunds, when the report has exactly one currency.
    pub total_refunds: Option<Money>,
    /// City tax per city, when the report has exactly one currency.
    pub city_tax_by_location: Option<BTreeMap<String, Money>>,
    /// The figures of each currency with payments in the period.
    pub by_currency: Vec<CurrencyFigures>,
    /// The admin who generated it.
    pub created_by: Uuid,
    /// When the snapshot was taken.
    pub generated_at: DateTime<Utc>,
    /// System fields; `_owner`: the admin who generated it.
    #[serde(flatten)]
    pub meta: RecordMeta,
}

impl TryFrom<ReportRow> for FinancialReport {
    type Error = ToolError;
    fn try_from(row: ReportRow) -> Result<Self, ToolError> {
        let stored: Vec<StoredFigures> =
            serde_json::from_value(row.figures).map_err(ToolError::internal)?;
        let by_currency: Vec<CurrencyFigures> = stored.into_iter().map(Into::into).collect();
        let single = match by_currency.as_slice() {
            [one] => Some(one),
            _ => None,
        };
        Ok(FinancialReport {
            id: row.id,
            period: row.period,
            period_start: row.period_start,
            period_end: row.period_end,
            currency: row.currency,
            total_revenue: single.map(|f| f.total_revenue),
            total_payouts: single.map(|f| f.total_payouts),
            total_refunds: single.map(|f| f.total_refunds),
            city_tax_by_location: single.map(|f| f.city_tax_by_location.clone()),
            by_currency,
            created_by: row.created_by,
            generated_at: row.generated_at,
            meta: row.meta,
        })
    }
}

/// Input of `createFinancialReport`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReport {
    /// The period: a year `2027`, a quarter `2027-Q1`, a month `2027-03`, a day `2027-03-10`, or
    /// a range of days `2027-03-01..2027-03-15` (inclusive), in UTC.
    pub period: Text<40>,
    /// Limit the report to one currency (default: every currency with payments).
    pub currency: Option<Currency>,
}

/// Input of `getFinancialReport`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRef {
    /// The report's id.
    pub financial_report_id: Uuid,
}

/// Input of `listFinancialReports`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportFilters {
    /// Period, partial and case-insensitive (e.g. `2027`).
    pub period: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of reports, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportList {
    /// The reports on this page.
    pub financial_reports: Vec<FinancialReport>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The financial report operations (no update, no delete: snapshots are immutable).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createFinancialReport", Service::PlatformAdmin)
            .title("Generate a financial report")
            .describe(
                "Snapshots a period's money from the payment ledger, per currency: gross bookings, guest fees, \
                 host commission, total revenue (fees plus commission), host payouts, refunds, city tax in total \
                 and by listing city, payment and refund counts. Name the period (`2027`, `2027-Q1`, `2027-03`, \
                 `2027-03-10` or `2027-03-01..2027-03-15`, UTC) and optionally a currency; the server computes \
                 every figure (sending totals is refused). The report never changes afterwards. Returns it.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/financialreports")
            .access(Access::Admin)
            .creates("financialReport")
            .handler(create_report),
        Operation::build("getFinancialReport", Service::PlatformAdmin)
            .title("Get a financial report")
            .describe("Returns one financial report snapshot by id.")
            .rest(
                Method::Get,
                "/platformadmin-api/v1/financialreports/{financialReportId}",
            )
            .access(Access::Admin)
            .reads(Action::Get, "financialReport")
            .handler(get_report),
        Operation::build("listFinancialReports", Service::PlatformAdmin)
            .title("List financial reports")
            .describe(
                "Lists financial report snapshots, newest first; filter by period (partial). Paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/financialreports")
            .access(Access::Admin)
            .reads(Action::List, "financialReports")
            .handler(list_reports),
    ]
}

/// Parses a period into its first and last day.
pub fn parse_period(text: &str) -> Result<(NaiveDate, NaiveDate), ToolError> {
    let bad = || {
        ToolError::field(
            "period",
            format!(
                "`{text}` is not a period: write a year (2027), a quarter (2027-Q1), a month (2027-03), a \
                 day (2027-03-10) or a range of days (2027-03-01..2027-03-15)"
            ),
        )
    };
    let t = text.trim();
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let month_end = |y: i32, m: u32| {
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt())
    };
    let range = if let Some((a, b)) = t.split_once("..") {
        let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
        if b < a {
            return Err(ToolError::field(
                "period",
                "the range ends before it starts",
            ));
        }
        (a, b)
    } else if let Some(d) = day(t) {
        (d, d)
    } else if let Some((y, q)) = t.split_once("-Q").or_else(|| t.split_once("-q")) {
        let y: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = q.parse().map_err(|_| bad())?;
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        let start = NaiveDate::from_ymd_opt(y, (q - 1) * 3 + 1, 1).ok_or_else(bad)?;
        (start, month_end(y, q * 3).ok_or_else(bad)?)
    } else if let Some((y, m)) = t.split_once('-') {
        let y: i32 = y.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        let start = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
        (start, month_end(y, m).ok_or_else(bad)?)
    } else {
        let y: i32 = t.parse().map_err(|_| bad())?;
        (
            NaiveDate::from_ymd_opt(y, 1, 1).ok_or_else(bad)?,
            NaiveDate::from_ymd_opt(y, 12, 31).ok_or_else(bad)?,
        )
    };
    if !(2000..=2200).contains(&range.0.year()) || !(2000..=2200).contains(&range.1.year()) {
        return Err(ToolError::field(
            "period",
            "must lie between the years 2000 and 2200",
        ));
    }
    Ok(range)
}

/// The ledger's figures per currency for `[start, end]` (UTC days), in cents, as stored JSON.
const FIGURES_SQL: &str = "
WITH p AS (
    SELECT pr.currency, pr.payment_status, pr.amount_paid, pr.refund_amount,
           COALESCE(pr.platform_fee, 0) AS platform_fee, COALESCE(pr.payout_amount_host, 0) AS payout,
           COALESCE(pr.city_tax, 0) AS city_tax, l.city,
           COALESCE(round((r.price_breakdown ->> 'serviceFee')::numeric * 100)::bigint, 0) AS guest_fee
    FROM booking.payment_records pr
    JOIN booking.reservations r ON r.id = pr.reservation_id
    JOIN catalog.listings l ON l.id = r.listing_id
    WHERE pr.is_active AND pr.payment_status IN ('paid', 'refunded')
      AND (COALESCE(pr.payment_date, pr.created_at) AT TIME ZONE 'UTC')::date BETWEEN $1 AND $2
      AND ($3::text IS NULL OR pr.currency = $3)
), per_city AS (
    SELECT currency, city, sum(city_tax)::bigint AS tax FROM p
    WHERE payment_status = 'paid' GROUP BY currency, city
)
SELECT COALESCE(jsonb_agg(jsonb_build_object(
        'currency', c.currency, 'gross', c.gross, 'guest_fees', c.guest_fees,
        'platform_fees', c.platform_fees, 'payouts', c.payouts, 'refunds', c.refunds,
        'city_tax', c.city_tax, 'payments', c.payments, 'refund_count', c.refund_count,
        'city_tax_by_location', COALESCE((SELECT jsonb_object_agg(pc.city, pc.tax) FROM per_city pc
                                          WHERE pc.currency = c.currency), '{}'))
        ORDER BY c.currency), '[]')
FROM (
    SELECT currency,
        COALESCE(sum(amount_paid) FILTER (WHERE payment_status = 'paid'), 0)::bigint AS gross,
        COALESCE(sum(guest_fee) FILTER (WHERE payment_status = 'paid'), 0)::bigint AS guest_fees,
        COALESCE(sum(platform_fee) FILTER (WHERE payment_status = 'paid'), 0)::bigint AS platform_fees,
        COALESCE(sum(payout) FILTER (WHERE payment_status = 'paid'), 0)::bigint AS payouts,
        COALESCE(sum(refund_amount) FILTER (WHERE payment_status = 'refunded'), 0)::bigint AS refunds,
        COALESCE(sum(city_tax) FILTER (WHERE payment_status = 'paid'), 0)::bigint AS city_tax,
        count(*) FILTER (WHERE payment_status = 'paid') AS payments,
        count(*) FILTER (WHERE payment_status = 'refunded') AS refund_count
    FROM p GROUP BY currency
) c";

async fn create_report(ctx: Ctx, input: NewReport) -> Result<FinancialReport, ToolError> {
    let me = ctx.caller()?.user_id;
    let (start, end) = parse_period(input.period.as_str())?;
    let currency = input.currency.as_ref().map(Currency::as_str);
    let mut db = ctx.db().await?;
    let figures: Value = sqlx::query_scalar(FIGURES_SQL)
        .bind(start)
        .bind(end)
        .bind(currency)
        .fetch_one(&mut *db)
        .await?;
    let row: ReportRow = sqlx::query_as(&format!(
        "INSERT INTO platformadmin.financial_reports (period, period_start, period_end, currency,
             figures, created_by, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
    ))
    .bind(input.period.as_str())
    .bind(start)
    .bind(end)
    .bind(currency)
    .bind(figures)
    .bind(me)
    .fetch_one(&mut *db)
    .await?;
    row.try_into()
}

async fn get_report(ctx: Ctx, input: ReportRef) -> Result<FinancialReport, ToolError> {
    let mut db = ctx.db().await?;
    let row: ReportRow = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platformadmin.financial_reports WHERE id = $1 AND is_active"
    ))
    .bind(input.financial_report_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("financial report"))?;
    row.try_into()
}

async fn list_reports(ctx: Ctx, input: ReportFilters) -> Result<ReportList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(COLUMNS, "platformadmin.financial_reports WHERE is_active");
    sql::text_filter(&mut qb, "period", input.period.as_ref());
    let mut db = ctx.db().await?;
    let (rows, paging): (Vec<ReportRow>, Paging) =
        sql::fetch_page(&mut db, qb, "generated_at DESC, id DESC", page).await?;
    let financial_reports = rows
        .into_iter()
        .map(FinancialReport::try_from)
        .collect::<Result<_, _>>()?;
    Ok(ReportList {
        financial_reports,
        paging,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_to_their_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            parse_period("2027").unwrap(),
            (d("2027-01-01"), d("2027-12-31"))
        );
        assert_eq!(
            parse_period("2027-Q1").unwrap(),
            (d("2027-01-01"), d("2027-03-31"))
        );
        assert_eq!(
            parse_period("2028-02").unwrap(),
            (d("2028-02-01"), d("2028-02-29"))
        );
        assert_eq!(
            parse_period("2027-12").unwrap(),
            (d("2027-12-01"), d("2027-12-31"))
        );
        assert_eq!(
            parse_period("2027-03-01..2027-03-15").unwrap(),
            (d("2027-03-01"), d("2027-03-15"))
        );
        for bad in ["27", "2027-13", "2027-Q5", "2027-03-15..2027-03-01", "soon"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }
}
