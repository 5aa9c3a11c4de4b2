//! The `aggregate` interface of a component: its export indices, checked against the
//! contract's types once at load time, and what each aggregate declares about itself.

use wasmtime::component::{ComponentExportIndex, ResourceAny};

use crate::error::{guest_text, Error};
use crate::wasm::abi::{AggregateInfo, ColumnOut, ColumnRef, EmitTo, GuestError, WitType};
use crate::wasm::instance::GuestInstance;
use crate::wasm::limits::Limits;
use crate::wasm::signature::AggregateShape;

/// The `aggregate` interface of a component.
#[derive(Clone, Copy)]
pub(crate) struct AggregateExports {
    pub(crate) info: ComponentExportIndex,
    pub(crate) new: ComponentExportIndex,
    pub(crate) update: ComponentExportIndex,
    pub(crate) retract: ComponentExportIndex,
    pub(crate) merge: ComponentExportIndex,
    pub(crate) state: ComponentExportIndex,
    pub(crate) evaluate: ComponentExportIndex,
}

/// `update`, `retract` and `merge`: the resource, columns, group indices, total groups.
pub(crate) type RowsCall<'a> = (ResourceAny, &'a [ColumnRef<'a>], &'a [u32], u32);
pub(crate) type UnitResult = (Result<(), GuestError>,);
pub(crate) type StateResult = (Result<Vec<ColumnOut>, GuestError>,);
pub(crate) type EvaluateResult = (Result<ColumnOut, GuestError>,);
pub(crate) type InfoResult = (Result<AggregateInfo, GuestError>,);

impl AggregateExports {
    /// The interface's exports, each found by `need` from its name.
    pub(crate) fn find(
        need: impl Fn(&str) -> Result<ComponentExportIndex, Error>,
    ) -> Result<Self, Error> {
        Ok(AggregateExports {
            info: need("info")?,
            new: need("[constructor]groups")?,
            update: need("[method]groups.update")?,
            retract: need("[method]groups.retract")?,
            merge: need("[method]groups.merge")?,
            state: need("[method]groups.state")?,
            evaluate: need("[method]groups.evaluate")?,
        })
    }

    /// Checks every export against the contract's types, once, at load time.
    pub(crate) fn check_types(&self, instance: &mut GuestInstance) -> Result<(), Error> {
        instance.check_type::<(u32,), InfoResult>(self.info, "aggregate.info")?;
        instance.check_type::<(u32,), (ResourceAny,)>(self.new, "groups constructor")?;
        for (export, what) in [
            (self.update, "groups.update"),
            (self.retract, "groups.retract"),
            (self.merge, "groups.merge"),
        ] {
            instance.check_type::<RowsCall<'static>, UnitResult>(export, what)?;
        }
        instance.check_type::<(ResourceAny, EmitTo), StateResult>(self.state, "groups.state")?;
        instance
            .check_type::<(ResourceAny, EmitTo), EvaluateResult>(self.evaluate, "groups.evaluate")
    }

    /// Reads what aggregate number `index` (named `name`) declares about itself, within
    /// the instance's current budget.
    pub(crate) fn info(
        &self,
        instance: &mut GuestInstance,
        index: usize,
        name: &str,
        limits: &Limits,
    ) -> Result<AggregateShape, Error> {
        let index = u32::try_from(index)
            .map_err(|_| Error::InvalidDescription("too many functions".into()))?;
        let (info,) =
            instance.invoke_within::<(u32,), InfoResult>(self.info, (index,), limits, name)?;
        let info = info.map_err(|e| {
            Error::InvalidDescription(format!(
                "aggregate {name}: info failed: {}",
                guest_text(&e.message)
            ))
        })?;
        if info.state.is_empty() {
            return Err(Error::InvalidDescription(format!(
                "aggregate {name} declares no state columns"
            )));
        }
        let state = info
            .state
            .iter()
            .map(WitType::to_arrow)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::InvalidDescription(format!("aggregate {name} state: {e}")))?;
        Ok(AggregateShape {
            state,
            retract: info.retract,
        })
    }
}
