//! `CREATE FUNCTION ... LANGUAGE wasm` and `DROP FUNCTION`, read from the sqlparser
//! AST (DataFusion's planner drops STRICT, SET and the export name), checked against
//! the component's own description, then committed to the catalog and the registry.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::{AggregateUDF, ExprSchemable, ScalarUDF, Volatility};
use datafusion::sql::sqlparser::ast::{
    ArgMode, CreateFunction, CreateFunctionBody, DataType as SqlType, DropFunction, Expr,
    FunctionBehavior, FunctionCalledOnNull, FunctionDefinitionSetParam, FunctionReturnType,
    FunctionSetValue, Ident, ObjectName, ObjectNamePart, Value,
};

use crate::error::{log_text, Error, Result};
use crate::sql::database::{Database, Registry, SqlFunction};
use crate::sql::output::CommandTag;
use crate::sql::session::Session;
use crate::store::catalog::{now, overload_key, FunctionRecord, StoredLimits};
use crate::store::source::read_module;
use crate::store::DEFAULT_SCHEMA;
use crate::udf::aggregate::WasmAggregateUdf;
use crate::udf::build::{kind_name, UdfOptions};
use crate::udf::scalar::WasmScalarUdf;
use crate::udf::settings::WasmSettings;
use crate::wasm::engine::Module;
use crate::wasm::limits::LimitOverrides;
use crate::wasm::signature::{sql_type_name, FunctionKind, FunctionSignature, NullHandling};

/// `CREATE [OR REPLACE] FUNCTION name(args) RETURNS type LANGUAGE wasm ... AS 'module' [, 'export']`.
pub(crate) fn create_function(session: &Session, cf: &CreateFunction) -> Result<CommandTag> {
    check_supported(cf)?;
    let name = function_name(&cf.name)?;
    let (module_spec, export) = module_and_export(cf)?;
    let export = export.unwrap_or_else(|| name.clone());
    let (declared_args, declared_return) = declared_types(session, cf)?;
    let volatility = cf.behavior.as_ref().map(|b| match b {
        FunctionBehavior::Immutable => Volatility::Immutable,
        FunctionBehavior::Stable => Volatility::Stable,
        FunctionBehavior::Volatile => Volatility::Volatile,
    });
    let null_handling = cf.called_on_null.as_ref().map(|c| match c {
        FunctionCalledOnNull::Strict | FunctionCalledOnNull::ReturnsNullOnNullInput => {
            NullHandling::Strict
        }
        FunctionCalledOnNull::CalledOnNullInput => NullHandling::CalledOnNull,
    });
    let limits = limit_clauses(session, &cf.set_params)?;

    let db = &session.db;
    if db.inner.is_protected_builtin(&name) {
        return Err(Error::DuplicateFunction(format!(
            "function {name} is a built-in function and cannot be redefined"
        )));
    }
    let (bytes, module) = load_module(db, &module_spec)?;
    let sig = module.function(&export).map_err(|_| {
        let names: Vec<&str> = module.functions().iter().map(|f| f.name.as_str()).collect();
        Error::InvalidDefinition(format!(
            "the component has no function \"{export}\" (it has: {})",
            names.join(", ")
        ))
    })?;
    check_signature(&name, sig, &declared_args, &declared_return)?;
    if sig.null_handling == NullHandling::Strict
        && null_handling == Some(NullHandling::CalledOnNull)
    {
        return Err(Error::InvalidDefinition(format!(
            "function {export} is STRICT in its component (its code never sees nulls) and cannot be declared CALLED ON NULL INPUT"
        )));
    }
    let options = UdfOptions {
        name: Some(name.clone()),
        limits,
        volatility,
        null_handling,
    };
    // Checks volatility and limits before anything is stored.
    module.overload(&export, &options, sig.kind)?;

    let record = FunctionRecord {
        name: name.clone(),
        schema: DEFAULT_SCHEMA.into(),
        arg_types: sig.params.iter().map(sql_type_name).collect(),
        returns: sql_type_name(&sig.returns),
        kind: sig.kind,
        module: module.hash(),
        export,
        volatility: volatility.unwrap_or(sig.volatility),
        strict: null_handling.unwrap_or(sig.null_handling) == NullHandling::Strict,
        limits: StoredLimits {
            fuel: limits.fuel,
            memory: limits.memory,
            timeout_ms: limits.timeout.map(|t| t.as_millis() as u64),
            stack: limits.stack.map(|s| s as u64),
        },
        created: now(),
        seq: 0,
        owner: session.user.clone(),
    };
    install(db, vec![(record, bytes)], cf.or_replace)?;
    Ok(CommandTag::CreateFunction)
}

