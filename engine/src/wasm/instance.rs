//! One sandboxed guest instance: its store, limits, and the batch call.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, TypedFunc,
};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::error::{guest_text, Error};
use crate::wasm::abi::{ColumnOut, ColumnRef, GuestError, WitSignature};
use crate::wasm::engine::{Exports, StackEngine};
use crate::wasm::limits::Limits;

/// Per-store state: the limits of the current call and what stopped it, if anything.
pub(crate) struct StoreState {
    memory_limit: u64,
    /// Linear memory the guest holds now (what an aggregate's states cost).
    memory_used: u64,
    memory_requested: Option<u64>,
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
}

/// Raised from the memory limiter so the trap can be told apart from others.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded")]
struct MemoryLimitHit;

/// Raised from the epoch callback.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("deadline reached")]
    Timeout,
    #[error("canceled")]
    Canceled,
}

impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            self.memory_requested = Some(desired as u64);
            return Err(MemoryLimitHit.into());
        }
        self.memory_used = self.memory_used.max(desired as u64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a guest with more than a million is hostile.
        Ok(desired <= 1 << 20)
    }
}

/// The contract's `call` export, with borrowed arguments.
type CallFn<'a> = TypedFunc<(u32, u32, &'a [ColumnRef<'a>]), (Result<ColumnOut, GuestError>,)>;

/// A live instance of a component, used by one thread at a time.
///
/// Any error other than the guest's own `udf-error` poisons it: the caller must drop it.
pub(crate) struct GuestInstance {
    store: Store<StoreState>,
    instance: Instance,
    /// The contract's exports in this instance's component.
    exports: Exports,
    metered: bool,
    /// The Wasm stack calls get (the store's engine's `max_wasm_stack`).
    stack: usize,
    /// Keeps the store's engine registered with the epoch ticker while the instance
    /// lives, so its deadlines keep firing.
    _engine: Arc<StackEngine>,
    /// This instance's place under the engine's `max_instances`.
    _slot: InstanceSlot,
}

/// Counts live instances across every wasmtime engine (the pool bounds only the main
/// engine's; the per-stack-size engines allocate on demand).
#[derive(Debug)]
pub(crate) struct InstanceSlots {
    live: AtomicU32,
    max: u32,
}

impl InstanceSlots {
    pub(crate) fn new(max: u32) -> Arc<Self> {
        Arc::new(InstanceSlots {
            live: AtomicU32::new(0),
            max,
        })
    }

    /// A slot, or `None` when all `max` are taken.
    fn take(self: &Arc<Self>) -> Option<InstanceSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| InstanceSlot(self.clone()))
    }
}

/// One taken slot, given back when dropped.
struct InstanceSlot(Arc<InstanceSlots>);

impl Drop for InstanceSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Native stack a guest call needs beyond its Wasm stack: wasmtime's entry and exit
/// trampolines, argument lowering and result lifting, the host's own frames.
const HOST_STACK_MARGIN: usize = 256 << 10;

/// Runs `f`, a call into a guest with a Wasm stack of `stack` bytes, where the native
/// stack has room for it: on a fresh segment if the calling thread has too little left.
/// wasmtime places its stack limit `stack` bytes below the stack pointer at entry,
/// whatever the thread really has; without the room, deep guest recursion would
/// overflow the thread (a crash) instead of trapping.
fn with_native_stack<R>(stack: usize, f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(
        stack.saturating_add(HOST_STACK_MARGIN),
        stack.saturating_add(2 * HOST_STACK_MARGIN),
        f,
    )
}

