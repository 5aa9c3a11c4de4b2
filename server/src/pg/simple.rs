//! The simple query protocol, and the wire response for a statement's outcome that
//! both protocols send.

use std::fmt::Debug;
use std::sync::Mutex;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{CopyResponse, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use wasmudf_engine::datafusion;
use wasmudf_engine::{log_text, CommandTag, Error, Output, TextFormat, TransactionState};

use crate::pg::copy::{copy_out, PendingCopy};
use crate::pg::{encode, lock, wire_status, QueryHandler, RunningStatement};

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    /// pgwire's simple query, starting its transaction-status tracking from the
    /// session's own state. pgwire moves the status by each response's kind and has no
    /// move from a failed block back into it, so a failed block is given as in a
    /// block: the responses a failed block can give (an error, ROLLBACK, ROLLBACK TO)
    /// then end at the right status.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Ok(session) = self.session.get() {
            let state = match session.transaction_state() {
                TransactionState::Failed => TransactionState::InBlock,
                state => state,
            };
            client.set_transaction_status(wire_status(state));
        }
        self._on_query(client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, sql: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session.get()?;
        let text = session.text_format();
        let statements = match session.parse(sql) {
            Ok(s) => s,
            Err(e) => return Ok(vec![error_response(&e)]),
        };
        let _running = RunningStatement::start(&self.state);
        let mut responses = Vec::new();
        for statement in statements {
            // Each statement finishes before the next starts (its rows are collected):
            // a failure stops the rest, as in PostgreSQL.
            let output = self.deallocate(client.portal_store(), session.run(statement).await);
            let response = respond(
                output,
                &Format::UnifiedText,
                &text,
                true,
                &self.pending_copy,
                None,
            )
            .await;
            let failed = matches!(response, Response::Error(_));
            responses.push(response);
            if failed {
                break;
            }
        }
        // pgwire writes the responses after this returns: a parameter the statements
        // changed is reported ahead of them, so the client knows it by ReadyForQuery.
        self.report_parameters(client).await?;
        Ok(responses)
    }
}

impl QueryHandler {
    /// Sends ParameterStatus for each reported parameter whose value changed since the
    /// client last heard of it (`SET TimeZone`, `RESET ALL`, ...).
    pub(crate) async fn report_parameters<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Ok(session) = self.session.get() else {
            return Ok(());
        };
        let (version, values) = session.reported_parameters();
        let changed: Vec<(&'static str, String)> = {
            let mut reported = lock(&self.reported);
            if reported.0 == version {
                return Ok(());
            }
            let changed = values
                .iter()
                .filter(|v| !reported.1.contains(v))
                .cloned()
                .collect();
            *reported = (version, values);
            changed
        };
        for (name, value) in changed {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name.to_string(),
                    value,
                )))
                .await?;
        }
        client.flush().await?;
        Ok(())
    }

    /// Carries out what a DEALLOCATE or DISCARD ALL asks of the client's prepared
    /// statements, which live in pgwire's store; other outcomes pass through.
    pub(crate) fn deallocate<S: PortalStore>(
        &self,
        store: &S,
        output: Result<Output, DataFusionError>,
    ) -> Result<Output, DataFusionError> {
        match output {
            Ok(Output::Deallocate(name)) => {
                if store.get_statement(&name).is_none() {
                    return Err(Error::UndefinedPreparedStatement(format!(
                        "prepared statement \"{}\" does not exist",
                        log_text(&name)
                    ))
                    .into());
                }
                store.rm_statement(&name);
                lock(&self.prepared_names).remove(&name);
                Ok(Output::Command(CommandTag::Deallocate))
            }
            Ok(Output::Command(tag @ (CommandTag::DeallocateAll | CommandTag::DiscardAll))) => {
                for name in std::mem::take(&mut *lock(&self.prepared_names)) {
                    store.rm_statement(&name);
                }
                Ok(Output::Command(tag))
            }
            other => other,
        }
    }
}

