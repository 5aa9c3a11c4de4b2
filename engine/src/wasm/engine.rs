//! The wasmtime engines (one per Wasm stack size in use) and loaded modules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::error::{Error, Result};
use crate::wasm::abi::{
    WitSignature, AGGREGATE_INTERFACE, GUEST_INTERFACE, SCALAR_INTERFACE, TYPES_INTERFACE_PREFIX,
};
use crate::wasm::aggregate_exports::AggregateExports;
use crate::wasm::cache::{ArtifactCache, CacheOutcome};
use crate::wasm::instance::{GuestInstance, InstanceSlots, StoreState};
use crate::wasm::limits::{round_stack, Limits};
use crate::wasm::signature::{FunctionKind, FunctionSignature};

/// How the engine is set up. `EngineConfig::default()` suits most uses.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Limits a function gets unless it overrides them.
    pub defaults: Limits,
    /// The most any function may override a limit to.
    pub ceilings: Limits,
    /// Count fuel (instructions) per call. Costs 1-2% on numeric code, more on string
    /// loops; without it only the wall-clock deadline stops a runaway guest.
    pub fuel_metering: bool,
    /// Largest component accepted, in bytes.
    pub max_module_size: usize,
    /// Most functions one component may describe (more is 54000 at load).
    pub max_functions_per_component: usize,
    /// Largest `describe` output accepted, in bytes of names and types (more is 54000
    /// at load). The guest's memory limit bounds what the host lifts before counting.
    pub max_description_size: usize,
    /// Guest instances alive at once across all functions and stack sizes (the main
    /// engine's pooling allocator slots; instances beyond fail with 53000).
    pub max_instances: u32,
    /// Idle instances kept per function for reuse within a query.
    pub idle_instances_per_function: usize,
    /// Period of the epoch clock that enforces deadlines and cancellation.
    pub epoch_tick: Duration,
    /// Where compiled artifacts are cached on disk; `None` keeps them in memory only.
    pub artifact_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            defaults: Limits::default(),
            ceilings: Limits::default_ceilings(),
            fuel_metering: true,
            max_module_size: 64 << 20,
            max_functions_per_component: 1000,
            max_description_size: 1 << 20,
            max_instances: 1000,
            idle_instances_per_function: 2 * thread::available_parallelism().map_or(4, |n| n.get()),
            epoch_tick: Duration::from_millis(2),
            artifact_dir: None,
        }
    }
}

impl From<Limits> for EngineConfig {
    fn from(defaults: Limits) -> Self {
        EngineConfig {
            defaults,
            ..EngineConfig::default()
        }
    }
}

/// The Wasm UDF engine: one per process. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use wasmudf_engine::{Engine, Limits};
/// use datafusion::prelude::SessionContext;
///
/// let engine = Engine::new(Limits::default())?;
/// let module = engine.load_component(&std::fs::read("target/udfs/math.wasm")?)?;
/// let ctx = SessionContext::new();
/// engine.register(&ctx, &module)?;
/// let query = engine.query(&ctx);
/// query.sql("SELECT gcd(12, 18), add_one(41)").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    /// The engine for the default stack size: every module compiles here, and its
    /// instances come from the pooling allocator.
    pub(crate) main: Arc<StackEngine>,
    /// Every live engine by stack size, the main one included: functions that share a
    /// stack size share an engine, and the epoch ticker ticks them all.
    stack_engines: StackEngines,
    pub(crate) config: EngineConfig,
    modules: Mutex<HashMap<[u8; 32], Weak<ModuleInner>>>,
    cache: Option<ArtifactCache>,
    ticker_stop: Arc<AtomicBool>,
}

/// A wasmtime engine for one Wasm stack size: wasmtime fixes the stack per engine, so a
/// function with its own `wasm.stack` runs its instances in an engine of that size.
pub(crate) struct StackEngine {
    pub(crate) wasmtime: wasmtime::Engine,
    linker: Linker<StoreState>,
    /// Live instances across all engines, under `max_instances`.
    pub(crate) slots: Arc<InstanceSlots>,
}