/// Refuses what a Wasm function cannot be: another language, and the CREATE FUNCTION
/// forms wasmudf does not support (0A000).
fn check_supported(cf: &CreateFunction) -> Result<()> {
    let unsupported = |what: &str| Err(not_supported(what));
    match cf.language.as_ref().map(|l| l.value.to_ascii_lowercase()) {
        Some(l) if l == "wasm" => {}
        Some(other) => {
            return Err(Error::NotSupported(format!(
                "LANGUAGE {other} is not supported; wasmudf functions are LANGUAGE wasm"
            )))
        }
        None => {
            return Err(Error::InvalidDefinition(
                "no language specified; write LANGUAGE wasm".into(),
            ))
        }
    }
    if cf.or_alter {
        return unsupported("CREATE OR ALTER");
    }
    if cf.temporary {
        return unsupported("CREATE TEMPORARY FUNCTION");
    }
    if cf.if_not_exists {
        return unsupported("IF NOT EXISTS");
    }
    if cf.security.is_some() {
        return unsupported("SECURITY DEFINER/INVOKER");
    }
    if cf.using.is_some() || cf.options.is_some() || cf.remote_connection.is_some() {
        return unsupported("USING/OPTIONS/REMOTE");
    }
    Ok(())
}

fn not_supported(what: &str) -> Error {
    Error::NotSupported(format!("{what} is not supported for Wasm functions"))
}

/// `AS 'module' [, 'export']`.
fn module_and_export(cf: &CreateFunction) -> Result<(String, Option<String>)> {
    match &cf.function_body {
        Some(CreateFunctionBody::AsBeforeOptions { body, link_symbol }) => Ok((
            string_literal(body, "the module")?,
            link_symbol
                .as_ref()
                .map(|e| string_literal(e, "the export name"))
                .transpose()?,
        )),
        Some(CreateFunctionBody::AsAfterOptions(body)) => {
            Ok((string_literal(body, "the module")?, None))
        }
        _ => Err(Error::InvalidDefinition(
            "a Wasm function needs AS 'module.wasm' [, 'export']".into(),
        )),
    }
}

/// The argument and result types as declared, in Arrow terms.
fn declared_types(session: &Session, cf: &CreateFunction) -> Result<(Vec<DataType>, DataType)> {
    let mut args = Vec::new();
    for arg in cf.args.iter().flatten() {
        if matches!(arg.mode, Some(ArgMode::Out | ArgMode::InOut)) {
            return Err(not_supported("OUT and INOUT arguments"));
        }
        if arg.default_expr.is_some() {
            return Err(not_supported("argument defaults"));
        }
        args.push(arrow_type(session, &arg.data_type)?);
    }
    let returns = match &cf.return_type {
        Some(FunctionReturnType::DataType(t)) => arrow_type(session, t)?,
        Some(FunctionReturnType::SetOf(_)) => return Err(not_supported("RETURNS SETOF")),
        None => {
            return Err(Error::InvalidDefinition(
                "a Wasm function needs RETURNS <type>".into(),
            ))
        }
    };
    Ok((args, returns))
}

