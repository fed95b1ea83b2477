//! The agent hub (issue 4): agent definitions, overrides, the run loop and its execution log.