type StackEngines = Arc<Mutex<HashMap<usize, Weak<StackEngine>>>>;

/// The wasmtime settings every engine shares (artifacts move between engines that
/// differ only in stack size and allocator).
fn wasmtime_config(config: &EngineConfig, stack: usize) -> Config {
    let mut wt = Config::new();
    wt.wasm_component_model(true)
        .cranelift_opt_level(OptLevel::Speed)
        .consume_fuel(config.fuel_metering)
        .epoch_interruption(true)
        .max_wasm_stack(stack)
        // Unused (no async calls), but wasmtime refuses a Wasm stack larger than it.
        .async_stack_size(stack.max(2 << 20));
    wt
}

fn new_stack_engine(wt: &Config, slots: Arc<InstanceSlots>) -> Result<StackEngine> {
    let wasmtime = wasmtime::Engine::new(wt).map_err(|e| Error::Runtime(format!("{e:#}")))?;
    Ok(StackEngine {
        linker: Linker::new(&wasmtime),
        wasmtime,
        slots,
    })
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Engine {
    /// Creates an engine with `limits` as defaults (see [`EngineConfig`] for more).
    pub fn new(config: impl Into<EngineConfig>) -> Result<Self> {
        let mut config: EngineConfig = config.into();
        config.defaults.stack = round_stack(config.defaults.stack)?;
        config.ceilings.stack = round_stack(config.ceilings.stack)?;
        if config.defaults.stack > config.ceilings.stack {
            return Err(Error::InvalidLimit(
                "wasm.stack default is above its ceiling".into(),
            ));
        }
        let mut wt = wasmtime_config(&config, config.defaults.stack);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .max_memory_size(config.ceilings.memory as usize)
            // Release a recycled memory with madvise rather than zeroing it in place:
            // measured, a 1 MiB keep-resident memset made instantiate+drop 21 µs
            // instead of 3 µs, more than the page faults it saves on the first call.
            .linear_memory_keep_resident(0)
            .table_keep_resident(0);
        wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let main = Arc::new(new_stack_engine(
            &wt,
            InstanceSlots::new(config.max_instances),
        )?);
        let cache =
            match &config.artifact_dir {
                Some(dir) => Some(ArtifactCache::open(dir, &main.wasmtime).map_err(|e| {
                    Error::Runtime(format!("artifact cache {}: {e}", dir.display()))
                })?),
                None => None,
            };
        let stack_engines: StackEngines = Arc::new(Mutex::new(HashMap::from([(
            config.defaults.stack,
            Arc::downgrade(&main),
        )])));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(
            stack_engines.clone(),
            config.epoch_tick,
            ticker_stop.clone(),
        );
        Ok(Engine {
            inner: Arc::new(EngineInner {
                main,
                stack_engines,
                config,
                modules: Mutex::new(HashMap::new()),
                cache,
                ticker_stop,
            }),
        })
    }

    /// The configuration this engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The wasmtime engine for Wasm stacks of `stack` bytes, created on first use.
    ///
    /// Only the main engine pools instances: a pool reserves address space for every
    /// slot up front, too much to repeat per stack size. Other engines allocate
    /// instances on demand, which costs tens of microseconds per instance (one per
    /// partition per query).
    fn stack_engine(&self, stack: usize) -> Result<Arc<StackEngine>> {
        let existing = |engines: &HashMap<usize, Weak<StackEngine>>| {
            engines.get(&stack).and_then(Weak::upgrade)
        };
        if let Some(engine) = existing(&self.inner.stack_engines.lock()) {
            return Ok(engine);
        }
        // Built outside the lock, which the epoch ticker takes every tick.
        let mut wt = wasmtime_config(&self.inner.config, stack);
        wt.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        let built = Arc::new(new_stack_engine(&wt, self.inner.main.slots.clone())?);
        let mut engines = self.inner.stack_engines.lock();
        if let Some(engine) = existing(&engines) {
            return Ok(engine);
        }
        engines.retain(|_, e| e.strong_count() > 0);
        engines.insert(stack, Arc::downgrade(&built));
        tracing::debug!(
            stack,
            "started a wasmtime engine for a function's wasm.stack"
        );
        Ok(built)
    }

    /// Validates, compiles (or fetches from cache) and describes a component.
    ///
    /// A component is compiled once per process: loading the same bytes again returns
    /// the same [`Module`].
    pub fn load_component(&self, bytes: &[u8]) -> Result<Module> {
        Ok(self.load_component_traced(bytes)?.0)
    }

    /// As [`Engine::load_component`], also telling whether the on-disk artifact cache
    /// was used.
    pub fn load_component_traced(&self, bytes: &[u8]) -> Result<(Module, CacheOutcome)> {
        self.load_component_cancelable(bytes, None)
    }

    /// As [`Engine::load_component_traced`]; the component's own load-time code
    /// (`describe`, `info`) stops within one epoch tick once `cancel` is set.
    pub(crate) fn load_component_cancelable(
        &self,
        bytes: &[u8],
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<(Module, CacheOutcome)> {
        let inner = &self.inner;
        if bytes.len() > inner.config.max_module_size {
            return Err(Error::InvalidComponent(format!(
                "component is {} bytes, above the limit of {} bytes",
                bytes.len(),
                inner.config.max_module_size
            )));
        }
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(existing) = inner.modules.lock().get(&hash).and_then(Weak::upgrade) {
            return Ok((Module { inner: existing }, CacheOutcome::Loaded));
        }
        check_is_component(bytes)?;
        // Before compiling: a refused component costs a parse, not a compile (seconds
        // for an interpreter-sized one) and leaves no artifact behind.
        check_import_names(bytes)?;
        let hex_hash = hex::encode(hash);
        let (component, outcome) = self.compile(bytes, &hex_hash)?;
        let module = match self.describe(component, hash, cancel) {
            Ok(module) => Arc::new(module),
            Err(e) => {
                // Nothing can use a component that does not describe itself.
                self.remove_artifact(&hex_hash);
                return Err(e);
            }
        };
        inner.modules.lock().insert(hash, Arc::downgrade(&module));
        tracing::debug!(hash = %hex_hash, functions = module.functions.len(), ?outcome, "loaded component");
        Ok((Module { inner: module }, outcome))
    }

    /// Removes the cached artifact of module `hex_hash` (a module no function uses).
    pub(crate) fn remove_artifact(&self, hex_hash: &str) {
        if let Some(cache) = &self.inner.cache {
            if let Err(e) = cache.remove(hex_hash) {
                tracing::warn!(hash = hex_hash, "could not remove artifact: {e}");
            }
        }
    }

    /// Removes every cached artifact but those of `keep` (module hashes in hex), and
    /// artifacts an older wasmtime or configuration made; returns how many went.
    pub(crate) fn retain_artifacts(&self, keep: &std::collections::HashSet<String>) -> usize {
        let Some(cache) = &self.inner.cache else {
            return 0;
        };
        match cache.retain(keep) {
            Ok(removed) => removed,
            Err(e) => {
                tracing::warn!("could not sweep the artifact cache: {e}");
                0
            }
        }
    }

    fn compile(&self, bytes: &[u8], hex_hash: &str) -> Result<(Component, CacheOutcome)> {
        let inner = &self.inner;
        let compile = || {
            Component::new(&inner.main.wasmtime, bytes)
                .map_err(|e| Error::InvalidComponent(format!("{e:#}")))
        };
        let Some(cache) = &inner.cache else {
            return Ok((compile()?, CacheOutcome::Compiled));
        };
        let (artifact, rejected) = cache.get(hex_hash);
        if let Some(artifact) = artifact {
            // SAFETY: the artifact carries a MAC made with this cache's secret key, so it
            // is a file this engine configuration serialized itself, unmodified.
            match unsafe { Component::deserialize(&inner.main.wasmtime, &artifact) } {
                Ok(c) => return Ok((c, CacheOutcome::Loaded)),
                Err(e) => tracing::warn!(
                    hash = hex_hash,
                    "cached artifact unusable, recompiling: {e:#}"
                ),
            }
        }
        let component = compile()?;
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = cache.put(hex_hash, &artifact) {
                    tracing::warn!(hash = hex_hash, "could not cache artifact: {e}");
                }
            }
            Err(e) => tracing::warn!(hash = hex_hash, "could not serialize artifact: {e:#}"),
        }
        let outcome = if rejected {
            tracing::warn!(
                hash = hex_hash,
                "rejected a corrupt or foreign cached artifact"
            );
            CacheOutcome::Rejected
        } else {
            CacheOutcome::Compiled
        };
        Ok((component, outcome))
    }

    fn describe(
        &self,
        component: Component,
        hash: [u8; 32],
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<ModuleInner> {
        let inner = &self.inner;
        let component_type = component.component_type();
        let imports: Vec<(&str, ComponentItem)> = component_type
            .imports(&inner.main.wasmtime)
            .map(|(name, e)| (name, e.ty))
            .collect();
        // WIT `use` of the contract's own `types` interface is imported as an instance
        // of type definitions only: no capability. Anything else is refused.
        let granted = |(name, item): &(&str, ComponentItem)| {
            name.starts_with(TYPES_INTERFACE_PREFIX)
                && match item {
                    ComponentItem::ComponentInstance(i) => i
                        .exports(&inner.main.wasmtime)
                        .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))),
                    _ => false,
                }
        };
        let refused: Vec<String> = imports
            .iter()
            .filter(|i| !granted(i))
            .map(|(n, _)| n.to_string())
            .collect();
        if !refused.is_empty() {
            return Err(Error::ForbiddenImports { imports: refused });
        }
        let exports = || {
            let names: Vec<String> = component
                .component_type()
                .exports(&inner.main.wasmtime)
                .map(|(n, _)| n.to_string())
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        // `Ok(None)`: the component does not export that interface at all.
        let lookup = |iface: &str, func: &str| -> Result<Option<ComponentExportIndex>> {
            let Some(i) = component.get_export_index(None, iface) else {
                return Ok(None);
            };
            match component.get_export_index(Some(&i), func) {
                Some(f) => Ok(Some(f)),
                None => Err(Error::InvalidComponent(format!(
                    "its {iface} does not export `{func}` (exports: {}); build it with the wasmudf SDK",
                    exports()
                ))),
            }
        };
        let required = |iface: &str, func: &str, what: &str| -> Result<ComponentExportIndex> {
            lookup(iface, func)?.ok_or_else(|| {
                Error::InvalidComponent(format!(
                    "it does not export {iface}, which {what} need (exports: {}); build it with the wasmudf SDK",
                    exports()
                ))
            })
        };
        let describe_idx = required(GUEST_INTERFACE, "describe", "all components")?;
        let call_idx = lookup(SCALAR_INTERFACE, "call")?;
        let pre = inner
            .main
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::InvalidComponent(format!("{e:#}")))?;
        let limits = inner.config.defaults;
        let metered = inner.config.fuel_metering;
        let mut instance = GuestInstance::new(
            inner.main.clone(),
            &pre,
            Exports {
                call: call_idx,
                aggregate: None,
            },
            &limits,
            metered,
            "describe",
        )?;
        // One budget for all of the component's load-time code.
        instance.start_budget(&limits, cancel)?;
        let raw = instance.describe(describe_idx, &limits)?;
        let (mut functions, by_name) = read_description(raw, &inner.config)?;
        if functions.iter().any(|f| f.kind == FunctionKind::Scalar) {
            required(SCALAR_INTERFACE, "call", "scalar functions")?;
            instance.check_call_type()?;
        }
        let mut aggregate = None;
        if functions.iter().any(|f| f.kind == FunctionKind::Aggregate) {
            let exports = AggregateExports::find(|func| {
                required(AGGREGATE_INTERFACE, func, "aggregate functions")
            })?;
            exports.check_types(&mut instance)?;
            for (index, f) in functions.iter_mut().enumerate() {
                if f.kind == FunctionKind::Aggregate {
                    f.aggregate = Some(exports.info(&mut instance, index, &f.name, &limits)?);
                }
            }
            aggregate = Some(exports);
        }
        Ok(ModuleInner {
            hash,
            pre,
            stack_variants: Mutex::new(HashMap::new()),
            exports: Exports {
                call: call_idx,
                aggregate,
            },
            functions,
            by_name,
            engine: self.clone(),
        })
    }
}

