//! `CREATE FUNCTION ... LANGUAGE wasm` and `DROP FUNCTION`, read from the sqlparser
//! AST (DataFusion's planner drops STRICT, SET and the export name), checked against
//! the component's own description, then committed to the catalog and the registry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{AggregateUDF, ExprSchemable, ScalarUDF, Volatility};
use datafusion::sql::sqlparser::ast::{
    ArgMode, CreateFunction as SqlCreateFunction, CreateFunctionBody, DataType as SqlType,
    DropFunction, Expr, FunctionBehavior, FunctionCalledOnNull, FunctionDefinitionSetParam,
    FunctionReturnType, FunctionSetValue, Ident, ObjectName, ObjectNamePart, TimezoneInfo, Value,
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

/// What a `CREATE FUNCTION` asks for, read from the statement: cheap, on the caller's
/// task. [`CreateFunction::run`] does the load-time work.
pub(crate) struct CreateFunction {
    name: String,
    module_spec: String,
    export: String,
    declared_args: Vec<DataType>,
    declared_return: DataType,
    volatility: Option<Volatility>,
    null_handling: Option<NullHandling>,
    limits: LimitOverrides,
    or_replace: bool,
    owner: String,
}

/// Reads `CREATE [OR REPLACE] FUNCTION name(args) RETURNS type LANGUAGE wasm ... AS
/// 'module' [, 'export']`.
pub(crate) fn plan_create_function(
    session: &Session,
    cf: &SqlCreateFunction,
) -> Result<CreateFunction> {
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
    if session.db.inner.is_protected_builtin(&name) {
        return Err(Error::DuplicateFunction(format!(
            "function {name} is a built-in function and cannot be redefined"
        )));
    }
    Ok(CreateFunction {
        name,
        module_spec,
        export,
        declared_args,
        declared_return,
        volatility,
        null_handling,
        limits,
        or_replace: cf.or_replace,
        owner: session.user.clone(),
    })
}

impl CreateFunction {
    /// Loads the module (its guest code stops when `load` is canceled), checks the
    /// declaration against it and installs the function, unless `load` was canceled
    /// before the commit.
    pub(crate) fn run(self, db: &Database, load: &LoadControl) -> Result<CommandTag> {
        let (bytes, module) = load_module(db, &self.module_spec, load.cancel)?;
        let hash = module.hash();
        self.install_from(db, &bytes, module, load)
            .inspect_err(|_| forget_unless_stored(db, &hash))
    }

    fn install_from(
        self,
        db: &Database,
        bytes: &[u8],
        module: Module,
        load: &LoadControl,
    ) -> Result<CommandTag> {
        let sig = module.function(&self.export).map_err(|_| {
            Error::InvalidDefinition(format!(
                "the component has no function \"{}\" (it has: {})",
                self.export,
                some_names(module.functions().iter().map(|f| f.name.as_str()))
            ))
        })?;
        check_signature(&self.name, sig, &self.declared_args, &self.declared_return)?;
        if sig.null_handling == NullHandling::Strict
            && self.null_handling == Some(NullHandling::CalledOnNull)
        {
            return Err(Error::InvalidDefinition(format!(
                "function {} is STRICT in its component (its code never sees nulls) and cannot be declared CALLED ON NULL INPUT",
                self.export
            )));
        }
        let options = UdfOptions {
            name: Some(self.name.clone()),
            limits: self.limits,
            volatility: self.volatility,
            null_handling: self.null_handling,
        };
        // Checks volatility and limits before anything is stored.
        module.overload(&self.export, &options, sig.kind)?;

        let record = FunctionRecord {
            name: self.name.clone(),
            schema: DEFAULT_SCHEMA.into(),
            arg_types: sig.params.iter().map(sql_type_name).collect(),
            returns: sql_type_name(&sig.returns),
            kind: sig.kind,
            module: module.hash(),
            export: self.export,
            volatility: self.volatility.unwrap_or(sig.volatility),
            strict: self.null_handling.unwrap_or(sig.null_handling) == NullHandling::Strict,
            limits: StoredLimits {
                fuel: self.limits.fuel,
                memory: self.limits.memory,
                timeout_ms: self.limits.timeout.map(|t| t.as_millis() as u64),
                stack: self.limits.stack.map(|s| s as u64),
            },
            created: now(),
            seq: 0,
            owner: self.owner,
        };
        install(db, &module, bytes, vec![record], self.or_replace, load)?;
        Ok(CommandTag::CreateFunction)
    }
}

/// How load-time work is stopped: the flag the component's own code watches, and the
/// check at the point of no return (an error there leaves the catalog as it was).
pub(crate) struct LoadControl<'a> {
    pub cancel: Option<&'a Arc<AtomicBool>>,
    pub commit_point: &'a dyn Fn() -> Result<()>,
}

