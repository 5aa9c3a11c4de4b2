//! Session-level limit defaults: `SET wasm.fuel = ...`, `SHOW wasm.memory`.
//!
//! A DataFusion config extension under the `wasm` prefix, so the settings travel with
//! each session's config into every UDF call (`ScalarFunctionArgs::config_options`)
//! and show up in `SHOW ALL` / `information_schema.df_settings`.

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};

use crate::wasm::limits::{format_bytes, format_duration, LimitOverrides, Limits};

/// The `wasm.*` settings of one session.
#[derive(Debug, Clone)]
pub(crate) struct WasmSettings {
    /// What the session changed; `None` keeps the server default.
    pub overrides: LimitOverrides,
    /// Server defaults, shown by `SHOW` when the session did not change a limit.
    pub defaults: Limits,
    /// Server ceilings: a session may not raise a limit above them.
    pub ceilings: Limits,
    /// The session's role (not a setting: `SET` cannot change it).
    pub user: String,
}

impl WasmSettings {
    pub fn new(defaults: Limits, ceilings: Limits) -> Self {
        WasmSettings {
            overrides: LimitOverrides::default(),
            defaults,
            ceilings,
            user: String::new(),
        }
    }

    /// The limits a function without its own overrides runs under in this session.
    pub fn effective(&self) -> Limits {
        // Values were checked against the ceilings when set.
        self.defaults
            .with_overrides(&self.overrides, &self.ceilings)
            .unwrap_or(self.defaults)
    }
}

impl ExtensionOptions for WasmSettings {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let config = |e: crate::Error| DataFusionError::Configuration(e.to_string());
        let mut next = self.overrides;
        if value.trim().eq_ignore_ascii_case("default") {
            next.reset(key).map_err(config)?;
        } else {
            next.set(key, value).map_err(config)?;
            self.defaults
                .with_overrides(&next, &self.ceilings)
                .map_err(config)?;
        }
        self.overrides = next;
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let limits = self.effective();
        let entry = |key: &str, value: String, description| ConfigEntry {
            key: format!("{}.{key}", Self::PREFIX),
            value: Some(value),
            description,
        };
        vec![
            entry(
                "fuel",
                limits.fuel.to_string(),
                "Fuel (Wasm instructions, roughly) per UDF call",
            ),
            entry(
                "memory",
                format_bytes(limits.memory),
                "Linear memory per UDF instance",
            ),
            entry(
                "timeout",
                format_duration(limits.timeout),
                "Wall-clock deadline per UDF call",
            ),
            entry(
                "stack",
                format_bytes(limits.stack as u64),
                "Wasm stack per UDF call",
            ),
        ]
    }
}

impl ConfigExtension for WasmSettings {
    const PREFIX: &'static str = "wasm";
}
