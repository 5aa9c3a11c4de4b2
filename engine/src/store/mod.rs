//! What survives a restart: the crash-safe catalog (functions, module bytes, tables,
//! schemas, sequences), the managed tables' files and the transactions that change them, and
//! where module bytes come from (files, inline base64, stored hashes).
//!
//! Layer 4: imports [`crate::udf`] (a query's scope, which keeps the files its scans
//! read), [`crate::wasm`] (the function kinds it records) and [`crate::error`].

pub(crate) mod catalog;
pub(crate) mod keys;
pub(crate) mod sequence;
pub(crate) mod source;
pub(crate) mod table;
pub(crate) mod transaction;
pub(crate) mod written;

/// Name of the catalog (database) every schema lives in.
pub const CATALOG_NAME: &str = "wasmudf";
/// The default schema.
pub const DEFAULT_SCHEMA: &str = "public";

/// Makes `$ty` a DataFusion configuration extension that only the engine sets: a
/// statement's or session's state carried through planning to the table providers
/// and functions (`$prefix` names it; `SET` of it is refused).
macro_rules! internal_extension {
    ($ty:ty, $prefix:literal) => {
        impl datafusion::common::config::ExtensionOptions for $ty {
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }

            fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
                self
            }

            fn cloned(&self) -> Box<dyn datafusion::common::config::ExtensionOptions> {
                Box::new(self.clone())
            }

            fn set(&mut self, key: &str, _value: &str) -> datafusion::error::Result<()> {
                Err(datafusion::error::DataFusionError::Configuration(format!(
                    "{}.{key} is internal and cannot be set",
                    $prefix
                )))
            }

            fn entries(&self) -> Vec<datafusion::common::config::ConfigEntry> {
                Vec::new()
            }
        }

        impl datafusion::common::config::ConfigExtension for $ty {
            const PREFIX: &'static str = $prefix;
        }
    };
}
pub(crate) use internal_extension;
