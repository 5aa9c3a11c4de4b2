//! The in-process target: statements go to the engine's [`Session`], results are
//! rendered with the engine's PostgreSQL text format.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio::sync::Mutex;
use wasmudf_engine::datafusion::error::DataFusionError;
use wasmudf_engine::{
    collect, copy_header, copy_lines, pg_field_text, Database, DatabaseConfig, Output, Session,
};

use crate::render::{column_type, copy_rows, split_copy_in, SqlError};

/// One database for a file's connections; [`InProcess::restart`] closes it and opens
/// the data directory again.
pub struct InProcess {
    config: DatabaseConfig,
    state: Mutex<State>,
}

struct State {
    db: Option<Database>,
    /// Every connection's session slot, emptied on restart so no session keeps the
    /// old database (and its catalog lock) alive.
    slots: Vec<Weak<Mutex<Option<Session>>>>,
}

impl InProcess {
    /// Opens a database in `data_dir` reading modules from `modules_dir`.
    pub async fn open(data_dir: PathBuf, modules_dir: PathBuf) -> Result<Arc<Self>, String> {
        let mut config = DatabaseConfig::new(data_dir);
        config.modules_dir = Some(modules_dir);
        // Several partitions even on small machines, so plans split work as in production.
        config.target_partitions = Some(4);
        let db = Database::open(config.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(InProcess {
            config,
            state: Mutex::new(State {
                db: Some(db),
                slots: Vec::new(),
            }),
        }))
    }

    /// A new connection (its own session, made on first use).
    pub async fn connect(self: &Arc<Self>) -> Conn {
        let slot = Arc::new(Mutex::new(None));
        self.state.lock().await.slots.push(Arc::downgrade(&slot));
        Conn {
            shared: self.clone(),
            slot,
        }
    }

    /// Closes the database (every session included) and opens it again.
    pub async fn restart(&self) -> Result<(), String> {
        let mut state = self.state.lock().await;
        for slot in state.slots.drain(..).filter_map(|w| w.upgrade()) {
            *slot.lock().await = None;
        }
        state.db = None;
        let db = Database::open(self.config.clone())
            .await
            .map_err(|e| format!("restart: {e}"))?;
        state.db = Some(db);
        Ok(())
    }

    async fn session(&self) -> Result<Session, SqlError> {
        let state = self.state.lock().await;
        let db = state
            .db
            .as_ref()
            .ok_or_else(|| SqlError::runner("database is closed"))?;
        Ok(db.session("wasmudf"))
    }
}

/// One connection of the in-process target.
pub struct Conn {
    shared: Arc<InProcess>,
    slot: Arc<Mutex<Option<Session>>>,
}

#[async_trait]
impl AsyncDB for Conn {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let mut slot = self.slot.lock().await;
        if slot.is_none() {
            // Register again: a restart drained the list.
            self.shared
                .state
                .lock()
                .await
                .slots
                .push(Arc::downgrade(&self.slot));
            *slot = Some(self.shared.session().await?);
        }
        let Some(session) = slot.as_ref() else {
            return Err(SqlError::runner("no session"));
        };
        let (sql, copy_data) = match split_copy_in(sql) {
            Some((statement, data)) => (statement, Some(data)),
            None => (sql, None),
        };
        let mut statements = session.parse(sql).map_err(|e| SqlError::from_df(&e))?;
        // Same rule as the extended protocol, so both targets accept the same files.
        if statements.len() != 1 {
            return Err(SqlError::new(
                "42601",
                "a record must hold exactly one statement".into(),
            ));
        }
        let statement = statements.remove(0);
        match session
            .run(statement)
            .await
            .map_err(|e| SqlError::from_df(&e))?
        {
            Output::Command(tag) => Ok(DBOutput::StatementComplete(tag.rows().unwrap_or(0))),
            Output::Rows(stream) | Output::Fetch(stream) | Output::Written { rows: stream, .. } => {
                let format = session.text_format();
                let schema = stream.schema();
                let batches = collect(stream).await.map_err(|e| SqlError::from_df(&e))?;
                let types = schema
                    .fields()
                    .iter()
                    .map(|f| column_type(f.data_type()))
                    .collect();
                let mut rows = Vec::new();
                for batch in &batches {
                    let columns = batch
                        .columns()
                        .iter()
                        .zip(schema.fields())
                        .map(|(c, f)| pg_field_text(f, c.as_ref(), &format))
                        .collect::<Result<Vec<_>, DataFusionError>>()
                        .map_err(|e| SqlError::from_df(&e))?;
                    for r in 0..batch.num_rows() {
                        rows.push(
                            columns
                                .iter()
                                .map(|c| crate::render::cell(c[r].as_deref()))
                                .collect(),
                        );
                    }
                }
                Ok(DBOutput::Rows { types, rows })
            }
            // The record's own lines after the statement are the data (up to `\.`).
            Output::CopyIn(copy) => {
                let data = copy_data.unwrap_or_default();
                let rows = session
                    .copy_in(&copy, data.as_bytes())
                    .await
                    .map_err(|e| SqlError::from_df(&e))?;
                Ok(DBOutput::StatementComplete(rows))
            }
            // What a client would receive, one row per line.
            Output::CopyOut { format, rows } => {
                let schema = rows.schema();
                let batches = collect(rows).await.map_err(|e| SqlError::from_df(&e))?;
                let mut text = String::new();
                if format.header {
                    text.push_str(&copy_header(&schema, &format));
                }
                for batch in &batches {
                    for line in copy_lines(batch, &format).map_err(|e| SqlError::from_df(&e))? {
                        text.push_str(&line);
                    }
                }
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Text],
                    rows: copy_rows(&text),
                })
            }
            // In process there are no protocol-level prepared statements to name.
            Output::Deallocate(name) => Err(SqlError::new(
                "26000",
                format!("prepared statement \"{name}\" does not exist"),
            )),
            other => Err(SqlError::runner(format!("unexpected output {other:?}"))),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "inprocess"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &SqlError) -> Option<String> {
        err.sqlstate.clone()
    }
}
