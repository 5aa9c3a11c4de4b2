//! The extended query protocol: Parse plans a statement against the current catalog to
//! describe its parameters and columns; Execute plans it again with the bound values, so
//! a prepared statement sees functions replaced since it was prepared.

use std::sync::Arc;

use async_trait::async_trait;
use futures::SinkExt;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::send_describe_response;
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{
    Describe, Parse, ParseComplete, Sync as PgSync, TARGET_TYPE_BYTE_PORTAL,
};
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::PgWireBackendMessage;
use wasmudf_engine::datafusion::arrow::datatypes::DataType;
use wasmudf_engine::{Description, Statement};

use crate::pg::encode::{arrow_type, decode_param, fields, pg_type};
use crate::pg::simple::{respond, user_error};
use crate::pg::{lock, wire_status, ConnectionSession, QueryHandler, RunningStatement};

/// A parsed and described statement, as stored for Bind.
#[derive(Clone, Debug)]
pub struct Prepared {
    statement: Statement,
    description: Description,
    /// What the client declared for each placeholder in Parse (`None`: left to us).
    declared: Vec<Option<Type>>,
}

impl Prepared {
    /// The type of placeholder `i` on the wire: what the client declared, else what
    /// the statement determines, else text (as PostgreSQL does for an unknown).
    fn param_type(&self, i: usize) -> Type {
        self.declared
            .get(i)
            .cloned()
            .flatten()
            .or_else(|| {
                self.description
                    .parameters
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|dt| pg_type(&dt))
            })
            .unwrap_or(Type::TEXT)
    }

    /// The Arrow type the statement expects for placeholder `i`.
    fn param_arrow_type(&self, i: usize) -> Option<DataType> {
        self.description
            .parameters
            .get(i)
            .cloned()
            .flatten()
            .or_else(|| {
                self.declared
                    .get(i)
                    .cloned()
                    .flatten()
                    .as_ref()
                    .and_then(arrow_type)
            })
    }
}

/// Parses and describes statements for one connection's session.
pub struct Parser {
    pub session: Arc<ConnectionSession>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.session.get()?;
        let mut statements = session.parse(sql).map_err(|e| user_error(&e))?;
        if statements.len() > 1 {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "42601".into(),
                "cannot insert multiple commands into a prepared statement".into(),
            ))));
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        // Declared types are the parameters' types, as PostgreSQL takes them.
        let declared: Vec<Option<DataType>> = types
            .iter()
            .map(|t| t.as_ref().and_then(arrow_type))
            .collect();
        let description = session
            .describe_typed(&statement, &declared)
            .await
            .map_err(|e| user_error(&e))?;
        Ok(Some(Prepared {
            statement,
            description,
            declared: types.to_vec(),
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(
            (0..stmt.description.parameters.len().max(stmt.declared.len()))
                .map(|i| stmt.param_type(i))
                .collect(),
        )
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match &stmt.description.columns {
            Some(schema) => fields(schema, column_format.unwrap_or(&Format::UnifiedText))
                .as_ref()
                .clone(),
            None => Vec::new(),
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// pgwire's Describe, which also describes a SQL cursor (DECLARE) as a portal of
    /// that name, as PostgreSQL does (psycopg's named cursors ask).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL {
            let name = message.name.clone().unwrap_or_default();
            if client.portal_store().get_portal(&name).is_none() {
                if let Some(schema) = self.session.get()?.cursor_schema(&name) {
                    let response = DescribePortalResponse::new(
                        fields(&schema, &Format::UnifiedText).as_ref().clone(),
                    );
                    send_describe_response(client, &response).await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
    }

    /// pgwire's Sync, with the transaction status the session has (pgwire's own
    /// tracking has no way from a failed block back into it: ROLLBACK TO SAVEPOINT).
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = wire_status(self.session.get()?.transaction_state());
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }

    /// pgwire's Parse, with the statement's name remembered for DEALLOCATE ALL.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.clone().unwrap_or_default();
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        if !name.is_empty() {
            lock(&self.prepared_names).insert(name);
        }
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        let parser = &self.parser;
        Ok(DescribeStatementResponse::new(
            parser.get_parameter_types(&target.statement)?,
            parser.get_result_schema(&target.statement, None)?,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(DescribePortalResponse::new(self.parser.get_result_schema(
            &target.statement.statement,
            Some(&target.result_column_format),
        )?))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo
            + ClientPortalStore
            + futures::Sink<PgWireBackendMessage>
            + Unpin
            + Send
            + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as futures::Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let mut params = Vec::with_capacity(portal.parameters.len());
        for (i, raw) in portal.parameters.iter().enumerate() {
            let value = decode_param(
                raw.as_ref(),
                portal.parameter_format.format_for(i),
                &prepared.param_type(i),
                prepared.param_arrow_type(i).as_ref(),
            )
            .map_err(|message| {
                PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".into(),
                    "22P02".into(),
                    format!("parameter ${}: {message}", i + 1),
                )))
            })?;
            params.push(value);
        }
        let running = RunningStatement::start(&self.state);
        let session = self.session.get()?;
        let output = session
            .run_with_params(prepared.statement.clone(), params)
            .await;
        let output = self.deallocate(client.portal_store(), output);
        // Reported before the statement's own response, as PostgreSQL does.
        self.report_parameters(client).await?;
        // Rows stream to the client as they are computed; pgwire's portal applies the
        // Execute row limit and keeps the rest for the next Execute.
        Ok(respond(
            output,
            &portal.result_column_format,
            &session.text_format(),
            false,
            &self.pending_copy,
            Some(running),
        )
        .await)
    }
}