/// The wire response for a statement's outcome; rows in the client's `format` (text
/// as the session prints it), collected first (`collect`) or streamed as they are
/// computed.
pub(crate) async fn respond(
    output: Result<Output, DataFusionError>,
    format: &Format,
    text: &TextFormat,
    collect: bool,
    pending: &Mutex<Option<PendingCopy>>,
    running: Option<RunningStatement>,
) -> Response {
    let mut tag = None;
    let stream = match output {
        Err(e) => {
            tracing::info!(error = %log_text(&e.to_string()), "statement failed");
            return error_response(&e);
        }
        Ok(Output::Command(tag)) => {
            let wire = Tag::new(&tag.to_string());
            return match tag {
                // ROLLBACK TO SAVEPOINT: the block goes on.
                CommandTag::Begin | CommandTag::RollbackTo => Response::TransactionStart(wire),
                CommandTag::Commit | CommandTag::Rollback => Response::TransactionEnd(wire),
                _ => Response::Execution(wire),
            };
        }
        Ok(Output::Rows(stream)) => stream,
        Ok(Output::Fetch(stream)) => {
            tag = Some("FETCH");
            stream
        }
        Ok(Output::Written { tag: written, rows }) => {
            tag = Some(written.prefix());
            rows
        }
        Ok(Output::CopyIn(copy)) => {
            let columns = copy.columns();
            *lock(pending) = Some(PendingCopy::new(copy));
            return Response::CopyIn(CopyResponse::new(0, columns, stream::empty()));
        }
        Ok(Output::CopyOut { format, rows }) => return copy_out(format, rows),
        Ok(other) => {
            return error_response(&DataFusionError::NotImplemented(format!(
                "the server cannot send {other:?}"
            )))
        }
    };
    let fields = encode::fields(&stream.schema(), format);
    if collect {
        let batches = match wasmudf_engine::collect(stream).await {
            Ok(b) => b,
            Err(e) => {
                tracing::info!(error = %log_text(&e.to_string()), "statement failed");
                return error_response(&e);
            }
        };
        let mut rows = Vec::new();
        for batch in &batches {
            match encode::encode_batch(batch, &fields, text) {
                Ok(r) => rows.extend(r.into_iter().map(Ok)),
                Err(e) => return error_response(&e),
            }
        }
        let mut response = QueryResponse::new(fields, stream::iter(rows));
        if let Some(tag) = tag {
            response.set_command_tag(tag);
        }
        return Response::Query(response);
    }
    let row_fields = fields.clone();
    let text = text.clone();
    let rows = stream.flat_map(move |batch| {
        let _running = &running;
        let encoded = batch.and_then(|b| encode::encode_batch(&b, &row_fields, &text));
        match encoded {
            Ok(rows) => stream::iter(rows.into_iter().map(Ok)).left_stream(),
            Err(e) => {
                tracing::info!(error = %log_text(&e.to_string()), "statement failed");
                stream::once(async move { Err(user_error(&e)) }).right_stream()
            }
        }
    });
    let mut response = QueryResponse::new(fields, rows);
    if let Some(tag) = tag {
        response.set_command_tag(tag);
    }
    Response::Query(response)
}

/// The ErrorResponse fields for an engine error: its SQLSTATE, and the guest's own
/// error when a Wasm function failed.
fn error_info(e: &DataFusionError) -> ErrorInfo {
    let code = wasmudf_engine::sqlstate(e);
    let message = match wasmudf_engine::find_udf_error(e) {
        Some(udf) => udf.to_string(),
        None => e.find_root().to_string(),
    };
    // Every ErrorResponse field is a C string: a NUL, from whatever source, would end the
    // message and let the text after it pose as other fields (SQLSTATE included).
    // Guest text is escaped where the engine receives it; this covers the rest.
    ErrorInfo::new("ERROR".into(), code.into(), message.replace('\0', "\\0"))
}

pub(crate) fn error_response(e: &DataFusionError) -> Response {
    Response::Error(Box::new(error_info(e)))
}

/// An engine error as a pgwire error (sent as an ErrorResponse).
pub(crate) fn user_error(e: &DataFusionError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}