/// The functions a component describes, checked: within the engine's ceilings (54000,
/// naming the limit), each signature valid, no name twice, at least one. Linear in
/// the number of functions; returns them with their index by name.
pub(crate) fn read_description(
    raw: Vec<WitSignature>,
    config: &EngineConfig,
) -> Result<(Vec<FunctionSignature>, HashMap<String, usize>)> {
    if raw.len() > config.max_functions_per_component {
        return Err(Error::ProgramLimit(format!(
            "the component describes {} functions, more than the server allows (max_functions_per_component = {})",
            raw.len(),
            config.max_functions_per_component
        )));
    }
    let bytes: usize = raw.iter().map(WitSignature::size_hint).sum();
    if bytes > config.max_description_size {
        return Err(Error::ProgramLimit(format!(
            "the component's description is {bytes} bytes, more than the server allows (max_description_size = {} bytes)",
            config.max_description_size
        )));
    }
    let mut functions = Vec::with_capacity(raw.len());
    let mut by_name = HashMap::with_capacity(raw.len());
    for w in raw {
        let sig = FunctionSignature::try_from(w)?;
        if by_name.insert(sig.name.clone(), functions.len()).is_some() {
            return Err(Error::InvalidDescription(format!(
                "function {} is described twice",
                sig.name
            )));
        }
        functions.push(sig);
    }
    if functions.is_empty() {
        return Err(Error::InvalidDescription(
            "the component describes no functions".into(),
        ));
    }
    Ok((functions, by_name))
}

