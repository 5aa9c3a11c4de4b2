//! The PostgreSQL wire protocol over the engine: one session per connection.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use futures::stream;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireResult};
use wasmudf_engine::datafusion;
use wasmudf_engine::{
    parse_bytes, parse_duration, Database, DatabaseConfig, EngineConfig, Limits, Output, Session,
    Statement,
};

use crate::config::ServeArgs;

/// What every connection shares: the database.
pub struct ServerState {
    db: Database,
}

impl ServerState {
    pub async fn start(args: &ServeArgs) -> Result<Self, String> {
        let mut defaults = Limits::default();
        if let Some(f) = args.fuel {
            defaults.fuel = f;
        }
        if let Some(m) = &args.memory {
            defaults.memory = parse_bytes(m).map_err(|e| e.to_string())?;
        }
        if let Some(t) = &args.timeout {
            defaults.timeout = parse_duration(t).map_err(|e| e.to_string())?;
        }
        if let Some(s) = &args.stack {
            defaults.stack = parse_bytes(s).map_err(|e| e.to_string())? as usize;
        }
        let first_start = !args.data_dir.join("catalog.redb").exists();
        let modules_dir = args
            .modules_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.join("modules"));
        std::fs::create_dir_all(&modules_dir)
            .map_err(|e| format!("modules directory {}: {e}", modules_dir.display()))?;
        if !args.no_examples {
            write_examples(&modules_dir)?;
        }
        let mut config = DatabaseConfig::new(&args.data_dir);
        config.modules_dir = Some(modules_dir);
        config.engine = EngineConfig {
            defaults,
            ..EngineConfig::default()
        };
        config.target_partitions = args.target_partitions;
        let db = Database::open(config).await.map_err(|e| e.to_string())?;
        if first_start && !args.no_examples {
            let admin = db.session(ADMIN_ROLE);
            for (name, _) in wasmudf_udfs::EXAMPLES {
                admin
                    .execute(&format!("SELECT * FROM wasm_load('examples/{name}.wasm')"))
                    .await
                    .map_err(|e| format!("example {name}: {e}"))?;
            }
            admin
                .execute(DEMO_TABLE)
                .await
                .map_err(|e| format!("demo table: {e}"))?;
            tracing::info!("registered the example functions and the demo table `cities`");
        }
        Ok(ServerState { db })
    }
}

/// The administrator role every session runs as until authentication lands.
const ADMIN_ROLE: &str = "wasmudf";

/// Copies the bundled example components into `<modules>/examples/`, so
/// `CREATE FUNCTION ... AS 'examples/math.wasm'` works out of the box.
fn write_examples(modules_dir: &std::path::Path) -> Result<(), String> {
    let dir = modules_dir.join("examples");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, bytes) in wasmudf_udfs::EXAMPLES {
        let path = dir.join(format!("{name}.wasm"));
        if std::fs::read(&path).ok().as_deref() != Some(*bytes) {
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

const DEMO_TABLE: &str =
    "CREATE TABLE cities (name VARCHAR, lat DOUBLE, lon DOUBLE, population BIGINT) AS VALUES \
    ('Paris', 48.8566, 2.3522, 2102650), ('London', 51.5074, -0.1278, 8866180), \
    ('Tokyo', 35.6762, 139.6503, 13960236), ('New York', 40.7128, -74.0060, 8335897), \
    ('Sydney', -33.8688, 151.2093, 5312163)";

/// One client connection and its own session.
pub struct Connection {
    handler: Arc<QueryHandler>,
}

impl Connection {
    pub fn new(state: Arc<ServerState>) -> Self {
        let handler = Arc::new(QueryHandler {
            session: state.db.session(ADMIN_ROLE),
        });
        Connection { handler }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.handler.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.handler.clone()
    }
}

pub struct QueryHandler {
    session: Session,
}

impl NoopStartupHandler for QueryHandler {}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    async fn do_query<C>(&self, _client: &mut C, sql: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
    {
        let statements = match self.session.parse(sql) {
            Ok(s) => s,
            Err(e) => return Ok(vec![error_response(&e)]),
        };
        let mut responses = Vec::new();
        for statement in statements {
            match self.run_statement(statement).await {
                Ok(r) => responses.push(r),
                Err(e) => {
                    tracing::info!(error = %e, "statement failed");
                    responses.push(error_response(&e));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

impl QueryHandler {
    async fn run_statement(&self, statement: Statement) -> Result<Response, DataFusionError> {
        let stream = match self.session.run(statement).await? {
            Output::Command(tag) => return Ok(Response::Execution(Tag::new(&tag))),
            Output::Rows(stream) => stream,
        };
        let schema = stream.schema();
        let batches = wasmudf_engine::collect(stream).await?;
        let fields: Arc<Vec<FieldInfo>> = Arc::new(
            schema
                .fields()
                .iter()
                .map(|f| {
                    FieldInfo::new(
                        f.name().clone(),
                        None,
                        None,
                        pg_type(f.data_type()),
                        FieldFormat::Text,
                    )
                })
                .collect(),
        );
        let mut rows: Vec<PgWireResult<_>> = Vec::new();
        for batch in &batches {
            let texts: Vec<Vec<Option<String>>> = batch
                .columns()
                .iter()
                .map(render_column)
                .collect::<Result<_, _>>()?;
            for r in 0..batch.num_rows() {
                let mut encoder = DataRowEncoder::new(fields.clone());
                for col in &texts {
                    encoder
                        .encode_field(&col[r])
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                }
                rows.push(Ok(encoder.take_row()));
            }
        }
        Ok(Response::Query(QueryResponse::new(
            fields,
            stream::iter(rows),
        )))
    }
}

fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => Type::NUMERIC,
        DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        _ => Type::TEXT,
    }
}

/// PostgreSQL text-format rendering of a column.
fn render_column(array: &ArrayRef) -> Result<Vec<Option<String>>, DataFusionError> {
    // Types whose PostgreSQL text differs from Arrow's display are rendered from the
    // typed array directly; everything else goes through Arrow's formatter.
    let render = |f: &dyn Fn(usize) -> String| {
        (0..array.len())
            .map(|i| (!array.is_null(i)).then(|| f(i)))
            .collect()
    };
    Ok(match array.data_type() {
        DataType::Boolean => {
            let b = array.as_boolean();
            render(&|i| if b.value(i) { "t" } else { "f" }.to_string())
        }
        DataType::Float32 => {
            let f = array.as_primitive::<Float32Type>();
            render(&|i| pg_float(f64::from(f.value(i))))
        }
        DataType::Float64 => {
            let f = array.as_primitive::<Float64Type>();
            render(&|i| pg_float(f.value(i)))
        }
        dt => {
            let options = FormatOptions::default()
                .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
                .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f%:z"));
            let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
            let binary = matches!(
                dt,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            );
            render(&|i| {
                let text = formatter.value(i).to_string();
                if binary {
                    format!("\\x{text}")
                } else {
                    text
                }
            })
        }
    })
}

/// PostgreSQL's float text: shortest round-trip digits, `Infinity`, `NaN`.
fn pg_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        v.to_string()
    }
}

fn error_response(e: &DataFusionError) -> Response {
    let code = wasmudf_engine::sqlstate(e);
    let message = match wasmudf_engine::find_udf_error(e) {
        Some(udf) => udf.to_string(),
        None => e.find_root().to_string(),
    };
    Response::Error(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}
