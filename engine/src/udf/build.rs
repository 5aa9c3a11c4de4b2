//! Wasm functions as DataFusion functions: one [`Overload`] per SQL signature, checked
//! against what the component declares, and the UDFs that serve them.

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF, Volatility};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::udf::aggregate::WasmAggregateUdf;
use crate::udf::bind;
use crate::udf::scalar::{Overload, WasmScalarUdf};
use crate::wasm::engine::{Engine, Module};
use crate::wasm::limits::LimitOverrides;
use crate::wasm::signature::{FunctionKind, NullHandling};

/// How a function is exposed to SQL; every `None` keeps what the component declares.
#[derive(Clone, Debug, Default)]
pub struct UdfOptions {
    /// SQL name (default: the component's name for it).
    pub name: Option<String>,
    /// Limit overrides, checked against the engine's ceilings.
    pub limits: LimitOverrides,
    /// Volatility to plan with.
    pub volatility: Option<Volatility>,
    /// Null handling to apply.
    pub null_handling: Option<NullHandling>,
}

impl Engine {
    /// Registers every function of `module` in `ctx` under its own name, with the
    /// engine's default limits and the component's declared volatility and nulls, and
    /// makes `ctx` scope its queries ([`Engine::scope_queries`]).
    pub fn register(&self, ctx: &SessionContext, module: &Module) -> Result<()> {
        self.scope_queries(ctx);
        for f in module.functions() {
            match f.kind {
                FunctionKind::Scalar => {
                    ctx.register_udf(module.scalar_udf(&f.name, &UdfOptions::default())?)
                }
                FunctionKind::Aggregate => {
                    ctx.register_udaf(module.aggregate_udf(&f.name, &UdfOptions::default())?)
                }
            }
        }
        Ok(())
    }

    /// Makes every query planned in `ctx` (plain `ctx.sql(...)` included) bind its Wasm
    /// functions to a scope of its own: guest instances are reused batch after batch
    /// within the query and never across queries, and aggregates see the session's
    /// `wasm.*` settings. [`Engine::register`] does this; call it when you register
    /// functions yourself ([`Module::scalar_udf`], [`Module::aggregate_udf`]). To
    /// cancel a query, plan it through [`Engine::query`].
    pub fn scope_queries(&self, ctx: &SessionContext) {
        bind::add_rule(&mut ctx.state_ref().write());
    }
}

impl Module {
    /// One overload of a SQL function: function `export` of this component with
    /// `options`, checked (kind, volatility, limits under the ceilings).
    pub(crate) fn overload(
        &self,
        export: &str,
        options: &UdfOptions,
        kind: FunctionKind,
    ) -> Result<Overload> {
        let index = self.index_of(export)?;
        let sig = &self.inner.functions[index];
        if sig.kind != kind {
            return Err(Error::InvalidDescription(format!(
                "function {export} is {}, not {}",
                kind_name(sig.kind),
                kind_name(kind)
            )));
        }
        if let Some(v) = options.volatility {
            if volatility_rank(v) < volatility_rank(sig.volatility) {
                return Err(Error::InvalidDescription(format!(
                    "function {export} is {} in its component and cannot be declared {}",
                    volatility_name(sig.volatility),
                    volatility_name(v)
                )));
            }
        }
        let config = &self.inner.engine.inner.config;
        config
            .defaults
            .with_overrides(&options.limits, &config.ceilings)?;
        let name = options.name.as_deref().unwrap_or(export);
        Ok(Overload::new(self.inner.clone(), index, name, options))
    }

    /// A DataFusion scalar UDF that runs function `export` of this component.
    pub fn scalar_udf(&self, export: &str, options: &UdfOptions) -> Result<ScalarUDF> {
        let overload = self.overload(export, options, FunctionKind::Scalar)?;
        Ok(ScalarUDF::new_from_impl(WasmScalarUdf::new(
            &overload.name.clone(),
            vec![Arc::new(overload)],
        )))
    }

    /// A DataFusion aggregate UDF that runs aggregate `export` of this component:
    /// grouped (one guest call per batch for all groups), plain, DISTINCT, FILTER and
    /// window forms.
    pub fn aggregate_udf(&self, export: &str, options: &UdfOptions) -> Result<AggregateUDF> {
        let overload = self.overload(export, options, FunctionKind::Aggregate)?;
        Ok(AggregateUDF::new_from_impl(WasmAggregateUdf::new(
            &overload.name.clone(),
            vec![Arc::new(overload)],
        )))
    }
}

/// "a scalar function" or "an aggregate", for messages.
pub(crate) fn kind_name(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Scalar => "a scalar function",
        FunctionKind::Aggregate => "an aggregate",
    }
}

pub(crate) fn volatility_rank(v: Volatility) -> u8 {
    match v {
        Volatility::Immutable => 0,
        Volatility::Stable => 1,
        Volatility::Volatile => 2,
    }
}

/// SQL spelling of a volatility.
pub(crate) fn volatility_name(v: Volatility) -> &'static str {
    match v {
        Volatility::Immutable => "IMMUTABLE",
        Volatility::Stable => "STABLE",
        Volatility::Volatile => "VOLATILE",
    }
}
