//! What one MCP connection may see and call: its toolsets, whether it is read-only, and whether
//! `tools/list` shows the role's core set or every tool.
//!
//! A selection is a property of the connection, not a view: [`Selection::refusal`] is checked on
//! every `tools/call` and `call_tool`, so a tool a connection excludes is refused when called by
//! name. It is read from the `/mcp` query string and headers (GitHub MCP server style), bound at
//! `GET /mcp/sse` for a legacy session, and taken from flags or env vars by `haven stdio`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use haven_tools::registry::{Flow, Operation, Service};
use haven_tools::{Principal, Registry};

/// Header naming the toolsets (`X-MCP-Toolsets: propertycatalog,bookingmanagement`).
pub const TOOLSETS_HEADER: &str = "x-mcp-toolsets";
/// Header making the connection read-only (`X-MCP-Readonly: true`).
pub const READONLY_HEADER: &str = "x-mcp-readonly";
/// Header choosing the listing (`X-MCP-Tools: all`).
pub const TOOLS_HEADER: &str = "x-mcp-tools";

/// Which tools `tools/list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// The core set of the caller's role (plus the discovery tools).
    Core,
    /// Every tool the caller may call (plus the discovery tools).
    All,
}

/// A connection's selection. The default (no query, no header) is every toolset, read-write, the
/// core listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selection {
    /// `None` = every toolset.
    pub toolsets: Option<BTreeSet<Service>>,
    /// Only read-only tools may be listed and called.
    pub read_only: bool,
    /// What `tools/list` shows.
    pub listing: Listing,
}

impl Default for Selection {
    fn default() -> Self {
        Selection {
            toolsets: None,
            read_only: false,
            listing: Listing::Core,
        }
    }
}

/// The raw choices before they are combined into a [`Selection`].
#[derive(Debug, Default)]
pub struct Choices {
    toolsets: Vec<Option<BTreeSet<Service>>>,
    read_only: bool,
    listing: Option<Listing>,
}

impl Choices {
    /// Adds a toolsets value (`auth,propertycatalog`, or `all`).
    pub fn toolsets(&mut self, value: &str) -> Result<(), String> {
        let mut sets = BTreeSet::new();
        for name in value.split(',').map(|s| s.trim().to_ascii_lowercase()) {
            if name.is_empty() {
                continue;
            }
            if name == "all" {
                self.toolsets.push(None);
                return Ok(());
            }
            match Service::from_segment(&name) {
                Some(service) => {
                    sets.insert(service);
                }
                None => {
                    return Err(format!(
                        "unknown toolset `{name}`; the toolsets are: {}, or all",
                        toolset_names().join(", ")
                    ))
                }
            }
        }
        if sets.is_empty() {
            return Err(format!(
                "toolsets is empty; name one or more of: {}, or all",
                toolset_names().join(", ")
            ));
        }
        self.toolsets.push(Some(sets));
        Ok(())
    }

    /// Adds a read-only value (`true`/`false`, `1`/`0`, `yes`/`no`). Read-only wins: any source
    /// that asks for it makes the connection read-only.
    pub fn read_only(&mut self, value: &str) -> Result<(), String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => self.read_only = true,
            "false" | "0" | "no" | "off" | "" => {}
            other => return Err(format!("readonly must be true or false, not `{other}`")),
        }
        Ok(())
    }

    /// Adds a listing value (`core` or `all`).
    pub fn listing(&mut self, value: &str) -> Result<(), String> {
        self.listing = Some(match value.trim().to_ascii_lowercase().as_str() {
            "core" | "default" => Listing::Core,
            "all" | "full" => Listing::All,
            other => return Err(format!("tools must be core or all, not `{other}`")),
        });
        Ok(())
    }

    /// Combines the choices: toolsets named by several sources intersect, read-only wins, and the
    /// listing defaults to the core set unless toolsets were chosen (then to every tool in them).
    pub fn finish(self) -> Selection {
        let mut toolsets: Option<BTreeSet<Service>> = None;
        for sets in self.toolsets.into_iter().flatten() {
            toolsets = Some(match toolsets {
                None => sets,
                Some(prev) => prev.intersection(&sets).copied().collect(),
            });
        }
        let listing = self.listing.unwrap_or(if toolsets.is_some() {
            Listing::All
        } else {
            Listing::Core
        });
        Selection {
            toolsets,
            read_only: self.read_only,
            listing,
        }
    }
}

/// Every toolset's name.
pub fn toolset_names() -> Vec<&'static str> {
    Service::ALL.iter().map(|s| s.segment()).collect()
}

