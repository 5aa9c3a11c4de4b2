//! `wasmudf inspect FILE.wasm` and `wasmudf check FILE.wasm`: what a component is and
//! provides, and whether the server would load it, before anyone registers it.
//!
//! Both load the component in an engine of their own, as the server would (imports
//! checked from the bytes first, then compiled and described under the default
//! limits); `check` also compiles it with the optimizing compiler and instantiates it
//! once more, as a query would. Every name read from the file is shown escaped: the
//! file's author chose it.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wasmudf_engine::{
    kind_word, log_text, sql_type_name, volatility_word, ComponentInterfaces, Engine, EngineConfig,
    FunctionSignature, NullHandling,
};

/// `wasmudf inspect|check FILE [--json]`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What one component file is.
struct Report {
    file: PathBuf,
    size: usize,
    sha256: String,
    interfaces: ComponentInterfaces,
    /// The functions it describes, or why the server would refuse it (with SQLSTATE).
    loaded: Result<Vec<FunctionSignature>, (String, &'static str)>,
}

/// Prints what the component provides; an error only when the file cannot be read or
/// is not a component at all.
pub fn inspect(args: &InspectArgs) -> Result<(), String> {
    let report = examine(&args.file, false)?;
    print(&report, args.json);
    Ok(())
}

/// As [`inspect`]; an error (exit status 1) when the server would refuse it.
pub fn check(args: &InspectArgs) -> Result<(), String> {
    let report = examine(&args.file, true)?;
    print(&report, args.json);
    match &report.loaded {
        Ok(_) => Ok(()),
        Err((message, state)) => Err(format!(
            "the server would refuse {}: {} (SQLSTATE {state})",
            report.file.display(),
            log_text(message)
        )),
    }
}

fn examine(file: &Path, full: bool) -> Result<Report, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let interfaces =
        ComponentInterfaces::read(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let engine = Engine::new(EngineConfig {
        // `check` compiles as the server finally does; `inspect` takes the fast path.
        baseline_compile_min_size: if full {
            None
        } else {
            EngineConfig::default().baseline_compile_min_size
        },
        background_optimize: false,
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let loaded = engine
        .load_component(&bytes)
        .and_then(|module| {
            if full {
                module.instantiate_once()?;
            }
            Ok(module.functions().to_vec())
        })
        .map_err(|e| (e.to_string(), e.sqlstate()));
    Ok(Report {
        file: file.to_path_buf(),
        size: bytes.len(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        interfaces,
        loaded,
    })
}

/// `name` as a SQL identifier: bare when PostgreSQL would read it back unchanged.
fn identifier(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The statement that registers `f` from a file named `module` in the modules
/// directory.
fn create_statement(f: &FunctionSignature, module: &str) -> String {
    let params: Vec<String> = f.params.iter().map(sql_type_name).collect();
    format!(
        "CREATE FUNCTION {}({}) RETURNS {} LANGUAGE wasm AS '{}';",
        identifier(&f.name),
        params.join(", "),
        sql_type_name(&f.returns),
        module.replace('\'', "''")
    )
}

fn module_name(report: &Report) -> String {
    report
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module.wasm".into())
}

fn print(report: &Report, as_json: bool) {
    if as_json {
        println!("{}", to_json(report));
    } else {
        print!("{}", to_text(report));
    }
}

fn import_verdict(name: &str) -> &'static str {
    if ComponentInterfaces::granted(name) {
        "granted: type definitions only"
    } else {
        "refused: the server grants no capabilities"
    }
}

/// One function as `inspect` and `build` list it: kind, SQL signature, and what it
/// declares (`scalar gcd(bigint, bigint) returns bigint: immutable, strict`).
pub(crate) fn function_line(f: &FunctionSignature) -> String {
    let params: Vec<String> = f.params.iter().map(sql_type_name).collect();
    let mut traits = vec![
        volatility_word(f.volatility).to_string(),
        match f.null_handling {
            NullHandling::Strict => "strict".into(),
            NullHandling::CalledOnNull => "called on null input".into(),
        },
    ];
    if let Some(shape) = &f.aggregate {
        let state: Vec<String> = shape.state.iter().map(sql_type_name).collect();
        traits.push(format!("state ({})", state.join(", ")));
        if shape.retract {
            traits.push("retracts (sliding windows)".into());
        }
    }
    format!(
        "{} {}({}) returns {}: {}",
        kind_word(f.kind),
        f.name,
        params.join(", "),
        sql_type_name(&f.returns),
        traits.join(", ")
    )
}

fn to_text(report: &Report) -> String {
    let mut out = format!(
        "{}: {} bytes, sha256 {}\n",
        log_text(&report.file.display().to_string()),
        report.size,
        report.sha256
    );
    out.push_str("exports:\n");
    for name in &report.interfaces.exports {
        out.push_str(&format!("  {}\n", log_text(name)));
    }
    out.push_str("imports:");
    if report.interfaces.imports.is_empty() {
        out.push_str(" none");
    }
    out.push('\n');
    for name in &report.interfaces.imports {
        out.push_str(&format!(
            "  {} ({})\n",
            log_text(name),
            import_verdict(name)
        ));
    }
    match &report.loaded {
        Err((message, state)) => out.push_str(&format!(
            "the server would refuse it: {} (SQLSTATE {state})\n",
            log_text(message)
        )),
        Ok(functions) => {
            out.push_str("functions:\n");
            for f in functions {
                out.push_str(&format!("  {}\n", function_line(f)));
            }
            let module = module_name(report);
            out.push_str(&format!(
                "register them (with {module} in the server's modules directory):\n"
            ));
            for f in functions {
                out.push_str(&format!("  {}\n", create_statement(f, &module)));
            }
            out.push_str(&format!(
                "  -- or every one under its own name: SELECT * FROM wasm_load('{}');\n",
                module.replace('\'', "''")
            ));
        }
    }
    out
}

fn to_json(report: &Report) -> Value {
    let module = module_name(report);
    let functions = match &report.loaded {
        Ok(functions) => Value::Array(
            functions
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name,
                        "kind": kind_word(f.kind),
                        "arguments": f.params.iter().map(sql_type_name).collect::<Vec<_>>(),
                        "returns": sql_type_name(&f.returns),
                        "volatility": volatility_word(f.volatility),
                        "strict": f.null_handling == NullHandling::Strict,
                        "state": f.aggregate.as_ref().map(|a| a.state.iter().map(sql_type_name).collect::<Vec<_>>()),
                        "retract": f.aggregate.as_ref().map(|a| a.retract),
                        "create": create_statement(f, &module),
                    })
                })
                .collect(),
        ),
        Err(_) => Value::Null,
    };
    json!({
        "file": report.file.display().to_string(),
        "size": report.size,
        "sha256": report.sha256,
        "exports": report.interfaces.exports,
        "imports": report.interfaces.imports.iter().map(|name| json!({
            "name": name,
            "granted": ComponentInterfaces::granted(name),
        })).collect::<Vec<_>>(),
        "accepted": report.loaded.is_ok(),
        "error": report.loaded.as_ref().err().map(|(message, state)| json!({
            "message": message,
            "sqlstate": state,
        })),
        "functions": functions,
    })
}
