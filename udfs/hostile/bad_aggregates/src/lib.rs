//! Hostile aggregates: each must fail its query with its own clear error and leave
//! the server serving.
//!
//! - `trap_in_merge(bigint)`: traps when partial states are merged (multi-partition
//!   plans only);
//! - `lying_state(bigint)`: returns state columns one row longer than asked for;
//! - `state_hog(bigint)`: every row grows its group's state by 256 KiB, without bound;
//! - `spin_update(bigint)`: never returns from `update` (deadlines and cancellation).

use wasmudf::{
    aggregate, error, Aggregate, AggregateFunction, Buffer, Column, Emit, Function,
    GroupsAggregate, Output, SqlType, UdfError, Volatility,
};

#[aggregate]
#[derive(Default)]
struct TrapInMerge {
    n: i64,
}

impl Aggregate for TrapInMerge {
    type Args<'a> = (i64,);
    type Output = i64;

    fn update(&mut self, _: (i64,)) {
        self.n += 1;
    }

    fn merge(&mut self, _other: Self) {
        panic!("merge exploded");
    }

    fn finish(&self) -> i64 {
        self.n
    }
}

#[aggregate]
#[derive(Default)]
struct StateHog {
    blob: Vec<u8>,
}

impl Aggregate for StateHog {
    type Args<'a> = (i64,);
    type Output = i64;

    fn update(&mut self, _: (i64,)) {
        self.blob.extend(std::iter::repeat_n(7u8, 256 << 10));
    }

    fn merge(&mut self, other: Self) {
        self.blob.extend(other.blob);
    }

    fn finish(&self) -> i64 {
        self.blob.len() as i64
    }
}

#[aggregate]
#[derive(Default)]
struct SpinUpdate {
    n: i64,
}

impl Aggregate for SpinUpdate {
    type Args<'a> = (i64,);
    type Output = i64;

    fn update(&mut self, _: (i64,)) {
        loop {
            self.n = std::hint::black_box(self.n.wrapping_add(1));
        }
    }

    fn merge(&mut self, other: Self) {
        self.n += other.n;
    }

    fn finish(&self) -> i64 {
        self.n
    }
}

/// Counts rows, but its state says there is one more group than asked for.
#[derive(Default)]
struct LyingState {
    counts: Vec<i64>,
}

impl GroupsAggregate for LyingState {
    fn update(&mut self, _args: &[Column], groups: &[u32], total: usize) -> Result<(), UdfError> {
        self.counts.resize(total.max(self.counts.len()), 0);
        for &g in groups {
            *self
                .counts
                .get_mut(g as usize)
                .ok_or_else(|| error("bad group"))? += 1;
        }
        Ok(())
    }

    fn merge(&mut self, states: &[Column], groups: &[u32], total: usize) -> Result<(), UdfError> {
        let counts = states
            .first()
            .ok_or_else(|| error("no state"))?
            .reader::<i64>(groups.len())?;
        self.counts.resize(total.max(self.counts.len()), 0);
        for (i, &g) in groups.iter().enumerate() {
            self.counts[g as usize] += counts.value(i);
        }
        Ok(())
    }

    fn state(&mut self, emit: Emit) -> Result<Vec<Column>, UdfError> {
        let n = emit.take(&mut self.counts).len();
        Ok(vec![Column {
            len: n as u32 + 1,
            validity: None,
            offsets: vec![],
            values: Buffer::U64s(vec![1; n + 1]),
        }])
    }

    fn evaluate(&mut self, emit: Emit) -> Result<Column, UdfError> {
        let counts = emit.take(&mut self.counts);
        Output::from_values(counts.len(), counts.iter().copied()).finish()
    }
}

mod lying_state {
    use super::*;

    pub const FUNCTION: Function = Function::Aggregate(AggregateFunction {
        name: "lying_state",
        params: || vec![i64::data_type()],
        returns: i64::data_type,
        state: || vec![i64::data_type()],
        strict: || true,
        retract: false,
        volatility: Volatility::Immutable,
        new: || Box::new(LyingState::default()),
    });
}

wasmudf::export!(trap_in_merge, state_hog, spin_update, lying_state);
