//! Tiered compilation: which machine code a module's new instances start from.
//!
//! A component the size of an interpreter (CPython, SpiderMonkey: 12–18 MB) takes
//! Cranelift, wasmtime's optimizing compiler, 7–10 s on two cores, and CREATE FUNCTION
//! would wait for all of it. Winch, wasmtime's baseline compiler, compiles the same
//! component about five times faster into slower code. So a large component is first
//! compiled with Winch and described at once; Cranelift compiles it again on a
//! background thread, and its code replaces the baseline for every instance created
//! afterwards (instances already running keep theirs until they are dropped, at the
//! latest when their query ends). Only optimized code is cached on disk: a restart
//! loads it and never runs the baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use wasmtime::component::InstancePre;

use crate::wasm::engine::{Exports, StackEngine};
use crate::wasm::instance::StoreState;

/// Which compiler made the code a module's new instances run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeTier {
    /// Cranelift's optimized code (compiled here or loaded from the artifact cache).
    Optimized,
    /// Winch's baseline code, while Cranelift compiles the module in the background.
    Baseline,
    /// Baseline code for as long as the module is loaded: the optimizing compile is
    /// switched off ([`crate::EngineConfig::background_optimize`]) or failed (the
    /// server log says why).
    BaselineOnly,
}

impl CodeTier {
    /// The name `wasm.modules.code` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeTier::Optimized => "optimized",
            CodeTier::Baseline => "baseline",
            CodeTier::BaselineOnly => "baseline only",
        }
    }
}

/// A compiled component ready to instantiate in one engine.
pub(crate) struct Code {
    pub(crate) engine: Arc<StackEngine>,
    pub(crate) pre: InstancePre<StoreState>,
    /// The contract's exports in `pre`'s component.
    pub(crate) exports: Exports,
}

/// A module's current code, replaced once when the optimizing compile finishes.
pub(crate) struct TieredCode {
    state: Mutex<TierState>,
    changed: Condvar,
}

struct TierState {
    current: Arc<Code>,
    tier: CodeTier,
}

impl TieredCode {
    pub(crate) fn new(code: Code, tier: CodeTier) -> Self {
        TieredCode {
            state: Mutex::new(TierState {
                current: Arc::new(code),
                tier,
            }),
            changed: Condvar::new(),
        }
    }

    /// The code a new instance should start from.
    pub(crate) fn current(&self) -> Arc<Code> {
        self.state.lock().current.clone()
    }

    pub(crate) fn tier(&self) -> CodeTier {
        self.state.lock().tier
    }

    /// Ends the baseline tier: with the optimized code, or (`None`) without it.
    pub(crate) fn finish(&self, optimized: Option<Code>) {
        let mut state = self.state.lock();
        match optimized {
            Some(code) => {
                state.current = Arc::new(code);
                state.tier = CodeTier::Optimized;
            }
            None => state.tier = CodeTier::BaselineOnly,
        }
        self.changed.notify_all();
    }

    /// Whether the optimized code is in place, waiting at most `timeout` for it;
    /// `false` at once if it will never come.
    pub(crate) fn wait_optimized(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut state = self.state.lock();
        while state.tier == CodeTier::Baseline {
            if self.changed.wait_until(&mut state, until).timed_out() {
                break;
            }
        }
        state.tier == CodeTier::Optimized
    }
}