impl Selection {
    /// The selection of an HTTP request: query `toolsets`, `readonly`, `tools` and the headers
    /// `X-MCP-Toolsets`, `X-MCP-Readonly`, `X-MCP-Tools`. An unknown toolset or value is an error
    /// listing the valid ones.
    pub fn from_request(query: Option<&str>, headers: &HeaderMap) -> Result<Self, String> {
        let mut choices = Choices::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "toolsets" => choices.toolsets(&value)?,
                "readonly" | "read_only" => choices.read_only(&value)?,
                "tools" => choices.listing(&value)?,
                _ => {}
            }
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(v) = header(TOOLSETS_HEADER) {
            choices.toolsets(v)?;
        }
        if let Some(v) = header(READONLY_HEADER) {
            choices.read_only(v)?;
        }
        if let Some(v) = header(TOOLS_HEADER) {
            choices.listing(v)?;
        }
        Ok(choices.finish())
    }

    /// Whether `op` is within the connection's toolsets and read-only rule.
    pub fn admits(&self, op: &Operation) -> bool {
        self.refusal(op).is_none()
    }

    /// Why the connection refuses `op`, naming the filter; `None` when it is allowed.
    pub fn refusal(&self, op: &Operation) -> Option<String> {
        if let Some(sets) = &self.toolsets {
            if !sets.contains(&op.service) {
                let names: Vec<&str> = sets.iter().map(|s| s.segment()).collect();
                return Some(format!(
                    "`{}` is not available on this connection: it is limited to the toolsets {} \
                     (toolsets filter) and {} is in the {} toolset",
                    op.name,
                    names.join(", "),
                    op.name,
                    op.service.segment()
                ));
            }
        }
        if self.read_only && !op.annotations.read_only {
            return Some(format!(
                "`{}` is not available on this connection: the connection is read-only (readonly \
                 filter) and {} changes data",
                op.name, op.name
            ));
        }
        None
    }

    /// The operations `principal` may call through this connection, for search and the full list.
    pub fn callable<'a>(
        &'a self,
        registry: &'a Registry,
        principal: Option<&'a Principal>,
    ) -> impl Iterator<Item = &'a Arc<Operation>> + 'a {
        registry
            .visible_to(principal)
            .filter(move |op| self.admits(op))
    }

    /// What `tools/list` shows, in order: for [`Listing::Core`] the core tools of the caller's
    /// flows (flow by flow, by rank), for [`Listing::All`] every callable tool by name.
    pub fn listed<'a>(
        &'a self,
        registry: &'a Registry,
        principal: Option<&'a Principal>,
    ) -> Vec<&'a Arc<Operation>> {
        let ops = self.callable(registry, principal);
        match self.listing {
            Listing::All => ops.collect(),
            Listing::Core => {
                let flows = Flow::for_caller(principal);
                let mut core: Vec<(usize, u8, &Arc<Operation>)> = ops
                    .filter_map(|op| {
                        let core = op.core?;
                        let at = flows.iter().position(|f| *f == core.flow)?;
                        Some((at, core.rank, op))
                    })
                    .collect();
                core.sort_by_key(|(at, rank, op)| (*at, *rank, op.name));
                core.into_iter().map(|(_, _, op)| op).collect()
            }
        }
    }

    /// A short description for the server's instructions and errors.
    pub fn describe(&self) -> String {
        let sets = match &self.toolsets {
            None => "all toolsets".to_string(),
            Some(sets) => format!(
                "toolsets {}",
                sets.iter()
                    .map(|s| s.segment())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "{sets}, {}, {} listing",
            if self.read_only {
                "read-only"
            } else {
                "read-write"
            },
            match self.listing {
                Listing::Core => "core",
                Listing::All => "full",
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Selection, String> {
        Selection::from_request(Some(query), &HeaderMap::new())
    }

    #[test]
    fn defaults_to_core_all_toolsets_read_write() {
        assert_eq!(parse("").unwrap(), Selection::default());
    }

    #[test]
    fn unknown_toolsets_and_values_are_errors_listing_the_valid_ones() {
        let err = parse("toolsets=nosuchset").unwrap_err();
        assert!(
            err.contains("nosuchset") && err.contains("propertycatalog"),
            "{err}"
        );
        assert!(parse("toolsets=").unwrap_err().contains("empty"));
        assert!(parse("readonly=maybe")
            .unwrap_err()
            .contains("true or false"));
        assert!(parse("tools=some").unwrap_err().contains("core or all"));
    }

    #[test]
    fn toolsets_default_to_the_full_listing_and_headers_intersect() {
        let s = parse("toolsets=auth,propertycatalog").unwrap();
        assert_eq!(s.listing, Listing::All);
        let mut headers = HeaderMap::new();
        headers.insert(
            TOOLSETS_HEADER,
            "propertycatalog,reviewsystem".parse().unwrap(),
        );
        headers.insert(READONLY_HEADER, "true".parse().unwrap());
        let s = Selection::from_request(
            Some("toolsets=auth,propertycatalog&readonly=false"),
            &headers,
        )
        .unwrap();
        assert_eq!(s.toolsets, Some(BTreeSet::from([Service::Catalog])));
        assert!(s.read_only, "read-only from any source wins");
        assert_eq!(parse("toolsets=all&tools=core").unwrap().toolsets, None);
    }

    #[test]
    fn refusals_name_the_filter() {
        let registry = Registry::haven();
        let op = registry.get("createApiKey").unwrap();
        let ro = parse("readonly=true").unwrap();
        assert!(ro.refusal(op).unwrap().contains("read-only"));
        let sets = parse("toolsets=propertycatalog").unwrap();
        assert!(sets.refusal(op).unwrap().contains("toolsets"));
        assert!(Selection::default().refusal(op).is_none());
        assert!(ro.refusal(registry.get("listListings").unwrap()).is_none());
    }
}
