//! The BFF read side: every searchable object and aggregated view behind one family of index
//! operations (list, count, schema, saved filters, get one), plus one operation per view.
//!
//! An index is declared once ([`index::Index::of`], in [`indexes`] or [`views`]); its fields come
//! from its document type's JSON Schema, its rows from a query over the owning tables, its
//! visibility from the owning operation's access rule. Searches run through the [`engine::Engine`]
//! trait; [`engine::Postgres`] is the only engine.

pub mod engine;
pub mod filters;
pub mod index;
pub mod indexes;
pub mod ops;
pub mod saved;
pub mod views;

use std::sync::LazyLock;

use crate::error::ToolError;
pub use ops::operations;

/// Every index: the per-object ones, then the aggregated views.
static INDEXES: LazyLock<Vec<index::Index>> = LazyLock::new(|| {
    let mut all = indexes::all();
    all.extend(views::all());
    all
});

/// Every index, in declaration order.
pub fn all() -> &'static [index::Index] {
    &INDEXES
}

/// The index names, in declaration order.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|i| i.name).collect()
}

/// The index called `name`, or a `BadInput` listing the valid names.
pub fn find(name: &str) -> Result<&'static index::Index, ToolError> {
    all().iter().find(|i| i.name == name).ok_or_else(|| {
        ToolError::field(
            "indexName",
            format!(
                "there is no index `{name}`: must be one of: {}",
                names().join(", ")
            ),
        )
    })
}
