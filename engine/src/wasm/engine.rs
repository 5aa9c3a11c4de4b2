//! The wasmtime engines (one per Wasm stack size in use) and loaded modules.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Linker};
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, Strategy};

use crate::error::{Error, Result};
use crate::wasm::abi::{WitSignature, AGGREGATE_INTERFACE, GUEST_INTERFACE, SCALAR_INTERFACE};
use crate::wasm::aggregate_exports::AggregateExports;
use crate::wasm::cache::{ArtifactCache, CacheOutcome};
use crate::wasm::instance::{GuestInstance, InstanceSlots, StoreState};
use crate::wasm::interfaces::ComponentInterfaces;
use crate::wasm::limits::{round_stack, Limits};
use crate::wasm::signature::{FunctionKind, FunctionSignature};
use crate::wasm::tier::{Code, CodeTier, TieredCode};

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
    /// Components of at least this many bytes are first compiled with the baseline
    /// compiler (Winch: ~5x faster to compile, slower code), so loading returns in
    /// seconds; the optimizing compile then runs in the background and replaces it
    /// (see [`CodeTier`]). `None` compiles everything optimized up front. Where Winch
    /// is not available (it targets x86-64), everything compiles optimized.
    pub baseline_compile_min_size: Option<usize>,
    /// Whether a baseline-compiled module gets its optimizing compile in the
    /// background. `false` keeps baseline code for good: it saves that compile's CPU
    /// (seconds of every core per large component) for slower calls, and tests use it
    /// to run baseline code on purpose.
    pub background_optimize: bool,
    /// Whether Wasm calls are counted (PostgreSQL's `track_functions`): the figures of
    /// `wasm.function_stats`, the metrics, EXPLAIN ANALYZE's and `pg_stat_activity`'s
    /// Wasm columns. Counting costs a few atomic additions per batch.
    pub track_functions: bool,
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
            // Below ~1 MB Cranelift takes well under a second: not worth two compiles.
            baseline_compile_min_size: Some(1 << 20),
            background_optimize: true,
            track_functions: true,
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
    /// The baseline (Winch) engine for the default stack size, if the configuration
    /// asks for one and this target has Winch. Allocates instances on demand: they
    /// live only until the optimized code arrives.
    baseline: Option<Arc<StackEngine>>,
    /// Every live engine by stack size and compiler, the main and baseline ones
    /// included: functions that share both share an engine, and the epoch ticker ticks
    /// them all.
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
    /// Whether it compiles with Winch (baseline code) rather than Cranelift.
    baseline: bool,
    linker: Linker<StoreState>,
    /// Live instances across all engines, under `max_instances`.
    pub(crate) slots: Arc<InstanceSlots>,
}

/// Engines by (Wasm stack size, baseline compiler).
type StackEngines = Arc<Mutex<HashMap<(usize, bool), Weak<StackEngine>>>>;

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

/// The settings of an engine other than the main one: instances on demand, and Winch,
/// wasmtime's baseline compiler, if `baseline`.
fn on_demand_config(config: &EngineConfig, stack: usize, baseline: bool) -> Config {
    let mut wt = wasmtime_config(config, stack);
    if baseline {
        wt.strategy(Strategy::Winch)
            // Winch has no tail calls; a component that uses them compiles optimized.
            .wasm_tail_call(false);
    }
    wt.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    wt
}

/// The Winch engine for first, fast compiles of large components, or `None` where
/// Winch cannot run (another architecture, a CPU without the features it needs).
fn baseline_engine(config: &EngineConfig, slots: Arc<InstanceSlots>) -> Option<Arc<StackEngine>> {
    let wt = on_demand_config(config, config.defaults.stack, true);
    match new_stack_engine(&wt, true, slots) {
        Ok(engine) => Some(Arc::new(engine)),
        Err(e) => {
            tracing::info!("no baseline compiler here ({e}); every component compiles optimized");
            None
        }
    }
}