impl GuestInstance {
    /// Instantiates `pre` with `limits` (instantiation itself runs under them too).
    pub(crate) fn new(
        engine: Arc<StackEngine>,
        pre: &InstancePre<StoreState>,
        exports: Exports,
        limits: &Limits,
        metered: bool,
        function: &str,
    ) -> Result<Self, Error> {
        let too_many = || Error::TooManyInstances {
            function: function.to_string(),
            limit: engine.slots.max,
        };
        let slot = engine.slots.take().ok_or_else(too_many)?;
        let mut store = Store::new(
            &engine.wasmtime,
            StoreState {
                memory_limit: limits.memory,
                memory_used: 0,
                memory_requested: None,
                deadline: Instant::now() + limits.timeout,
                cancel: None,
            },
        );
        store.limiter(|s| s);
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            if state
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(Interrupted::Canceled.into());
            }
            if Instant::now() >= state.deadline {
                return Err(Interrupted::Timeout.into());
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);
        if metered {
            store
                .set_fuel(limits.fuel)
                .map_err(|e| Error::Runtime(e.to_string()))?;
        }
        let instance =
            with_native_stack(limits.stack, || pre.instantiate(&mut store)).map_err(|e| {
                // The pool also bounds core instances, memories and tables.
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some()
                {
                    too_many()
                } else {
                    classify(e, &store, limits.stack, limits, function)
                }
            })?;
        Ok(GuestInstance {
            store,
            instance,
            exports,
            metered,
            stack: limits.stack,
            _engine: engine,
            _slot: slot,
        })
    }

    /// Starts a call's budget, its deadline running from `started`.
    fn prepare(
        &mut self,
        limits: &Limits,
        cancel: Option<&Arc<AtomicBool>>,
        started: Instant,
    ) -> Result<(), Error> {
        let state = self.store.data_mut();
        state.memory_limit = limits.memory;
        state.deadline = started + limits.timeout;
        // A pooled instance serves one query, so its flag is the same on every call:
        // cloning it again would write the count every partition's calls share.
        let same = match (&state.cancel, cancel) {
            (Some(had), Some(new)) => Arc::ptr_eq(had, new),
            (None, None) => true,
            _ => false,
        };
        if !same {
            state.cancel = cancel.cloned();
        }
        self.store.set_epoch_deadline(1);
        if self.metered {
            self.store
                .set_fuel(limits.fuel)
                .map_err(|e| Error::Runtime(e.to_string()))?;
        }
        Ok(())
    }

    /// Starts one budget (fuel, deadline, memory, cancel flag) for the calls that
    /// follow until the next budget: load-time work (`describe` and every aggregate's
    /// `info`) shares one, so a component cannot multiply its limits by its function count.
    pub(crate) fn start_budget(
        &mut self,
        limits: &Limits,
        cancel: Option<&Arc<AtomicBool>>,
    ) -> Result<(), Error> {
        self.prepare(limits, cancel, Instant::now())
    }

    /// Calls `guest.describe`, within the budget [`Self::start_budget`] started.
    pub(crate) fn describe(
        &mut self,
        describe: ComponentExportIndex,
        limits: &Limits,
    ) -> Result<Vec<WitSignature>, Error> {
        let func: TypedFunc<(), (Vec<WitSignature>,)> = self
            .instance
            .get_typed_func(&mut self.store, describe)
            .map_err(|e| {
                Error::InvalidComponent(format!("`describe` does not match the contract: {e:#}"))
            })?;
        let (sigs,) = self.enter(limits, "describe", |store| func.call(store, ()))?;
        Ok(sigs)
    }

    /// The contract's exports in this instance's component.
    pub(crate) fn exports(&self) -> &Exports {
        &self.exports
    }

    /// Checks that the `call` export has the contract's type.
    pub(crate) fn check_call_type(&mut self) -> Result<(), Error> {
        self.call_fn().map(|_| ())
    }

    fn call_fn<'a>(&mut self) -> Result<CallFn<'a>, Error> {
        let call = self.exports.call.ok_or_else(|| {
            Error::InvalidComponent("the component does not export `scalar.call`".into())
        })?;
        self.typed(call, "`call`")
    }

    /// Export `export` (named `what` in errors) as a function of type `P -> R`.
    fn typed<P, R>(
        &mut self,
        export: ComponentExportIndex,
        what: &str,
    ) -> Result<TypedFunc<P, R>, Error>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, export)
            .map_err(|e| {
                Error::InvalidComponent(format!("{what} does not match the contract: {e:#}"))
            })
    }

    /// Checks that export `export` (named `what` in errors) has type `P -> R`.
    pub(crate) fn check_type<P, R>(
        &mut self,
        export: ComponentExportIndex,
        what: &str,
    ) -> Result<(), Error>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.typed::<P, R>(export, &format!("`{what}`")).map(drop)
    }

    /// Calls export `export` of type `P -> R` under `budget`, with errors naming
    /// `function`. Any error poisons the instance, as for [`GuestInstance::call`].
    pub(crate) fn invoke<P, R>(
        &mut self,
        export: ComponentExportIndex,
        params: P,
        budget: CallBudget<'_>,
        function: &str,
    ) -> Result<R, Error>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.prepare(budget.limits, budget.cancel, budget.started)?;
        self.invoke_within(export, params, budget.limits, function)
    }

    /// As [`Self::invoke`], within the budget already started.
    pub(crate) fn invoke_within<P, R>(
        &mut self,
        export: ComponentExportIndex,
        params: P,
        limits: &Limits,
        function: &str,
    ) -> Result<R, Error>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self.typed::<P, R>(export, "an export")?;
        self.enter(limits, function, |store| func.call(store, params))
    }

    /// Runs `call` into the guest on a native stack with room for this instance's Wasm
    /// stack, mapping a trap or limit to its error.
    fn enter<R>(
        &mut self,
        limits: &Limits,
        function: &str,
        call: impl FnOnce(&mut Store<StoreState>) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        let store = &mut self.store;
        with_native_stack(self.stack, || call(store))
            .map_err(|e| classify(e, &self.store, self.stack, limits, function))
    }

    /// The Wasm stack this instance's calls get, fixed when it was made.
    pub(crate) fn stack(&self) -> usize {
        self.stack
    }

    /// Fuel the calls since the last budget started consumed (0 when not metered).
    pub(crate) fn fuel_consumed(&self, limits: &Limits) -> u64 {
        if !self.metered {
            return 0;
        }
        limits
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(limits.fuel))
    }

    /// Bytes of linear memory the guest holds.
    pub(crate) fn memory_used(&self) -> u64 {
        self.store.data().memory_used
    }

    /// Runs one batch through function number `index`.
    ///
    /// `Ok(Err(_))` is the guest refusing its input (the instance stays usable);
    /// `Err(_)` is a trap or limit (the instance is poisoned).
    pub(crate) fn call(
        &mut self,
        index: u32,
        rows: u32,
        args: &[ColumnRef<'_>],
        budget: CallBudget<'_>,
        function: &str,
    ) -> Result<Result<ColumnOut, GuestError>, Error> {
        let limits = budget.limits;
        self.prepare(limits, budget.cancel, budget.started)?;
        // The typed function is checked against the export type; the lifetimes of the
        // borrowed arguments only need to outlive this call.
        let func = self.call_fn()?;
        let (result,) = self.enter(limits, function, |store| {
            func.call(store, (index, rows, args))
        })?;
        Ok(result)
    }
}

