//! What a component's bytes say it imports and exports, read without compiling it:
//! the first check on every load, and what `wasmudf inspect` shows.

use wasmparser::{Parser, Payload};

use crate::error::{Error, Result};
use crate::wasm::abi::TYPES_INTERFACE_PREFIX;

/// The top-level imports and exports of a component, in the order they appear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInterfaces {
    /// Import names, e.g. `wasmudf:udf/types@0.1.0` or `wasi:cli/stdout@0.2.9`.
    pub imports: Vec<String>,
    /// Export names, e.g. `wasmudf:udf/scalar@0.1.0`.
    pub exports: Vec<String>,
}

impl ComponentInterfaces {
    /// Reads the import and export sections of `bytes` (a component; a core module
    /// or anything else is an error saying what it is).
    pub fn read(bytes: &[u8]) -> Result<Self> {
        check_is_component(bytes)?;
        let malformed = |e: wasmparser::BinaryReaderError| {
            Error::InvalidComponent(format!("malformed component: {e}"))
        };
        let mut found = ComponentInterfaces {
            imports: Vec::new(),
            exports: Vec::new(),
        };
        // Nesting depth: imports and exports of nested components and modules are the
        // component's own business (satisfied or used inside it).
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.map_err(malformed)? {
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentImportSection(reader) if depth == 0 => {
                    for import in reader {
                        found
                            .imports
                            .push(import.map_err(malformed)?.name.name.to_string());
                    }
                }
                Payload::ComponentExportSection(reader) if depth == 0 => {
                    for export in reader {
                        found
                            .exports
                            .push(export.map_err(malformed)?.name.name.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }

    /// Whether the server grants import `name`: only the contract's `types`
    /// interface, which carries type definitions and no capability (checked again on
    /// the compiled component's types).
    pub fn granted(name: &str) -> bool {
        name.starts_with(TYPES_INTERFACE_PREFIX)
    }

    /// The imports the server refuses, in order.
    pub fn refused_imports(&self) -> Vec<&str> {
        self.imports
            .iter()
            .map(String::as_str)
            .filter(|name| !Self::granted(name))
            .collect()
    }

    /// Refuses a component whose imports name anything but the contract's `types`.
    pub(crate) fn check_imports(&self) -> Result<()> {
        let refused = self.refused_imports();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::ForbiddenImports {
                imports: refused.into_iter().map(str::to_string).collect(),
            })
        }
    }
}

/// Tells a core module (the usual mistake) from a component, with advice.
fn check_is_component(bytes: &[u8]) -> Result<()> {
    match bytes.get(0..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(Error::InvalidComponent(
            "this is a core WebAssembly module, not a component; wrap it with `wasm-tools component new` or build it with the wasmudf SDK".into(),
        )),
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        _ => Err(Error::InvalidComponent(
            "not a WebAssembly component (bad magic number)".into(),
        )),
    }
}