/// `SELECT * FROM wasm_load('module')` run by `user`: defines every function the
/// module describes under its own name with the component's declarations, all or
/// nothing, and returns the records of all of them.
pub(crate) fn wasm_load(db: &Database, user: &str, spec: &str) -> Result<Vec<FunctionRecord>> {
    db.inner.require_admin(user, "load modules")?;
    let (bytes, module) = load_module(db, spec)?;
    let mut records = Vec::new();
    for f in module.functions() {
        if db.inner.is_protected_builtin(&f.name) {
            return Err(Error::DuplicateFunction(format!(
                "function {} is a built-in function and cannot be redefined",
                f.name
            )));
        }
        records.push((
            FunctionRecord {
                name: f.name.clone(),
                schema: DEFAULT_SCHEMA.into(),
                arg_types: f.params.iter().map(sql_type_name).collect(),
                returns: sql_type_name(&f.returns),
                kind: f.kind,
                module: module.hash(),
                export: f.name.clone(),
                volatility: f.volatility,
                strict: f.null_handling == NullHandling::Strict,
                limits: StoredLimits::default(),
                created: now(),
                seq: 0,
                owner: user.to_string(),
            },
            bytes.clone(),
        ));
    }
    let listed: Vec<FunctionRecord> = records.iter().map(|(r, _)| r.clone()).collect();
    // Loading the same module again is a no-op for functions it already defined
    // identically: a client that describes a statement before running it (the
    // extended protocol) plans it twice.
    records.retain(|(r, _)| {
        let registry = db.inner.functions.read();
        registry.records.get(&r.key()).is_none_or(|existing| {
            existing.module != r.module
                || existing.export != r.export
                || existing.returns != r.returns
        })
    });
    if !records.is_empty() {
        install(db, records, false)?;
    }
    Ok(listed)
}

/// Reads the module `spec` names and loads it; component errors are bad definitions.
pub(crate) fn load_module(db: &Database, spec: &str) -> Result<(Vec<u8>, Module)> {
    let bytes = read_module(
        spec,
        db.inner.modules_dir.as_deref(),
        &db.inner.catalog,
        db.inner.engine.config().max_module_size,
    )?;
    let module = db.inner.load_component(&bytes).map_err(definition)?;
    Ok((bytes, module))
}

/// Commits `records` (with their module bytes) and makes them live, all or nothing.
pub(crate) fn install(
    db: &Database,
    records: Vec<(FunctionRecord, Vec<u8>)>,
    or_replace: bool,
) -> Result<()> {
    let _ddl = db.inner.ddl.lock();
    let mut registry = db.inner.functions.write();
    for (record, _) in &records {
        if !or_replace && registry.records.contains_key(&record.key()) {
            return Err(Error::DuplicateFunction(format!(
                "function {} already exists; use CREATE OR REPLACE FUNCTION to replace it",
                record.key()
            )));
        }
    }
    for (record, bytes) in &records {
        if !registry.modules.contains_key(&record.module) {
            let module = db.inner.load_component(bytes)?;
            registry.modules.insert(record.module.clone(), module);
        }
    }
    // Build the new functions before committing, so a failure leaves nothing behind.
    let mut next = registry.records.clone();
    let mut seq = next.values().map(|r| r.seq).max().unwrap_or(0);
    let records: Vec<(FunctionRecord, Vec<u8>)> = records
        .into_iter()
        .map(|(mut r, bytes)| {
            seq += 1;
            r.seq = seq;
            (r, bytes)
        })
        .collect();
    for (record, _) in &records {
        next.insert(record.key(), record.clone());
    }
    let names: Vec<String> = records.iter().map(|(r, _)| r.name.clone()).collect();
    for (record, _) in &records {
        // DataFusion resolves a name to one kind of function.
        if let Some(other) = next
            .values()
            .find(|r| r.name == record.name && r.kind != record.kind)
        {
            return Err(Error::DuplicateFunction(format!(
                "function {} already exists as {} ({}); {} cannot share its name",
                record.name,
                kind_name(other.kind),
                other.key(),
                kind_name(record.kind),
            )));
        }
    }
    let built = build_udfs(db, &mut registry, &next, &names)?;

    let change = db.inner.catalog.change()?;
    for (record, bytes) in &records {
        change.put_module(&record.module, bytes)?;
        change.put_function(record)?;
    }
    change.collect_modules()?;
    change.commit()?;

    registry.records = next;
    apply(&mut registry, built);
    Ok(())
}

