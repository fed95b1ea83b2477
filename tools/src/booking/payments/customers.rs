//! Payment customers and saved payment methods (spec objects `Sys_paymentCustomer`,
//! `Sys_paymentMethod`): read-only operations over what the payment flow remembers with
//! [`remember_customer`] and [`remember_method`]. A user sees only their own; admins see all.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::provider::MethodInfo;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::Choice;
use crate::types::{Filter, OwnedRecordMeta, Paging};
use crate::vocabulary::Platforms;

/// A user's customer record at a payment provider.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCustomer {
    /// The record's id.
    pub id: Uuid,
    /// The Haven user.
    pub user_id: Uuid,
    /// The provider's customer id (`cus_…`).
    pub customer_id: String,
    /// The provider (`local`, `stripe`).
    #[schemars(with = "Choice<Platforms>")]
    pub platform: String,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the user it belongs to.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: OwnedRecordMeta,
}

const CUSTOMER_COLUMNS: &str = "id, user_id, customer_id, platform, is_active, record_version,
    created_at, updated_at, user_id AS record_owner";

/// A saved payment method (display details only; no card secrets are ever stored).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    /// The record's id.
    pub id: Uuid,
    /// The provider's payment method id (`pm_…`).
    pub payment_method_id: String,
    /// The user who owns it.
    pub user_id: Uuid,
    /// The provider's customer id it is attached to.
    pub customer_id: String,
    /// Billing name (may differ from the user's name).
    pub card_holder_name: Option<String>,
    /// Billing postal code.
    pub card_holder_zip: Option<String>,
    /// The provider (`local`, `stripe`).
    #[schemars(with = "Choice<Platforms>")]
    pub platform: String,
    /// Card details without secrets: brand, last4, expMonth, expYear.
    pub card_info: Option<Value>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the user it belongs to.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: OwnedRecordMeta,
}

const METHOD_COLUMNS: &str = "id, payment_method_id, user_id, customer_id, card_holder_name,
    card_holder_zip, platform, card_info, is_active, record_version, created_at, updated_at,
    user_id AS record_owner";

/// Input of `getPaymentCustomerByUserId`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerRef {
    /// The user whose customer record to read (yourself unless you are an admin).
    pub user_id: Uuid,
}

/// Input of `listPaymentCustomers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerFilters {
    /// Only these users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub user_id: Option<Filter>,
    /// Partial, case-insensitive provider customer id match.
    pub customer_id: Option<Filter>,
    /// Partial, case-insensitive provider match.
    pub platform: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// Input of `listPaymentCustomerMethods`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodFilters {
    /// The user whose methods to list (yourself unless you are an admin; admins may give several).
    #[schemars(with = "crate::types::UuidsFilter")]
    pub user_id: Filter,
    /// Partial, case-insensitive payment method id match.
    pub payment_method_id: Option<Filter>,
    /// Partial, case-insensitive customer id match.
    pub customer_id: Option<Filter>,
    /// Partial, case-insensitive billing name match.
    pub card_holder_name: Option<Filter>,
    /// Partial, case-insensitive postal code match.
    pub card_holder_zip: Option<Filter>,
    /// Partial, case-insensitive provider match.
    pub platform: Option<Filter>,
    /// Partial, case-insensitive match anywhere in the card details' JSON text (e.g. `visa`, `4242`).
    pub card_info: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of payment customers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CustomerList {
    /// The customers on this page.
    #[serde(rename = "sys_paymentCustomers")]
    pub customers: Vec<PaymentCustomer>,
    /// Where this page sits.
    pub paging: Paging,
}

/// A page of payment methods.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MethodList {
    /// The methods on this page.
    #[serde(rename = "sys_paymentMethods")]
    pub methods: Vec<PaymentMethod>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The payment customer and method operations (read-only; the payment flow writes them).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getPaymentCustomerByUserId", Service::Booking)
            .title("Get a user's payment customer")
            .who("the user themself, or an admin")
            .describe(
                "Returns the payment-provider customer record (customerId, platform) of a user; \
                 created automatically the first time the user pays. Users may read only their \
                 own; admins anyone's. Anyone else, or a user who never paid, gets 'payment \
                 customer not found'.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/paymentcustomers/{userId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_paymentCustomer")
            .handler(get_customer),
        Operation::build("listPaymentCustomers", Service::Booking)
            .title("List payment customers (admin)")
            .describe(
                "Lists payment-provider customer records, newest first, filtered by userId and \
                 partial customerId or platform. Paginated.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/paymentcustomers")
            .access(Access::Admin)
            .reads(Action::List, "sys_paymentCustomers")
            .handler(list_customers),
        Operation::build("listPaymentCustomerMethods", Service::Booking)
            .title("List a user's saved payment methods")
            .who("the user themself, or an admin")
            .describe(
                "Lists the payment methods a user has paid with (card brand, last4, expiry, \
                 holder name and zip; never card numbers), newest first, filtered by partial \
                 paymentMethodId, customerId, cardHolderName, cardHolderZip, platform, or cardInfo \
                 (text match in the card details). Users may list only their own; admins \
                 anyone's. Paginated.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/paymentcustomermethods/{userId}",
            )
            .access(Access::Authenticated)
            .reads(Action::List, "sys_paymentMethods")
            .handler(list_methods),
    ]
}