fn new_stack_engine(wt: &Config, baseline: bool, slots: Arc<InstanceSlots>) -> Result<StackEngine> {
    let wasmtime = wasmtime::Engine::new(wt).map_err(|e| Error::Runtime(format!("{e:#}")))?;
    Ok(StackEngine {
        linker: Linker::new(&wasmtime),
        wasmtime,
        baseline,
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
            false,
            InstanceSlots::new(config.max_instances),
        )?);
        let baseline = config
            .baseline_compile_min_size
            .and_then(|_| baseline_engine(&config, main.slots.clone()));
        let cache =
            match &config.artifact_dir {
                Some(dir) => Some(ArtifactCache::open(dir, &main.wasmtime).map_err(|e| {
                    Error::Runtime(format!("artifact cache {}: {e}", dir.display()))
                })?),
                None => None,
            };
        let mut engines = HashMap::from([((config.defaults.stack, false), Arc::downgrade(&main))]);
        if let Some(baseline) = &baseline {
            engines.insert((config.defaults.stack, true), Arc::downgrade(baseline));
        }
        let stack_engines: StackEngines = Arc::new(Mutex::new(engines));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(
            stack_engines.clone(),
            config.epoch_tick,
            ticker_stop.clone(),
        );
        Ok(Engine {
            inner: Arc::new(EngineInner {
                main,
                baseline,
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

    /// The wasmtime engine for Wasm stacks of `stack` bytes and code of the baseline
    /// compiler or not, created on first use.
    ///
    /// Only the main engine pools instances: a pool reserves address space for every
    /// slot up front, too much to repeat per stack size. Other engines allocate
    /// instances on demand, which costs tens of microseconds per instance (one per
    /// partition per query).
    fn stack_engine(&self, stack: usize, baseline: bool) -> Result<Arc<StackEngine>> {
        let key = (stack, baseline);
        let existing = |engines: &HashMap<(usize, bool), Weak<StackEngine>>| {
            engines.get(&key).and_then(Weak::upgrade)
        };
        if let Some(engine) = existing(&self.inner.stack_engines.lock()) {
            return Ok(engine);
        }
        // Built outside the lock, which the epoch ticker takes every tick.
        let wt = on_demand_config(&self.inner.config, stack, baseline);
        let built = Arc::new(new_stack_engine(
            &wt,
            baseline,
            self.inner.main.slots.clone(),
        )?);
        let mut engines = self.inner.stack_engines.lock();
        if let Some(engine) = existing(&engines) {
            return Ok(engine);
        }
        engines.retain(|_, e| e.strong_count() > 0);
        engines.insert(key, Arc::downgrade(&built));
        tracing::debug!(
            stack,
            baseline,
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
        // Before compiling: a refused component costs a parse, not a compile (seconds
        // for an interpreter-sized one) and leaves no artifact behind.
        ComponentInterfaces::read(bytes)?.check_imports()?;
        let hex_hash = hex::encode(hash);
        let compiled = self.compile(bytes, &hex_hash)?;
        let (outcome, tier) = (compiled.outcome, compiled.tier);
        let module = match self.describe(compiled, hash, cancel) {
            Ok(module) => Arc::new(module),
            Err(e) => {
                // Nothing can use a component that does not describe itself.
                self.remove_artifact(&hex_hash);
                return Err(e);
            }
        };
        // Only a component that describes itself is worth the optimizing compile.
        if tier == CodeTier::Baseline {
            if inner.config.background_optimize {
                self.optimize_in_background(&module, bytes.to_vec(), hex_hash.clone());
            } else {
                module.code.finish(None);
            }
        }
        inner.modules.lock().insert(hash, Arc::downgrade(&module));
        tracing::debug!(hash = %hex_hash, functions = module.functions.len(), ?outcome, code = tier.as_str(), "loaded component");
        Ok((Module { inner: module }, outcome))
    }

    /// Compiles `module`'s component with Cranelift on a thread of its own, caches the
    /// artifact and makes the module's new instances use it.
    fn optimize_in_background(&self, module: &Arc<ModuleInner>, bytes: Vec<u8>, hex_hash: String) {
        let engine = self.clone();
        let weak = Arc::downgrade(module);
        let spawned = thread::Builder::new()
            .name("wasmudf-optimize".into())
            .spawn(move || {
                let started = Instant::now();
                let compiled = Component::new(&engine.inner.main.wasmtime, &bytes);
                // A module dropped meanwhile needs neither the code nor its artifact.
                let Some(module) = weak.upgrade() else {
                    return;
                };
                let code = compiled
                    .map_err(|e| Error::InvalidComponent(format!("{e:#}")))
                    .and_then(|component| {
                        engine.cache_artifact(&component, &hex_hash);
                        module.code_in(&engine.inner.main, component)
                    });
                match code {
                    Ok(code) => {
                        module.code.finish(Some(code));
                        tracing::info!(
                            hash = %hex_hash,
                            seconds = started.elapsed().as_secs_f64(),
                            "optimized code replaces the baseline"
                        );
                    }
                    Err(e) => {
                        module.code.finish(None);
                        tracing::warn!(hash = %hex_hash, "optimizing compile failed; the module keeps its baseline code: {e}");
                    }
                }
            });
        if let Err(e) = spawned {
            module.code.finish(None);
            tracing::warn!(hash = %hex::encode(module.hash), "could not start the optimizing compile: {e}");
        }
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

    /// Machine code for `bytes`: the cached optimized artifact, else a baseline
    /// compile for a large component (optimized later, in the background), else an
    /// optimized compile, cached.
    fn compile(&self, bytes: &[u8], hex_hash: &str) -> Result<Compiled> {
        let inner = &self.inner;
        let optimized = |component, outcome| Compiled {
            component,
            engine: inner.main.clone(),
            tier: CodeTier::Optimized,
            outcome,
        };
        let (artifact, rejected) = match &inner.cache {
            Some(cache) => cache.get(hex_hash),
            None => (None, false),
        };
        if let Some(artifact) = artifact {
            // SAFETY: the artifact carries a MAC made with this cache's secret key, so it
            // is a file this engine configuration serialized itself, unmodified.
            match unsafe { Component::deserialize(&inner.main.wasmtime, &artifact) } {
                Ok(c) => return Ok(optimized(c, CacheOutcome::Loaded)),
                Err(e) => tracing::warn!(
                    hash = hex_hash,
                    "cached artifact unusable, recompiling: {e:#}"
                ),
            }
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
        let large = inner
            .config
            .baseline_compile_min_size
            .is_some_and(|min| bytes.len() >= min);
        if let Some(baseline) = inner.baseline.as_ref().filter(|_| large) {
            match Component::new(&baseline.wasmtime, bytes) {
                Ok(component) => {
                    return Ok(Compiled {
                        component,
                        engine: baseline.clone(),
                        tier: CodeTier::Baseline,
                        outcome,
                    })
                }
                // Features Winch lacks (tail calls, exceptions, GC); Cranelift decides.
                Err(e) => tracing::debug!(
                    hash = hex_hash,
                    "baseline compile failed, compiling optimized: {e:#}"
                ),
            }
        }
        let component = Component::new(&inner.main.wasmtime, bytes)
            .map_err(|e| Error::InvalidComponent(format!("{e:#}")))?;
        self.cache_artifact(&component, hex_hash);
        Ok(optimized(component, outcome))
    }

    /// Writes an optimized component's artifact to the cache, if there is one.
    fn cache_artifact(&self, component: &Component, hex_hash: &str) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = cache.put(hex_hash, &artifact) {
                    tracing::warn!(hash = hex_hash, "could not cache artifact: {e}");
                }
            }
            Err(e) => tracing::warn!(hash = hex_hash, "could not serialize artifact: {e:#}"),
        }
    }

    fn describe(
        &self,
        compiled: Compiled,
        hash: [u8; 32],
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<ModuleInner> {
        let inner = &self.inner;
        let Compiled {
            component,
            engine,
            tier,
            ..
        } = compiled;
        let wasmtime = &engine.wasmtime;
        let component_type = component.component_type();
        let imports: Vec<(&str, ComponentItem)> = component_type
            .imports(wasmtime)
            .map(|(name, e)| (name, e.ty))
            .collect();
        // WIT `use` of the contract's own `types` interface is imported as an instance
        // of type definitions only: no capability. Anything else is refused.
        let granted = |(name, item): &(&str, ComponentItem)| {
            ComponentInterfaces::granted(name)
                && match item {
                    ComponentItem::ComponentInstance(i) => i
                        .exports(wasmtime)
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
                .exports(wasmtime)
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
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::InvalidComponent(format!("{e:#}")))?;
        let limits = inner.config.defaults;
        let metered = inner.config.fuel_metering;
        let mut instance = GuestInstance::new(
            engine.clone(),
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
        let code = Code {
            engine,
            pre,
            exports: Exports {
                call: call_idx,
                aggregate,
            },
        };
        Ok(ModuleInner {
            hash,
            code: TieredCode::new(code, tier),
            stack_variants: Mutex::new(HashMap::new()),
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

/// A compiled, described component. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    pub(crate) inner: Arc<ModuleInner>,
}

pub(crate) struct ModuleInner {
    hash: [u8; 32],
    /// What instances with the default stack size start from: the baseline code of a
    /// large component until its optimized code replaces it.
    code: TieredCode,
    /// The module in engines of other stack sizes, made from its current code.
    /// Stack sizes are powers of two up to the ceiling (at most 15 of them), so this
    /// stays small without eviction.
    stack_variants: Mutex<HashMap<usize, Arc<StackVariant>>>,
    pub(crate) functions: Vec<FunctionSignature>,
    /// Index into `functions` by name: lookups stay constant-time however many
    /// functions a component describes.
    by_name: HashMap<String, usize>,
    pub(crate) engine: Engine,
}

/// A component just compiled (or loaded from the cache), not yet described.
struct Compiled {
    component: Component,
    /// The engine it was compiled for: the main one, or the baseline one.
    engine: Arc<StackEngine>,
    tier: CodeTier,
    outcome: CacheOutcome,
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
type StackVariant = Code;

impl ModuleInner {
    /// A fresh instance of this component under `limits`, with errors naming `function`.
    pub(crate) fn instantiate(&self, limits: &Limits, function: &str) -> Result<GuestInstance> {
        let engine = &self.engine.inner;
        let code = if limits.stack == engine.config.defaults.stack {
            self.code.current()
        } else {
            self.stack_variant(limits.stack)?
        };
        GuestInstance::new(
            code.engine.clone(),
            &code.pre,
            code.exports,
            limits,
            engine.config.fuel_metering,
            function,
        )
    }

    /// `component`, this module compiled anew for `engine`, ready to instantiate: its
    /// exports are looked up again, as indices belong to one `Component`.
    fn code_in(&self, engine: &Arc<StackEngine>, component: Component) -> Result<Code> {
        let failed = |what: String| Error::Runtime(format!("preparing module code: {what}"));
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(|e| failed(format!("{e:#}")))?;
        let find = |iface: &str, func: &str| {
            component
                .get_export_index(None, iface)
                .and_then(|i| component.get_export_index(Some(&i), func))
                .ok_or_else(|| failed(format!("{iface} lost `{func}`")))
        };
        let like = self.code.current().exports;
        let exports = Exports {
            call: like
                .call
                .map(|_| find(SCALAR_INTERFACE, "call"))
                .transpose()?,
            aggregate: like
                .aggregate
                .map(|_| AggregateExports::find(|func| find(AGGREGATE_INTERFACE, func)))
                .transpose()?,
        };
        Ok(Code {
            engine: engine.clone(),
            pre,
            exports,
        })
    }

    /// This module in the engine for `stack`-byte Wasm stacks. The artifact moves by
    /// serializing the module's current code: the engines differ only in stack size
    /// and allocator, which compiled code does not depend on. A variant made from
    /// baseline code is made again once the optimized code is in.
    fn stack_variant(&self, stack: usize) -> Result<Arc<StackVariant>> {
        let current = self.code.current();
        let baseline = current.engine.baseline;
        let fresh = |v: &&Arc<StackVariant>| v.engine.baseline == baseline;
        if let Some(v) = self.stack_variants.lock().get(&stack).filter(fresh) {
            return Ok(v.clone());
        }
        // Prepared outside the lock: other sizes of this module need not wait for it.
        let failed = |e: wasmtime::Error| {
            Error::Runtime(format!("preparing a {stack}-byte wasm.stack: {e:#}"))
        };
        let engine = self.engine.stack_engine(stack, baseline)?;
        let artifact = current.pre.component().serialize().map_err(failed)?;
        // SAFETY: the artifact was serialized just now by this process from the
        // module's component, which it compiled itself or deserialized from its own
        // MAC-verified cache; wasmtime refuses it if the engines' settings differ.
        let component =
            unsafe { Component::deserialize(&engine.wasmtime, &artifact) }.map_err(failed)?;
        let variant = Arc::new(self.code_in(&engine, component)?);
        // Another partition may have prepared it meanwhile: the first one of this
        // code's tier is kept.
        let mut variants = self.stack_variants.lock();
        let kept = variants.entry(stack).or_insert_with(|| variant.clone());
        if kept.engine.baseline != baseline {
            *kept = variant;
        }
        Ok(kept.clone())
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

    /// Which compiler made the code new instances of this module run.
    pub fn code_tier(&self) -> CodeTier {
        self.inner.code.tier()
    }

    /// Waits at most `timeout` for the module's optimized code (see [`CodeTier`]);
    /// returns whether new instances now run it.
    pub fn wait_optimized(&self, timeout: Duration) -> bool {
        self.inner.code.wait_optimized(timeout)
    }

    /// Instantiates the component once under the default limits and drops the
    /// instance: the cost a query pays per partition before its first batch. Useful as
    /// a health check, and to measure instantiation alone.
    pub fn instantiate_once(&self) -> Result<()> {
        let defaults = self.inner.engine.inner.config.defaults;
        self.inner.instantiate(&defaults, "instantiate").map(drop)
    }
}