/// `DROP FUNCTION|AGGREGATE [IF EXISTS] name[(types)], ...` (`aggregate_only` for
/// DROP AGGREGATE, which refuses to drop a scalar function).
pub(crate) fn drop_function(
    session: &Session,
    df: &DropFunction,
    aggregate_only: bool,
) -> Result<CommandTag> {
    let tag = if aggregate_only {
        CommandTag::DropAggregate
    } else {
        CommandTag::DropFunction
    };
    let db = &session.db;
    let _ddl = db.inner.ddl.lock();
    let mut registry = db.inner.functions.write();
    let mut doomed = Vec::new();
    for desc in &df.func_desc {
        let name = function_name(&desc.name)?;
        if db.inner.builtins.contains(&name) && !registry.udfs.contains_key(&name) {
            return Err(Error::InsufficientPrivilege(format!(
                "function {name} is a built-in function and cannot be dropped"
            )));
        }
        let overloads: Vec<&FunctionRecord> = registry
            .records
            .values()
            .filter(|r| r.name == name && (!aggregate_only || r.kind == FunctionKind::Aggregate))
            .collect();
        let what = if aggregate_only {
            "aggregate"
        } else {
            "function"
        };
        let key = match &desc.args {
            Some(args) => {
                let mut types = Vec::new();
                for arg in args {
                    types.push(sql_type_name(&arrow_type(session, &arg.data_type)?));
                }
                let key = overload_key(&name, &types);
                match registry.records.get(&key) {
                    Some(r) if aggregate_only && r.kind != FunctionKind::Aggregate => {
                        return Err(Error::WrongObjectType(format!(
                            "function {key} is not an aggregate; use DROP FUNCTION"
                        )))
                    }
                    Some(_) => {}
                    None if df.if_exists => continue,
                    None => {
                        return Err(Error::UndefinedFunction(format!(
                            "{what} {key} does not exist"
                        )))
                    }
                }
                key
            }
            None => match overloads.as_slice() {
                [] if df.if_exists => continue,
                [] => {
                    return Err(Error::UndefinedFunction(format!(
                        "{what} {name} does not exist"
                    )))
                }
                [one] => one.key(),
                many => {
                    let keys: Vec<String> = many.iter().map(|r| r.key()).collect();
                    return Err(Error::AmbiguousFunction(format!(
                        "function name \"{name}\" is not unique ({}); specify the argument list",
                        keys.join(", ")
                    )));
                }
            },
        };
        doomed.push((name, key));
    }
    if doomed.is_empty() {
        return Ok(tag);
    }
    let mut next = registry.records.clone();
    for (_, key) in &doomed {
        next.remove(key);
    }
    let names: Vec<String> = doomed.iter().map(|(n, _)| n.clone()).collect();
    let built = build_udfs(db, &mut registry, &next, &names)?;
    let change = db.inner.catalog.change()?;
    for (_, key) in &doomed {
        change.remove_function(key)?;
    }
    let collected = change.collect_modules()?;
    change.commit()?;
    for hash in collected {
        registry.modules.remove(&hash);
    }
    registry.records = next;
    apply(&mut registry, built);
    Ok(tag)
}

/// Rebuilds every function of the catalog at startup. A function whose module
/// cannot be loaded is logged and left out (and stays in the catalog), so one bad
/// entry cannot keep the server from starting.
pub(crate) fn restore_functions(db: &Database) -> Result<()> {
    let records = db.inner.catalog.functions()?;
    let mut registry = db.inner.functions.write();
    let mut names: Vec<String> = Vec::new();
    let mut all = std::collections::BTreeMap::new();
    for record in records {
        if !names.contains(&record.name) {
            names.push(record.name.clone());
        }
        all.insert(record.key(), record);
    }
    for name in &names {
        let one: std::collections::BTreeMap<_, _> = all
            .iter()
            .filter(|(_, r)| &r.name == name)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        match build_udfs(db, &mut registry, &one, std::slice::from_ref(name)) {
            Ok(built) => {
                registry.records.extend(one);
                apply(&mut registry, built);
            }
            Err(e) => tracing::error!(
                function = %log_text(name),
                error = %log_text(&e.to_string()),
                "cannot restore function"
            ),
        }
    }
    registry.version += 1;
    Ok(())
}

