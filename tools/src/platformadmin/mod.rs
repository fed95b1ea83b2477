//! The platform-admin service: API keys, the audit log, localization settings, admin dispute
//! actions, financial reports and GDPR requests.

pub mod api_keys;
pub mod audit_logs;
pub mod dispute_actions;
pub mod financial_reports;
pub mod gdpr;
pub mod localization;

use crate::registry::Operation;

/// Every platform-admin operation.
pub fn operations() -> Vec<Operation> {
    api_keys::operations()
        .into_iter()
        .chain(audit_logs::operations())
        .chain(localization::operations())
        .chain(dispute_actions::operations())
        .chain(financial_reports::operations())
        .chain(gdpr::operations())
        .collect()
}
