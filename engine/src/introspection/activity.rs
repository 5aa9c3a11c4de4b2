//! `pg_stat_activity`: one row per session, with what it runs now and, beyond
//! PostgreSQL's columns, the Wasm function it is inside and the guest time so far.
//! A role that is not an administrator sees other roles' statements as
//! `<insufficient privilege>`, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::Result as DfResult;

use crate::introspection::stats_view::{micros, millis, timestamptz};
use crate::introspection::{ActivityRow, DatabaseView};
use crate::store::CATALOG_NAME;

pub(crate) fn activity_schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let time = |n: &str| Field::new(n, timestamptz(), true);
    Arc::new(Schema::new(vec![
        text("datname"),
        Field::new("pid", DataType::Int32, false),
        Field::new("leader_pid", DataType::Int32, true),
        text("usename"),
        text("application_name"),
        text("client_addr"),
        time("backend_start"),
        time("xact_start"),
        time("query_start"),
        time("state_change"),
        text("wait_event_type"),
        text("wait_event"),
        text("state"),
        text("query"),
        text("backend_type"),
        text("wasm_function"),
        Field::new("wasm_guest_time", DataType::Float64, true),
    ]))
}

pub(crate) fn activity_batch(db: &dyn DatabaseView, caller: &str) -> DfResult<RecordBatch> {
    let rows = &db.activity();
    let admin = db.is_admin(caller);
    let visible = |r: &ActivityRow| admin || r.user == caller;
    let text = |f: &dyn Fn(&ActivityRow) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(f)))
    };
    let private = |f: &dyn Fn(&ActivityRow) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(|r| {
            if visible(r) {
                f(r)
            } else {
                None
            }
        })))
    };
    let time = |f: &dyn Fn(&ActivityRow) -> Option<std::time::SystemTime>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from_iter(rows.iter().map(|r| {
                if visible(r) {
                    f(r).map(micros)
                } else {
                    None
                }
            }))
            .with_timezone("+00:00"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|_| Some(CATALOG_NAME.to_string())),
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.pid))),
        Arc::new(Int32Array::from(vec![None; rows.len()])),
        text(&|r| Some(r.user.clone())),
        private(&|r| Some(r.application_name.clone())),
        text(&|_| None),
        time(&|r| Some(r.backend_start)),
        time(&|r| r.xact_start),
        time(&|r| r.query_start),
        time(&|r| r.state_change),
        text(&|_| None),
        text(&|_| None),
        private(&|r| Some(r.state.to_string())),
        text(&|r| {
            Some(if visible(r) {
                r.query.clone()
            } else {
                "<insufficient privilege>".to_string()
            })
        }),
        text(&|_| Some("client backend".to_string())),
        private(&|r| r.wasm_function.clone()),
        Arc::new(Float64Array::from_iter(
            rows.iter()
                .map(|r| r.wasm_guest.filter(|_| visible(r)).map(millis)),
        )),
    ];
    Ok(RecordBatch::try_new(activity_schema(), columns)?)
}