/// The function for each of `names` as `records` define it (`None`: no overload left).
fn build_udfs(
    db: &Database,
    registry: &mut Registry,
    records: &std::collections::BTreeMap<String, FunctionRecord>,
    names: &[String],
) -> Result<Vec<(String, Option<SqlFunction>)>> {
    let mut out = Vec::new();
    for name in names {
        if out.iter().any(|(n, _)| n == name) {
            continue;
        }
        let mut mine: Vec<&FunctionRecord> = records.values().filter(|r| &r.name == name).collect();
        mine.sort_by_key(|r| r.seq);
        let kind = mine.first().map_or(FunctionKind::Scalar, |r| r.kind);
        let mut overloads = Vec::new();
        for record in mine {
            let module = module_for(db, &mut registry.modules, &record.module)?;
            overloads.push(Arc::new(module.overload(
                &record.export,
                &options_of(record)?,
                kind,
            )?));
        }
        let udf = (!overloads.is_empty()).then(|| match kind {
            FunctionKind::Scalar => SqlFunction::Scalar(Arc::new(ScalarUDF::new_from_impl(
                WasmScalarUdf::new(name, overloads),
            ))),
            FunctionKind::Aggregate => SqlFunction::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(WasmAggregateUdf::new(name, overloads)),
            )),
        });
        out.push((name.clone(), udf));
    }
    Ok(out)
}

fn apply(registry: &mut Registry, built: Vec<(String, Option<SqlFunction>)>) {
    for (name, udf) in built {
        match udf {
            Some(u) => registry.udfs.insert(name, u),
            None => registry.udfs.remove(&name),
        };
    }
    registry.version += 1;
}

/// The loaded module for `hash`, from memory or the catalog's stored bytes.
pub(crate) fn module_for(
    db: &Database,
    modules: &mut HashMap<String, Module>,
    hash: &str,
) -> Result<Module> {
    if let Some(m) = modules.get(hash) {
        return Ok(m.clone());
    }
    let bytes = db
        .inner
        .catalog
        .module(hash)?
        .ok_or_else(|| Error::Catalog(format!("module {hash} is missing from the catalog")))?;
    let module = db.inner.load_component(&bytes)?;
    if module.hash() != hash {
        return Err(Error::Catalog(format!(
            "stored module {hash} does not match its hash"
        )));
    }
    modules.insert(hash.to_string(), module.clone());
    Ok(module)
}

fn options_of(record: &FunctionRecord) -> Result<UdfOptions> {
    Ok(UdfOptions {
        name: Some(record.name.clone()),
        limits: LimitOverrides {
            fuel: record.limits.fuel,
            memory: record.limits.memory,
            timeout: record
                .limits
                .timeout_ms
                .map(std::time::Duration::from_millis),
            stack: record
                .limits
                .stack
                .map(|s| usize::try_from(s).unwrap_or(usize::MAX)),
        },
        volatility: Some(record.volatility),
        null_handling: Some(if record.strict {
            NullHandling::Strict
        } else {
            NullHandling::CalledOnNull
        }),
    })
}

/// A component error met while defining a function is a bad definition (42P13).
pub(crate) fn definition(e: Error) -> Error {
    match e {
        Error::InvalidComponent(_)
        | Error::InvalidDescription(_)
        | Error::ForbiddenImports { .. } => Error::InvalidDefinition(e.to_string()),
        other => other,
    }
}

/// The SQL name: unquoted identifiers fold to lower case, quoted ones keep theirs.
/// Functions live in schema `public`.
pub(crate) fn function_name(name: &ObjectName) -> Result<String> {
    let idents: Vec<&Ident> = name.0.iter().filter_map(ObjectNamePart::as_ident).collect();
    match idents.as_slice() {
        [one] => Ok(normalize(one)),
        [schema, one] if normalize(schema) == DEFAULT_SCHEMA => Ok(normalize(one)),
        _ => Err(Error::NotSupported(format!(
            "function name {name}: Wasm functions live in schema {DEFAULT_SCHEMA}"
        ))),
    }
}