/// What one call may spend: the limits, the query's cancel flag, and when the call
/// started (the deadline runs from there; the caller's meter read that clock).
#[derive(Clone, Copy)]
pub(crate) struct CallBudget<'a> {
    pub limits: &'a Limits,
    pub cancel: Option<&'a Arc<AtomicBool>>,
    pub started: Instant,
}

/// Maps a wasmtime error to the limit or trap that caused it (`stack`: the instance's).
fn classify(
    err: wasmtime::Error,
    store: &Store<StoreState>,
    stack: usize,
    limits: &Limits,
    function: &str,
) -> Error {
    let function = function.to_string();
    if err.downcast_ref::<MemoryLimitHit>().is_some() {
        return Error::MemoryLimit {
            function,
            limit: limits.memory,
            requested: store.data().memory_requested.unwrap_or(0),
        };
    }
    if let Some(i) = err.downcast_ref::<Interrupted>() {
        return match i {
            Interrupted::Timeout => Error::Timeout {
                function,
                limit: limits.timeout,
            },
            Interrupted::Canceled => Error::Canceled { function },
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::FuelExhausted {
            function,
            limit: limits.fuel,
        },
        Some(Trap::StackOverflow) => Error::StackOverflow {
            function,
            limit: stack,
        },
        Some(trap) => Error::Trap {
            function,
            trap: trap.to_string(),
        },
        // Not a plain trap: the error chain may quote the component (its symbol names),
        // so it is guest text.
        None => Error::Trap {
            function,
            trap: guest_text(&format!("{err:#}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceSlots;

    #[test]
    fn slots_bound_live_instances_and_come_back() {
        let slots = InstanceSlots::new(2);
        let a = slots.take().expect("first");
        let b = slots.take().expect("second");
        assert!(slots.take().is_none(), "a third is refused");
        drop(a);
        let c = slots.take().expect("a freed slot is reused");
        drop((b, c));
        assert_eq!(slots.live.load(std::sync::atomic::Ordering::Acquire), 0);
    }
}