async fn get_customer(ctx: Ctx, input: CustomerRef) -> Result<PaymentCustomer, ToolError> {
    if !ctx.is_admin() && ctx.user_id() != Some(input.user_id) {
        return Err(ToolError::not_found("payment customer"));
    }
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM booking.payment_customers WHERE user_id = $1 AND is_active
         ORDER BY platform = $2 DESC, updated_at DESC LIMIT 1"
    );
    sqlx::query_as(&sql)
        .bind(input.user_id)
        .bind(ctx.services.payments.platform())
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("payment customer"))
}

async fn list_customers(ctx: Ctx, input: CustomerFilters) -> Result<CustomerList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        CUSTOMER_COLUMNS,
        "booking.payment_customers WHERE is_active",
    );
    sql::id_filter(&mut qb, "user_id", "userId", input.user_id.as_ref())?;
    sql::text_filter(&mut qb, "customer_id", input.customer_id.as_ref());
    sql::text_filter(&mut qb, "platform", input.platform.as_ref());
    let mut db = ctx.db().await?;
    let (customers, paging) =
        sql::fetch_page(&mut db, qb, "created_at DESC, id DESC", page).await?;
    Ok(CustomerList { customers, paging })
}

async fn list_methods(ctx: Ctx, input: MethodFilters) -> Result<MethodList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let users = input.user_id.values();
    if users.is_empty() {
        return Err(ToolError::field(
            "userId",
            "give the user whose methods to list",
        ));
    }
    let users = users
        .into_iter()
        .map(|u| {
            Uuid::parse_str(u)
                .map_err(|_| ToolError::field("userId", format!("must be ids (UUIDs such as 3f2b8c4e-9d1a-4c55-8e0f-2a6b7c8d9e01); got \"{u}\"")))
        })
        .collect::<Result<Vec<Uuid>, _>>()?;
    if !ctx.is_admin() && users.iter().any(|u| ctx.user_id() != Some(*u)) {
        return Err(ToolError::not_found("user"));
    }
    let mut qb = sql::list_select(
        METHOD_COLUMNS,
        "booking.payment_methods WHERE is_active AND user_id = ANY(",
    );
    qb.push_bind(users);
    qb.push(")");
    sql::text_filter(
        &mut qb,
        "payment_method_id",
        input.payment_method_id.as_ref(),
    );
    sql::text_filter(&mut qb, "customer_id", input.customer_id.as_ref());
    sql::text_filter(&mut qb, "card_holder_name", input.card_holder_name.as_ref());
    sql::text_filter(&mut qb, "card_holder_zip", input.card_holder_zip.as_ref());
    sql::text_filter(&mut qb, "platform", input.platform.as_ref());
    sql::text_filter(&mut qb, "card_info::text", input.card_info.as_ref());
    let mut db = ctx.db().await?;
    let (methods, paging) = sql::fetch_page(&mut db, qb, "created_at DESC, id DESC", page).await?;
    Ok(MethodList { methods, paging })
}

/// Remembers (or re-activates) `user_id`'s customer id at `platform`; one per user and platform.
pub async fn remember_customer(
    ctx: &Ctx,
    user_id: Uuid,
    platform: &str,
    customer_id: &str,
) -> Result<(), ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query(
        "INSERT INTO booking.payment_customers AS c (user_id, platform, customer_id)
         VALUES ($1, $2, $3)
         ON CONFLICT (user_id, platform) DO UPDATE SET customer_id = EXCLUDED.customer_id,
            is_active = true, record_version = c.record_version + 1, updated_at = now()
         WHERE c.customer_id <> EXCLUDED.customer_id OR NOT c.is_active",
    )
    .bind(user_id)
    .bind(platform)
    .bind(customer_id)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// The customer id `user_id` has at `platform`, if the payment flow created one before.
pub async fn find_customer(
    ctx: &Ctx,
    user_id: Uuid,
    platform: &str,
) -> Result<Option<String>, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT customer_id FROM booking.payment_customers
         WHERE user_id = $1 AND platform = $2 AND is_active",
    )
    .bind(user_id)
    .bind(platform)
    .fetch_optional(&mut *db)
    .await?)
}

/// Remembers a payment method `user_id` paid with (display details only), updating the stored
/// details when the same method is used again.
pub async fn remember_method(
    ctx: &Ctx,
    user_id: Uuid,
    platform: &str,
    customer_id: &str,
    info: &MethodInfo,
) -> Result<(), ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query(
        "INSERT INTO booking.payment_methods AS m (payment_method_id, user_id, customer_id,
            card_holder_name, card_holder_zip, platform, card_info)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (user_id, platform, payment_method_id) DO UPDATE SET
            customer_id = EXCLUDED.customer_id, card_holder_name = EXCLUDED.card_holder_name,
            card_holder_zip = EXCLUDED.card_holder_zip, card_info = EXCLUDED.card_info,
            is_active = true, record_version = m.record_version + 1, updated_at = now()
         WHERE (m.customer_id, m.card_holder_name, m.card_holder_zip, m.card_info, m.is_active)
            IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.card_holder_name,
            EXCLUDED.card_holder_zip, EXCLUDED.card_info, true)",
    )
    .bind(&info.id)
    .bind(user_id)
    .bind(customer_id)
    .bind(&info.holder_name)
    .bind(&info.holder_zip)
    .bind(platform)
    .bind(&info.card)
    .execute(&mut *db)
    .await?;
    Ok(())
}