pub(crate) fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

fn string_literal(expr: &Expr, what: &str) -> Result<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DollarQuotedString(datafusion::sql::sqlparser::ast::DollarQuotedString {
                value: s,
                ..
            }) => Ok(s.clone()),
            _ => Err(Error::InvalidDefinition(format!(
                "{what} must be a string literal, got {expr}"
            ))),
        },
        _ => Err(Error::InvalidDefinition(format!(
            "{what} must be a string literal, got {expr}"
        ))),
    }
}

/// The Arrow type DataFusion gives a SQL type name.
pub(crate) fn arrow_type(session: &Session, t: &SqlType) -> Result<DataType> {
    let schema = DFSchema::empty();
    let expr = session
        .ctx
        .parse_sql_expr(&format!("CAST(NULL AS {t})"), &schema)
        .map_err(|e| Error::InvalidDefinition(format!("type {t}: {}", e.strip_backtrace())))?;
    expr.get_type(&schema)
        .map_err(|e| Error::InvalidDefinition(format!("type {t}: {}", e.strip_backtrace())))
}

/// `SET wasm.<limit> = '<value>'` clauses.
fn limit_clauses(
    session: &Session,
    params: &[FunctionDefinitionSetParam],
) -> Result<LimitOverrides> {
    let mut limits = LimitOverrides::default();
    for p in params {
        let full = p.name.to_string().to_lowercase();
        let Some(limit) = full.strip_prefix("wasm.") else {
            return Err(Error::NotSupported(format!(
                "SET {full} on a function: only wasm.fuel, wasm.memory, wasm.timeout and wasm.stack can be set"
            )));
        };
        match &p.value {
            FunctionSetValue::Values(values) if values.len() == 1 => {
                let value = match &values[0] {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => s.clone(),
                        Value::Number(n, _) => n.to_string(),
                        other => other.to_string(),
                    },
                    Expr::Identifier(i) => i.value.clone(),
                    other => other.to_string(),
                };
                limits.set(limit, &value)?;
            }
            FunctionSetValue::FromCurrent => {
                // As PostgreSQL: the value in effect now, the session's or the default.
                let state = session.ctx.state();
                let current = state
                    .config_options()
                    .extensions
                    .get::<WasmSettings>()
                    .map(WasmSettings::effective);
                match current {
                    Some(current) => limits.set_from(limit, &current)?,
                    None => limits.reset(limit)?,
                }
            }
            FunctionSetValue::Default => {}
            FunctionSetValue::Values(_) => {
                return Err(Error::InvalidLimit(format!("SET {full} takes one value")))
            }
        }
    }
    Ok(limits)
}

/// Whether a declared SQL type matches the component's type: text encodings are one
/// type, timestamps match on time-zone presence (any unit), everything else exactly.
fn same_type(declared: &DataType, component: &DataType) -> bool {
    use DataType::*;
    match (declared, component) {
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Timestamp(_, a), Timestamp(_, b)) => a.is_some() == b.is_some(),
        (a, b) => a == b,
    }
}

fn check_signature(
    name: &str,
    sig: &FunctionSignature,
    args: &[DataType],
    returns: &DataType,
) -> Result<()> {
    let export = &sig.name;
    if args.len() != sig.params.len() {
        return Err(Error::InvalidDefinition(format!(
            "function {export} takes {} argument(s) in its component ({sig}), but {name} is declared with {}",
            sig.params.len(),
            args.len()
        )));
    }
    for (i, (d, c)) in args.iter().zip(&sig.params).enumerate() {
        if !same_type(d, c) {
            return Err(Error::InvalidDefinition(format!(
                "argument {} of {name} is declared {} but the component's {export} takes {} ({sig})",
                i + 1,
                sql_type_name(d),
                sql_type_name(c)
            )));
        }
    }
    if !same_type(returns, &sig.returns) {
        return Err(Error::InvalidDefinition(format!(
            "{name} is declared to return {} but the component's {export} returns {} ({sig})",
            sql_type_name(returns),
            sql_type_name(&sig.returns)
        )));
    }
    Ok(())
}
