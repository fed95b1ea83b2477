//! Localization settings: the languages and currencies the site accepts, each setting one
//! (language, currency) pair with a validity window and a currency switch. Once at least one
//! setting is in effect, they are enforced wherever a listing, a locale text or a user names a
//! language or a currency ([`check_language`], [`check_currency`]), and a caller's
//! `Accept-Language` falls back along the supported languages in the settings' order
//! ([`language_chain`]). With no setting in effect (a fresh install) every well-formed code is
//! accepted.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::model::LanguageTag;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::money::Currency;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Paging, RecordMeta};

/// A supported language/currency pair.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LocalizationSetting {
    /// The setting's id.
    pub id: Uuid,
    /// The language (a tag such as `en` or `pt-BR`).
    pub language_code: String,
    /// The currency (ISO 4217, e.g. `EUR`).
    pub currency_code: String,
    /// Whether listings may be priced in the currency.
    pub is_currency_active: bool,
    /// Start of validity (null: always).
    pub effective_from: Option<DateTime<Utc>>,
    /// End of validity (null: open-ended).
    pub effective_to: Option<DateTime<Utc>>,
    /// Fallback order: lower comes first when a caller's languages are not supported (0 first).
    pub position: i32,
    /// Whether the setting is in effect now (inside its window).
    pub in_effect: bool,
    /// System fields; `_owner`: the admin who created it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const COLUMNS: &str = "id, language_code, currency_code, is_currency_active, effective_from,
    effective_to, position,
    ((effective_from IS NULL OR effective_from <= now()) AND (effective_to IS NULL OR effective_to > now())) AS in_effect,
    is_active, record_version, created_at, updated_at, owner_id";

/// The condition of a setting in effect now.
const IN_EFFECT: &str = "is_active AND (effective_from IS NULL OR effective_from <= now())
    AND (effective_to IS NULL OR effective_to > now())";

/// Input of `createLocalizationSetting`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSetting {
    /// The language, e.g. `en`, `de` or `pt-BR`.
    pub language_code: LanguageTag,
    /// The currency, e.g. `EUR`.
    pub currency_code: Currency,
    /// Whether listings may be priced in the currency.
    pub is_currency_active: bool,
    /// Start of validity (default: now on).
    pub effective_from: Option<DateTime<Utc>>,
    /// End of validity (default: open-ended); must be after effectiveFrom.
    pub effective_to: Option<DateTime<Utc>>,
    /// Fallback order of the language (lower first; default 0).
    #[schemars(range(min = 0, max = 1000))]
    pub position: Option<i32>,
}