/// Up to ten of `names`, then how many more: a message stays short however many
/// functions a component describes.
fn some_names<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 10;
    let total = names.len();
    let mut out: Vec<&str> = names.take(SHOWN).collect();
    let more = total.saturating_sub(SHOWN);
    let more = (more > 0).then(|| format!("... and {more} more"));
    if let Some(m) = &more {
        out.push(m);
    }
    out.join(", ")
}

/// Refuses what a Wasm function cannot be: another language, and the CREATE FUNCTION
/// forms wasmudf does not support (0A000).
fn check_supported(cf: &SqlCreateFunction) -> Result<()> {
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
fn module_and_export(cf: &SqlCreateFunction) -> Result<(String, Option<String>)> {
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
fn declared_types(session: &Session, cf: &SqlCreateFunction) -> Result<(Vec<DataType>, DataType)> {
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
pub(crate) fn wasm_load(
    db: &Database,
    user: &str,
    spec: &str,
    load: &LoadControl,
) -> Result<Vec<FunctionRecord>> {
    db.inner.require_admin(user, "load modules")?;
    let (bytes, module) = load_module(db, spec, load.cancel)?;
    let hash = module.hash();
    let mut listed = Vec::with_capacity(module.functions().len());
    for f in module.functions() {
        if db.inner.is_protected_builtin(&f.name) {
            return Err(Error::DuplicateFunction(format!(
                "function {} is a built-in function and cannot be redefined",
                f.name
            )));
        }
        listed.push(FunctionRecord {
            name: f.name.clone(),
            schema: DEFAULT_SCHEMA.into(),
            arg_types: f.params.iter().map(sql_type_name).collect(),
            returns: sql_type_name(&f.returns),
            kind: f.kind,
            module: hash.clone(),
            export: f.name.clone(),
            volatility: f.volatility,
            strict: f.null_handling == NullHandling::Strict,
            limits: StoredLimits::default(),
            created: now(),
            seq: 0,
            owner: user.to_string(),
        });
    }
    // Loading the same module again is a no-op for functions it already defined
    // identically (a script run twice, a client that retries).
    let new: Vec<FunctionRecord> = {
        let registry = db.inner.functions.read();
        listed
            .iter()
            .filter(|r| {
                registry.records.get(&r.key()).is_none_or(|existing| {
                    existing.module != r.module
                        || existing.export != r.export
                        || existing.returns != r.returns
                })
            })
            .cloned()
            .collect()
    };
    if !new.is_empty() {
        install(db, &module, &bytes, new, false, load)
            .inspect_err(|_| forget_unless_stored(db, &hash))?;
    }
    Ok(listed)
}

/// Removes the compiled artifact of module `hash` unless a function uses it: a CREATE
/// that compiled its module and then failed leaves nothing in the data directory.
/// Under the DDL lock, so a concurrent CREATE of the same module cannot be between
/// its check and its commit.
fn forget_unless_stored(db: &Database, hash: &str) {
    let _ddl = db.inner.ddl.lock();
    if let Ok(false) = db.inner.catalog.has_module(hash) {
        db.inner.engine.remove_artifact(hash);
    }
}

/// Removes the artifacts of every module the catalog does not hold (at startup: what
/// a crash between a catalog commit and an artifact removal, or an older server,
/// left behind).
pub(crate) fn sweep_artifacts(db: &Database) -> Result<()> {
    let keep: HashSet<String> = db
        .inner
        .catalog
        .modules()?
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    let removed = db.inner.engine.retain_artifacts(&keep);
    if removed > 0 {
        tracing::info!(removed, "removed compiled artifacts no function uses");
    }
    Ok(())
}

/// Reads the module `spec` names and loads it; component errors are bad definitions.
/// Its load-time code stops once `cancel` is set.
pub(crate) fn load_module(
    db: &Database,
    spec: &str,
    cancel: Option<&Arc<AtomicBool>>,
) -> Result<(Vec<u8>, Module)> {
    let bytes = read_module(
        spec,
        db.inner.modules_dir.as_deref(),
        &db.inner.catalog,
        db.inner.engine.config().max_module_size,
    )?;
    let module = db
        .inner
        .load_component(&bytes, cancel)
        .map_err(definition)?;
    Ok((bytes, module))
}

/// Commits `records`, all functions of `module` (whose component is `bytes`), and
/// makes them live, all or nothing. Linear in the number of functions: every check
/// is one pass or a map lookup, so a component with many functions cannot hold the
/// DDL and registry locks for long.
pub(crate) fn install(
    db: &Database,
    module: &Module,
    bytes: &[u8],
    records: Vec<FunctionRecord>,
    or_replace: bool,
    load: &LoadControl,
) -> Result<()> {
    let _ddl = db.inner.ddl.lock();
    let mut registry = db.inner.functions.write();
    if !or_replace {
        if let Some(record) = records
            .iter()
            .find(|r| registry.records.contains_key(&r.key()))
        {
            return Err(Error::DuplicateFunction(format!(
                "function {} already exists; use CREATE OR REPLACE FUNCTION to replace it",
                record.key()
            )));
        }
    }
    let hash = module.hash();
    registry
        .modules
        .entry(hash.clone())
        .or_insert_with(|| module.clone());
    // Build the new functions before committing, so a failure leaves nothing behind.
    let mut next = registry.records.clone();
    let mut seq = next.values().map(|r| r.seq).max().unwrap_or(0);
    let mut kinds: HashMap<&str, FunctionKind> = HashMap::with_capacity(records.len());
    let mut keys = HashSet::with_capacity(records.len());
    for record in &records {
        kinds.insert(&record.name, record.kind);
        keys.insert(record.key());
    }
    // DataFusion resolves a name to one kind of function (an overload being replaced
    // does not count).
    for other in next.values() {
        if let Some(&kind) = kinds.get(other.name.as_str()) {
            if kind != other.kind && !keys.contains(&other.key()) {
                return Err(Error::DuplicateFunction(format!(
                    "function {} already exists as {} ({}); {} cannot share its name",
                    other.name,
                    kind_name(other.kind),
                    other.key(),
                    kind_name(kind),
                )));
            }
        }
    }
    let names: Vec<String> = kinds.keys().map(|n| n.to_string()).collect();
    let records: Vec<FunctionRecord> = records
        .into_iter()
        .map(|mut r| {
            seq += 1;
            r.seq = seq;
            r
        })
        .collect();
    for record in &records {
        next.insert(record.key(), record.clone());
    }
    let built = build_udfs(db, &mut registry, &next, &names)?;

    let change = db.inner.catalog.change()?;
    change.put_module(&hash, bytes)?;
    for record in &records {
        change.put_function(record)?;
    }
    let collected = change.collect_modules()?;
    (load.commit_point)()?;
    change.commit()?;
    forget_modules(db, &mut registry, &collected);

    registry.records = next;
    apply(db, &mut registry, built);
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
    forget_modules(db, &mut registry, &collected);
    registry.records = next;
    apply(db, &mut registry, built);
    Ok(tag)
}

/// Drops modules the catalog no longer holds (no function uses them) from the
/// registry and their compiled artifacts from the data directory.
fn forget_modules(db: &Database, registry: &mut Registry, hashes: &[String]) {
    for hash in hashes {
        registry.modules.remove(hash);
        db.inner.engine.remove_artifact(hash);
    }
}

/// Rebuilds every function of the catalog at startup. A function whose module
/// cannot be loaded is logged and left out (and stays in the catalog), so one bad
/// entry cannot keep the server from starting. Linear in the number of functions.
pub(crate) fn restore_functions(db: &Database) -> Result<()> {
    let records = db.inner.catalog.functions()?;
    let mut registry = db.inner.functions.write();
    let mut by_name: BTreeMap<String, BTreeMap<String, FunctionRecord>> = BTreeMap::new();
    for record in records {
        by_name
            .entry(record.name.clone())
            .or_default()
            .insert(record.key(), record);
    }
    for (name, overloads) in by_name {
        match build_udfs(db, &mut registry, &overloads, std::slice::from_ref(&name)) {
            Ok(built) => {
                registry.records.extend(overloads);
                apply(db, &mut registry, built);
            }
            Err(e) => tracing::error!(
                function = %log_text(&name),
                error = %log_text(&e.to_string()),
                "cannot restore function"
            ),
        }
    }
    registry.version += 1;
    Ok(())
}

/// The function for each of `names` as `records` define it (`None`: no overload left).
/// One pass over `records`, whatever the number of names.
fn build_udfs(
    db: &Database,
    registry: &mut Registry,
    records: &BTreeMap<String, FunctionRecord>,
    names: &[String],
) -> Result<Vec<(String, Option<SqlFunction>)>> {
    let mut mine: HashMap<&str, Vec<&FunctionRecord>> =
        names.iter().map(|n| (n.as_str(), Vec::new())).collect();
    for record in records.values() {
        if let Some(list) = mine.get_mut(record.name.as_str()) {
            list.push(record);
        }
    }
    let mut out = Vec::with_capacity(mine.len());
    for (name, mut overloads_of) in mine {
        overloads_of.sort_by_key(|r| r.seq);
        let kind = overloads_of
            .first()
            .map_or(FunctionKind::Scalar, |r| r.kind);
        let mut overloads = Vec::with_capacity(overloads_of.len());
        for record in overloads_of {
            let module = module_for(db, &mut registry.modules, &record.module)?;
            let mut overload = module.overload(&record.export, &options_of(record)?, kind)?;
            // The overload's figures outlive this UDF (adding a sibling rebuilds it).
            overload.stats = db.inner.stats.for_key(&record.key(), &overload.stats);
            overloads.push(Arc::new(overload));
        }
        let udf = (!overloads.is_empty()).then(|| match kind {
            FunctionKind::Scalar => SqlFunction::Scalar(Arc::new(ScalarUDF::new_from_impl(
                WasmScalarUdf::new(name, overloads),
            ))),
            FunctionKind::Aggregate => SqlFunction::Aggregate(Arc::new(
                AggregateUDF::new_from_impl(WasmAggregateUdf::new(name, overloads)),
            )),
        });
        out.push((name.to_string(), udf));
    }
    Ok(out)
}

/// Makes `built` live: in the registry, at a new version, and in the session template
/// new sessions copy.
fn apply(db: &Database, registry: &mut Registry, built: Vec<(String, Option<SqlFunction>)>) {
    registry.version += 1;
    // A dropped overload's figures go with it.
    db.inner
        .stats
        .retain(|key| registry.records.contains_key(key));
    for (name, udf) in &built {
        registry.changed_at.insert(name.clone(), registry.version);
        match udf {
            Some(u) => registry.udfs.insert(name.clone(), u.clone()),
            None => registry.udfs.remove(name),
        };
    }
    registry.sync_names(
        &db.inner.template,
        built.iter().map(|(n, _)| n.as_str()),
        &db.inner.replaced_builtins,
    );
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
    let module = db.inner.load_component(&bytes, None)?;
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

/// The Arrow type DataFusion gives a SQL type name; `timestamptz` (which DataFusion
/// plans without a zone) is a timestamp with one, so it matches components that
/// return instants.
pub(crate) fn arrow_type(session: &Session, t: &SqlType) -> Result<DataType> {
    if let SqlType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) = t {
        return Ok(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+00:00".into()),
        ));
    }
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
