//! Host bindings benchmark: the hand-kept WIT mirror (`engine/src/wasm/abi.rs`, included
//! here as it is) against the bindings `wasmtime::component::bindgen!` generates for the
//! same contract, with `ownership: Owning` (its default) and `ownership: Borrowing`,
//! calling the same component export on the same Arrow buffers in the same run.
//!
//! Each path does what the engine's call does: argument columns built from Arrow
//! buffers, one `scalar.call`, the returned values buffer made an Arrow buffer again.
//! No fuel, no limits: only the bindings differ.
//!
//! `cargo bench -p wasmudf-engine --bench bindings`

// A bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::buffer::Buffer;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

/// The engine's own mirror, compiled into this bench unchanged.
#[path = "../src/wasm/abi.rs"]
#[allow(unreachable_pub)]
mod abi;

mod owning {
    wasmtime::component::bindgen!({ path: "wit/udf.wit", world: "scalar-udfs" });
}

mod borrowing {
    wasmtime::component::bindgen!({
        path: "wit/udf.wit",
        world: "scalar-udfs",
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

const BATCH: usize = 8192;

/// Median time of `f`, after warm-up, over enough iterations to be stable.
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..20 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 15
        || (start.elapsed() < Duration::from_millis(500) && samples.len() < 5000)
    {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

/// One instance of `file`, and the index of function `name` in its `describe`.
fn instantiate(engine: &Engine, file: &str, name: &str) -> (Store<()>, owning::ScalarUdfs, u32) {
    let component = Component::new(engine, std::fs::read(file).unwrap()).unwrap();
    let mut store = Store::new(engine, ());
    let linker = Linker::new(engine);
    let bindings = owning::ScalarUdfs::instantiate(&mut store, &component, &linker).unwrap();
    let sigs = bindings
        .wasmudf_udf_guest()
        .call_describe(&mut store)
        .unwrap();
    let index = sigs.iter().position(|s| s.name == name).unwrap() as u32;
    (store, bindings, index)
}

/// The three ways to call `scalar.call` on one column, each with its own store.
struct Paths<'a> {
    mirror: Box<dyn FnMut() + 'a>,
    owning: Box<dyn FnMut() + 'a>,
    borrowing: Box<dyn FnMut() + 'a>,
}

/// Median of each path over rounds that take the three in turn, so drift in the
/// machine's speed falls on all three alike.
fn measure(mut paths: Paths<'_>) -> [Duration; 3] {
    let mut rounds: [Vec<Duration>; 3] = Default::default();
    for _ in 0..7 {
        rounds[0].push(time(&mut paths.mirror));
        rounds[1].push(time(&mut paths.owning));
        rounds[2].push(time(&mut paths.borrowing));
    }
    rounds.map(|mut r| {
        r.sort();
        r[r.len() / 2]
    })
}

/// An argument column's buffers, borrowed from an Arrow array.
#[derive(Clone, Copy)]
enum Values<'a> {
    U64s(&'a [u64]),
    Bytes(&'a [u8]),
}

/// The three paths calling function `name` of component `file` on one column.
fn paths<'a>(
    engine: &Engine,
    file: &str,
    name: &str,
    offsets: &'a [i32],
    values: Values<'a>,
    check: &'a dyn Fn(&Buffer),
) -> Paths<'a> {
    let rows = BATCH as u32;
    let component = Component::new(engine, std::fs::read(file).unwrap()).unwrap();
    let (_, _, f) = instantiate(engine, file, name);

    // The mirror: the engine's typed function, borrowed argument slices.
    let mut store = Store::new(engine, ());
    let instance = Linker::new(engine)
        .instantiate(&mut store, &component)
        .unwrap();
    let scalar = instance
        .get_export_index(&mut store, None, "wasmudf:udf/scalar@0.1.0")
        .unwrap();
    let call = instance
        .get_export_index(&mut store, Some(&scalar), "call")
        .unwrap();
    type CallFn<'a> = wasmtime::component::TypedFunc<
        (u32, u32, &'a [abi::ColumnRef<'a>]),
        (Result<abi::ColumnOut, abi::GuestError>,),
    >;
    let call: CallFn<'_> = instance.get_typed_func(&mut store, call).unwrap();
    let mirror = Box::new(move || {
        let args = [abi::ColumnRef {
            len: rows,
            validity: None,
            offsets,
            values: match values {
                Values::U64s(v) => abi::BufferRef::U64s(v),
                Values::Bytes(v) => abi::BufferRef::Bytes(v),
            },
        }];
        let (out,) = call.call(&mut store, (f, rows, &args)).unwrap();
        check(&black_box(match out.unwrap().values {
            abi::BufferOut::U64s(v) => Buffer::from_vec(v),
            abi::BufferOut::Bytes(v) => Buffer::from_vec(v),
            _ => panic!("unexpected buffer"),
        }));
    });

    // bindgen!, owned argument types: the column's buffers are copied into Vecs first.
    let (mut store, bindings, _) = instantiate(engine, file, name);
    let owning = Box::new(move || {
        use owning::wasmudf::udf::types::{Buffer as B, Column};
        let args = [Column {
            len: rows,
            validity: None,
            offsets: offsets.to_vec(),
            values: match values {
                Values::U64s(v) => B::U64s(v.to_vec()),
                Values::Bytes(v) => B::Bytes(v.to_vec()),
            },
        }];
        let out = bindings
            .wasmudf_udf_scalar()
            .call_call(&mut store, f, rows, &args)
            .unwrap();
        check(&black_box(match out.unwrap().values {
            B::U64s(v) => Buffer::from_vec(v),
            B::Bytes(v) => Buffer::from_vec(v),
            _ => panic!("unexpected buffer"),
        }));
    });

    // bindgen!, borrowed argument types: slices straight out of the Arrow buffers.
    let mut store = Store::new(engine, ());
    let bindings =
        borrowing::ScalarUdfs::instantiate(&mut store, &component, &Linker::new(engine)).unwrap();
    let borrowing = Box::new(move || {
        use borrowing::wasmudf::udf::types::{BufferParam, BufferResult, ColumnParam};
        let args = [ColumnParam {
            len: rows,
            validity: None,
            offsets,
            values: match values {
                Values::U64s(v) => BufferParam::U64s(v),
                Values::Bytes(v) => BufferParam::Bytes(v),
            },
        }];
        let out = bindings
            .wasmudf_udf_scalar()
            .call_call(&mut store, f, rows, &args)
            .unwrap();
        check(&black_box(match out.unwrap().values {
            BufferResult::U64s(v) => Buffer::from_vec(v),
            BufferResult::Bytes(v) => Buffer::from_vec(v),
            _ => panic!("unexpected buffer"),
        }));
    });
    Paths {
        mirror,
        owning,
        borrowing,
    }
}

fn main() {
    let engine = Engine::new(&Config::new()).unwrap();
    let ints = Int64Array::from_iter_values((0..BATCH as i64).map(|i| i * 7 - 3));
    let int_check = |out: &Buffer| assert_eq!(out.typed_data::<i64>()[1], ints.value(1) + 1);
    let text = StringArray::from_iter_values((0..BATCH).map(|i| format!("row {i:0>12}")));
    let text_check = |out: &Buffer| assert_eq!(&out.as_slice()[..4], b"ROW ");
    let cases = [
        (
            "add_one_batch (i64)",
            paths(
                &engine,
                wasmudf_udfs::MATH,
                "add_one_batch",
                &[],
                Values::U64s(ints.values().inner().typed_data()),
                &int_check,
            ),
        ),
        (
            "upper_ascii (16-byte text)",
            paths(
                &engine,
                wasmudf_udfs::STRINGS,
                "upper_ascii",
                text.offsets().inner().inner().typed_data(),
                Values::Bytes(text.values().as_slice()),
                &text_check,
            ),
        ),
    ];
    println!("# wasmudf host bindings benchmark\n");
    println!("One {BATCH}-row batch through `scalar.call`, no fuel or limits: the median of 7");
    println!("rounds that take the three paths in turn, each round the median of its samples.\n");
    println!("| function | abi.rs mirror | bindgen! Owning | bindgen! Borrowing | Owning/mirror | Borrowing/mirror |");
    println!("|---|---|---|---|---|---|");
    for (name, paths) in cases {
        let [mirror, owning, borrowing] = measure(paths);
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            us(mirror),
            us(owning),
            us(borrowing),
            ratio(owning, mirror),
            ratio(borrowing, mirror),
        );
    }
}