fn spawn_epoch_ticker(engines: StackEngines, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = thread::Builder::new()
        .name("wasmudf-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(tick);
                for engine in engines.lock().values().filter_map(Weak::upgrade) {
                    engine.wasmtime.increment_epoch();
                }
            }
        });
    if let Err(e) = spawned {
        // Without the ticker deadlines never fire; fuel still bounds every call.
        tracing::error!("could not start the epoch thread: {e}");
    }
}

/// Refuses a component whose top-level imports name anything but the contract's
/// `types` interface, reading only the import section. Whether a `types` import
/// really carries types only is checked after compiling, on its component type.
fn check_import_names(bytes: &[u8]) -> Result<()> {
    use wasmparser::{Parser, Payload};
    let malformed = |e: wasmparser::BinaryReaderError| {
        Error::InvalidComponent(format!("malformed component: {e}"))
    };
    let mut refused = Vec::new();
    // Nesting depth: imports of nested components and modules are the component's
    // own business (they are satisfied inside it).
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let name = import.map_err(malformed)?.name.name;
                    if !name.starts_with(TYPES_INTERFACE_PREFIX) {
                        refused.push(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(Error::ForbiddenImports { imports: refused })
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

/// A compiled, described component. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    hash: [u8; 32],
    /// Instantiates in the main engine (the default stack size).
    pub(crate) pre: InstancePre<StoreState>,
    /// The module in engines of other stack sizes. Stack sizes are powers of two up
    /// to the ceiling (at most 15 of them), so this stays small without eviction.
    stack_variants: Mutex<HashMap<usize, Arc<StackVariant>>>,
    /// The contract's exports in `pre`'s component.
    exports: Exports,
    pub(crate) functions: Vec<FunctionSignature>,
    /// Index into `functions` by name: lookups stay constant-time however many
    /// functions a component describes.
    by_name: HashMap<String, usize>,
    pub(crate) engine: Engine,
}

/// The contract's exports in one compiled component. An index belongs to the
/// `Component` it was looked up in: a module moved to another engine looks them up anew.
#[derive(Clone, Copy)]
pub(crate) struct Exports {
    /// `scalar.call`, if the component has scalar functions.
    pub(crate) call: Option<ComponentExportIndex>,
    /// The `aggregate` interface, if the component describes aggregates.
    pub(crate) aggregate: Option<AggregateExports>,
}

/// A module compiled into the engine of a non-default stack size.
struct StackVariant {
    engine: Arc<StackEngine>,
    pre: InstancePre<StoreState>,
    exports: Exports,
}

impl ModuleInner {
    /// A fresh instance of this component under `limits`, with errors naming `function`.
    pub(crate) fn instantiate(&self, limits: &Limits, function: &str) -> Result<GuestInstance> {
        let engine = &self.engine.inner;
        let variant;
        let (stack_engine, pre, exports) = if limits.stack == engine.config.defaults.stack {
            (&engine.main, &self.pre, self.exports)
        } else {
            variant = self.stack_variant(limits.stack)?;
            (&variant.engine, &variant.pre, variant.exports)
        };
        GuestInstance::new(
            stack_engine.clone(),
            pre,
            exports,
            limits,
            engine.config.fuel_metering,
            function,
        )
    }

    /// This module in the engine for `stack`-byte Wasm stacks. The artifact moves by
    /// serializing the main engine's compilation: the engines differ only in stack size
    /// and allocator, which compiled code does not depend on.
    fn stack_variant(&self, stack: usize) -> Result<Arc<StackVariant>> {
        if let Some(v) = self.stack_variants.lock().get(&stack) {
            return Ok(v.clone());
        }
        // Prepared outside the lock: other sizes of this module need not wait for it.
        let engine = self.engine.stack_engine(stack)?;
        let failed = |e: wasmtime::Error| {
            Error::Runtime(format!("preparing a {stack}-byte wasm.stack: {e:#}"))
        };
        let artifact = self.pre.component().serialize().map_err(failed)?;
        // SAFETY: the artifact was serialized just now by this process from the main
        // engine's component, which it compiled itself or deserialized from its own
        // MAC-verified cache; wasmtime refuses it if the engines' settings differ.
        let component =
            unsafe { Component::deserialize(&engine.wasmtime, &artifact) }.map_err(failed)?;
        let pre = engine.linker.instantiate_pre(&component).map_err(failed)?;
        let find = |iface: &str, func: &str| {
            component
                .get_export_index(None, iface)
                .and_then(|i| component.get_export_index(Some(&i), func))
                .ok_or_else(|| {
                    Error::Runtime(format!(
                        "preparing a {stack}-byte wasm.stack: {iface} lost `{func}`"
                    ))
                })
        };
        let exports = Exports {
            call: self
                .exports
                .call
                .map(|_| find(SCALAR_INTERFACE, "call"))
                .transpose()?,
            aggregate: self
                .exports
                .aggregate
                .map(|_| AggregateExports::find(|func| find(AGGREGATE_INTERFACE, func)))
                .transpose()?,
        };
        let variant = Arc::new(StackVariant {
            engine,
            pre,
            exports,
        });
        // Another partition may have prepared it meanwhile: the first one is kept.
        Ok(self
            .stack_variants
            .lock()
            .entry(stack)
            .or_insert(variant)
            .clone())
    }
}

impl Module {
    /// Hex SHA-256 of the component bytes: the module's identity.
    pub fn hash(&self) -> String {
        hex::encode(self.inner.hash)
    }

    /// Every function the component describes.
    pub fn functions(&self) -> &[FunctionSignature] {
        &self.inner.functions
    }

    /// The description of one function.
    pub fn function(&self, name: &str) -> Result<&FunctionSignature> {
        Ok(&self.inner.functions[self.index_of(name)?])
    }

    /// The position of function `name` in [`Module::functions`].
    pub(crate) fn index_of(&self, name: &str) -> Result<usize> {
        self.inner
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::NoSuchFunction(name.to_string()))
    }

    /// Instantiates the component once under the default limits and drops the
    /// instance: the cost a query pays per partition before its first batch. Useful as
    /// a health check, and to measure instantiation alone.
    pub fn instantiate_once(&self) -> Result<()> {
        let defaults = self.inner.engine.inner.config.defaults;
        self.inner.instantiate(&defaults, "instantiate").map(drop)
    }
}