/// Input of `updateLocalizationSetting`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingPatch {
    /// The setting to change.
    pub localization_setting_id: Uuid,
    /// New language.
    pub language_code: Option<LanguageTag>,
    /// New currency.
    pub currency_code: Option<Currency>,
    /// Switch the currency on or off.
    pub is_currency_active: Option<bool>,
    /// New start of validity.
    pub effective_from: Option<DateTime<Utc>>,
    /// New end of validity (set it to retire the setting).
    pub effective_to: Option<DateTime<Utc>>,
    /// New fallback order.
    #[schemars(range(min = 0, max = 1000))]
    pub position: Option<i32>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Input of `listLocalizationSettings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingFilters {
    /// Language, partial and case-insensitive.
    pub language_code: Option<Filter>,
    /// Currency, partial and case-insensitive.
    pub currency_code: Option<Filter>,
    /// Only settings whose currency is on (`true`) or off (`false`).
    pub is_currency_active: Option<bool>,
    /// Only settings in effect now (`true`) or not (`false`).
    pub in_effect: Option<bool>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of settings, in fallback order.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingList {
    /// The settings on this page.
    pub localization_settings: Vec<LocalizationSetting>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The localization operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createLocalizationSetting", Service::PlatformAdmin)
            .title("Add a supported language and currency")
            .describe(
                "Adds a supported (language, currency) pair, optionally within a validity window. Once any \
                 setting is in effect, listings may only be priced in active currencies and speak supported \
                 languages, locale texts and users' preferredLanguage must be supported languages, and callers' \
                 Accept-Language falls back along the supported languages (lowest position first). The same pair \
                 twice is refused (409). Returns the setting.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/localizationsettings")
            .access(Access::Admin)
            .creates("localizationSetting")
            .handler(create_setting),
        Operation::build("updateLocalizationSetting", Service::PlatformAdmin)
            .title("Update a localization setting")
            .describe(
                "Changes a setting's language, currency, currency switch, validity window or fallback position \
                 (retire one by setting effectiveTo). Existing listings and texts keep their codes. Returns the \
                 setting.",
            )
            .rest(
                Method::Patch,
                "/platformadmin-api/v1/localizationsettings/{localizationSettingId}",
            )
            .access(Access::Admin)
            .updates("localizationSetting")
            .handler(update_setting),
        Operation::build("listLocalizationSettings", Service::PlatformAdmin)
            .title("List supported languages and currencies")
            .describe(
                "Lists the configured (language, currency) pairs in fallback order, each with inEffect. Filter by \
                 languageCode, currencyCode (partial), isCurrencyActive and inEffect. Paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/localizationsettings")
            .access(Access::Public)
            .reads(Action::List, "localizationSettings")
            .handler(list_settings),
    ]
}

fn check_window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), ToolError> {
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            return Err(ToolError::field(
                "effectiveTo",
                "must be after effectiveFrom",
            ));
        }
    }
    Ok(())
}

const PAIR_TAKEN: &str =
    "this language and currency pair is already configured; update that setting instead";

async fn create_setting(ctx: Ctx, input: NewSetting) -> Result<LocalizationSetting, ToolError> {
    check_window(input.effective_from, input.effective_to)?;
    let me = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    sqlx::query_as(&format!(
        "INSERT INTO platformadmin.localization_settings (language_code, currency_code,
             is_currency_active, effective_from, effective_to, position, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(input.language_code.as_str())
    .bind(input.currency_code.as_str())
    .bind(input.is_currency_active)
    .bind(input.effective_from)
    .bind(input.effective_to)
    .bind(input.position.unwrap_or(0))
    .bind(me)
    .fetch_one(&mut *db)
    .await
    .map_err(|e| {
        on_constraint(
            e,
            &[("localization_pair_key", ErrorKind::Conflict, PAIR_TAKEN)],
        )
    })
}

async fn update_setting(ctx: Ctx, input: SettingPatch) -> Result<LocalizationSetting, ToolError> {
    let mut db = ctx.db().await?;
    let current: LocalizationSetting = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platformadmin.localization_settings WHERE id = $1 AND is_active FOR UPDATE"
    ))
    .bind(input.localization_setting_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("localization setting"))?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "localization setting",
    )?;
    check_window(
        input.effective_from.or(current.effective_from),
        input.effective_to.or(current.effective_to),
    )?;
    sqlx::query_as(&format!(
        "UPDATE platformadmin.localization_settings SET
             language_code = COALESCE($2, language_code), currency_code = COALESCE($3, currency_code),
             is_currency_active = COALESCE($4, is_currency_active),
             effective_from = COALESCE($5, effective_from), effective_to = COALESCE($6, effective_to),
             position = COALESCE($7, position),
             record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(current.id)
    .bind(input.language_code.as_ref().map(LanguageTag::as_str))
    .bind(input.currency_code.as_ref().map(Currency::as_str))
    .bind(input.is_currency_active)
    .bind(input.effective_from)
    .bind(input.effective_to)
    .bind(input.position)
    .fetch_one(&mut *db)
    .await
    .map_err(|e| {
        on_constraint(
            e,
            &[("localization_pair_key", ErrorKind::Conflict, PAIR_TAKEN)],
        )
    })
}

async fn list_settings(ctx: Ctx, input: SettingFilters) -> Result<SettingList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        COLUMNS,
        "platformadmin.localization_settings WHERE is_active",
    );
    sql::text_filter(&mut qb, "language_code", input.language_code.as_ref());
    sql::text_filter(&mut qb, "currency_code", input.currency_code.as_ref());
    if let Some(on) = input.is_currency_active {
        qb.push(" AND is_currency_active = ");
        qb.push_bind(on);
    }
    if let Some(now) = input.in_effect {
        qb.push(format!(" AND ({IN_EFFECT}) = "));
        qb.push_bind(now);
    }
    let mut db = ctx.db().await?;
    let (localization_settings, paging) =
        sql::fetch_page(&mut db, qb, "position, created_at, id", page).await?;
    Ok(SettingList {
        localization_settings,
        paging,
    })
}

/// What the settings in effect allow: `None` when no setting is in effect (everything goes).
struct Supported {
    /// Languages in fallback order (no duplicates).
    languages: Vec<String>,
    /// Active currencies.
    currencies: Vec<String>,
}

async fn supported(ctx: &Ctx) -> Result<Option<Supported>, ToolError> {
    let rows: Vec<(String, String, bool)> = {
        let mut db = ctx.db().await?;
        sqlx::query_as(&format!(
            "SELECT language_code, currency_code, is_currency_active
             FROM platformadmin.localization_settings WHERE {IN_EFFECT}
             ORDER BY position, created_at, id"
        ))
        .fetch_all(&mut *db)
        .await?
    };
    if rows.is_empty() {
        return Ok(None);
    }
    let mut languages: Vec<String> = Vec::new();
    let mut currencies: Vec<String> = Vec::new();
    for (language, currency, active) in rows {
        let language = language.to_ascii_lowercase();
        if !languages.contains(&language) {
            languages.push(language);
        }
        let currency = currency.to_ascii_uppercase();
        if active && !currencies.contains(&currency) {
            currencies.push(currency);
        }
    }
    Ok(Some(Supported {
        languages,
        currencies,
    }))
}

fn primary(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// Whether `code` is one of `languages`, exactly or by its primary subtag (`pt-BR` ~ `pt`).
fn language_matches(languages: &[String], code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    languages
        .iter()
        .any(|l| *l == code || primary(l) == primary(&code))
}

/// Refuses a language the settings in effect do not support, naming `field`.
pub async fn check_language(ctx: &Ctx, field: &str, code: &str) -> Result<(), ToolError> {
    let Some(s) = supported(ctx).await? else {
        return Ok(());
    };
    if language_matches(&s.languages, code) {
        return Ok(());
    }
    Err(ToolError::field(
        field,
        format!(
            "`{code}` is not a supported language; supported languages: {} (see listLocalizationSettings)",
            s.languages.join(", ")
        ),
    ))
}

/// [`check_language`] for each of `codes` (`field[i]` names the one refused).
pub async fn check_languages(ctx: &Ctx, field: &str, codes: &[&str]) -> Result<(), ToolError> {
    let Some(s) = supported(ctx).await? else {
        return Ok(());
    };
    for (i, code) in codes.iter().enumerate() {
        if !language_matches(&s.languages, code) {
            return Err(ToolError::field(
                format!("{field}[{i}]"),
                format!(
                    "`{code}` is not a supported language; supported languages: {} (see listLocalizationSettings)",
                    s.languages.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a currency that is not active in the settings in effect, naming `field`.
pub async fn check_currency(ctx: &Ctx, field: &str, code: &str) -> Result<(), ToolError> {
    let Some(s) = supported(ctx).await? else {
        return Ok(());
    };
    if s.currencies.iter().any(|c| c.eq_ignore_ascii_case(code)) {
        return Ok(());
    }
    Err(ToolError::field(
        field,
        format!(
            "`{code}` is not a supported currency; active currencies: {} (see listLocalizationSettings)",
            if s.currencies.is_empty() {
                "none".to_string()
            } else {
                s.currencies.join(", ")
            }
        ),
    ))
}

/// Checks a listing's currency and spoken languages against the settings in effect.
pub async fn check_listing(
    ctx: &Ctx,
    currency: Option<&Currency>,
    languages: Option<&[LanguageTag]>,
) -> Result<(), ToolError> {
    if let Some(currency) = currency {
        check_currency(ctx, "currency", currency.as_str()).await?;
    }
    if let Some(languages) = languages {
        let codes: Vec<&str> = languages.iter().map(LanguageTag::as_str).collect();
        check_languages(ctx, "languagesSupported", &codes).await?;
    }
    Ok(())
}
