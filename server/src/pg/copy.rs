//! COPY FROM STDIN (the client's data, then CopyDone) and COPY TO STDOUT.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{stream, Sink, SinkExt, StreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::results::{CopyResponse, Response, Tag};
use pgwire::api::ClientInfo;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::PgWireBackendMessage;
use wasmudf_engine::datafusion::execution::SendableRecordBatchStream;
use wasmudf_engine::{copy_header, copy_lines, log_text, CopyFormat, CopyIn};

use crate::pg::simple::user_error;
use crate::pg::{lock, protocol_error, QueryHandler};

/// A COPY FROM STDIN between its CopyInResponse and the client's CopyDone.
pub(crate) struct PendingCopy {
    copy: CopyIn,
    data: BytesMut,
    /// Bytes the client sent, kept or not: past the server's `max_copy_size` the data
    /// is dropped as it comes (so memory stays bounded) and CopyDone gets 54000.
    received: u64,
}

impl PendingCopy {
    /// A COPY into `copy`'s table that has received no data yet.
    pub(crate) fn new(copy: CopyIn) -> Self {
        PendingCopy {
            copy,
            data: BytesMut::new(),
            received: 0,
        }
    }
}

#[async_trait]
impl CopyHandler for QueryHandler {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match lock(&self.pending_copy).as_mut() {
            Some(pending) => {
                // The protocol lets the client send on until CopyDone whatever the
                // server says; PostgreSQL too reads and discards the rest.
                pending.received = pending.received.saturating_add(copy_data.data.len() as u64);
                if pending.received > self.state.max_copy_size {
                    pending.data = BytesMut::new();
                } else {
                    pending.data.extend_from_slice(&copy_data.data);
                }
                Ok(())
            }
            None => Err(protocol_error(
                "CopyData without a COPY FROM STDIN in progress",
            )),
        }
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let pending = lock(&self.pending_copy).take();
        let Some(pending) = pending else {
            return Err(protocol_error(
                "CopyDone without a COPY FROM STDIN in progress",
            ));
        };
        let limit = self.state.max_copy_size;
        if pending.received > limit {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "54000".into(),
                format!(
                    "COPY FROM STDIN sent {} bytes, more than the server accepts in one COPY (max_copy_size = {limit} bytes); nothing was loaded: load the data in parts",
                    pending.received
                ),
            ))));
        }
        match self
            .session
            .get()?
            .copy_in(&pending.copy, &pending.data)
            .await
        {
            Ok(rows) => {
                let tag = Tag::new("COPY").with_rows(rows as usize);
                client
                    .send(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                Ok(())
            }
            Err(e) => {
                tracing::info!(error = %log_text(&e.to_string()), "COPY failed");
                Err(user_error(&e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        lock(&self.pending_copy).take();
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!(
                "COPY from stdin failed: {}",
                fail.message.replace('\0', "\\0")
            ),
        )))
    }
}

/// COPY ... TO STDOUT: one CopyData message per row (the header, if asked for, rides
/// with the first so the row count stays right).
pub(crate) fn copy_out(format: CopyFormat, rows: SendableRecordBatchStream) -> Response {
    let schema = rows.schema();
    let columns = schema.fields().len();
    // The header comes first even when the query returns no rows, as in PostgreSQL.
    let header = format
        .header
        .then(|| Ok(CopyData::new(Bytes::from(copy_header(&schema, &format)))));
    let data = rows.flat_map(move |batch| {
        let lines = batch.and_then(|b| copy_lines(&b, &format));
        match lines {
            Ok(lines) => {
                let messages: Vec<PgWireResult<CopyData>> = lines
                    .into_iter()
                    .map(|line| Ok(CopyData::new(Bytes::from(line))))
                    .collect();
                stream::iter(messages).left_stream()
            }
            Err(e) => stream::once(async move { Err(user_error(&e)) }).right_stream(),
        }
    });
    Response::CopyOut(CopyResponse::new(
        0,
        columns,
        stream::iter(header).chain(data),
    ))
}
