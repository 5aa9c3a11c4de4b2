//! `INSERT / UPDATE / DELETE ... RETURNING`.
//!
//! DataFusion's planner refuses RETURNING, so the clause is taken off the statement
//! before it is planned. The table's writer keeps the rows the statement wrote (the
//! inserted rows, the new versions of updated ones, the deleted ones: [`WrittenRows`]),
//! and the RETURNING list is then planned as `SELECT <list> FROM <table>` with the
//! table's scan replaced by those rows: every expression a select list takes (`*`,
//! aliases, Wasm functions under their limits) works the same here.

use std::sync::Arc;

use datafusion::catalog::default_table_source::provider_as_source;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    FromTable, SelectItem, Statement, TableFactor, TableObject, TableWithJoins,
};

use crate::error::{Error, Result};
use crate::sql::output::CommandTag;
use crate::store::written::WrittenRows;

/// A RETURNING clause taken off its statement.
pub(crate) struct Returning {
    /// `SELECT <list> FROM <table> [AS alias]`.
    pub(crate) query: String,
    /// The statement's tag (its count is that of the rows returned).
    pub(crate) tag: CommandTag,
    /// The target's name as the statement wrote it: its scan is replaced.
    table: String,
}

/// Takes the RETURNING clause off an INSERT, UPDATE or DELETE; `None` without one.
pub(crate) fn take_returning(statement: &mut DfStatement) -> Result<Option<Returning>> {
    let DfStatement::Statement(s) = statement else {
        return Ok(None);
    };
    let (items, from, table, tag) = match s.as_mut() {
        Statement::Insert(insert) => {
            let Some(items) = insert.returning.take() else {
                return Ok(None);
            };
            let TableObject::TableName(name) = &insert.table else {
                return Err(Error::NotSupported("INSERT into a table function".into()));
            };
            // The alias names the table for RETURNING only (the planner takes none).
            let from = match insert.table_alias.take() {
                Some(alias) => format!("{name} AS {}", alias.alias),
                None => name.to_string(),
            };
            (items, from, name.to_string(), CommandTag::Insert(0))
        }
        Statement::Update(update) => {
            let Some(items) = update.returning.take() else {
                return Ok(None);
            };
            if update.from.is_some() {
                return Err(Error::NotSupported("UPDATE ... FROM with RETURNING".into()));
            }
            let (from, table) = relation(&update.table)?;
            (items, from, table, CommandTag::Update(0))
        }
        Statement::Delete(delete) => {
            let Some(items) = delete.returning.take() else {
                return Ok(None);
            };
            if delete.using.is_some() {
                return Err(Error::NotSupported(
                    "DELETE ... USING with RETURNING".into(),
                ));
            }
            let tables = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            let [target] = tables.as_slice() else {
                return Err(Error::NotSupported("DELETE of more than one table".into()));
            };
            let (from, table) = relation(target)?;
            (items, from, table, CommandTag::Delete(0))
        }
        _ => return Ok(None),
    };
    let list = items
        .iter()
        .map(SelectItem::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some(Returning {
        query: format!("SELECT {list} FROM {from}"),
        tag,
        table,
    }))
}

/// The FROM text and table name of an UPDATE's or DELETE's target.
fn relation(target: &TableWithJoins) -> Result<(String, String)> {
    match &target.relation {
        TableFactor::Table { name, .. } if target.joins.is_empty() => {
            Ok((target.relation.to_string(), name.to_string()))
        }
        other => Err(Error::NotSupported(format!(
            "RETURNING from {}",
            crate::error::log_text(&other.to_string())
        ))),
    }
}

impl Returning {
    /// `plan` (the RETURNING query's) reading `written` in place of the table.
    pub(crate) fn over(&self, plan: LogicalPlan, written: &WrittenRows) -> DfResult<LogicalPlan> {
        let rows = written.take();
        let target = datafusion::common::TableReference::from(self.table.as_str());
        plan.transform_up(|node| match node {
            LogicalPlan::TableScan(mut scan)
                if scan.table_name.table() == target.table()
                    && (target.schema().is_none()
                        || scan.table_name.schema() == target.schema()) =>
            {
                let schema = scan.source.schema();
                let table = MemTable::try_new(schema, vec![rows.clone()])?;
                scan.source = provider_as_source(Arc::new(table));
                Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
            }
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}
