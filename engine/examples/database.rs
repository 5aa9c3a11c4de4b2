//! A wasmudf database without the server: a data directory whose functions and tables
//! survive a restart, and sessions that run SQL statements.
//!
//! ```sh
//! cargo run -p wasmudf-engine --example database
//! ```

use datafusion::arrow::util::pretty::pretty_format_batches;
use wasmudf_engine::{collect, datafusion, Database, DatabaseConfig, Output};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    let mut config = DatabaseConfig::new(data.path());
    // `CREATE FUNCTION ... AS 'file.wasm'` reads only from here.
    config.modules_dir = Some(wasmudf_udfs::DIR.into());

    {
        let db = Database::open(config.clone()).await?;
        let session = db.session("wasmudf");
        for out in session
            .execute(
                "CREATE FUNCTION common_divisor(bigint, bigint) RETURNS bigint \
                   LANGUAGE wasm IMMUTABLE STRICT SET wasm.fuel = '50000000' \
                   AS 'math.wasm', 'gcd';
                 CREATE TABLE pairs AS SELECT value AS a, value * 6 AS b \
                   FROM generate_series(1, 5);",
            )
            .await?
        {
            if let Output::Command(tag) = out {
                println!("{tag}");
            }
        }
    }

    // Reopened: the catalog restores the function and the table.
    let db = Database::open(config).await?;
    let session = db.session("wasmudf");
    for out in session
        .execute("SELECT a, b, common_divisor(a, b) AS d FROM pairs ORDER BY a")
        .await?
    {
        if let Output::Rows(rows) = out {
            println!("{}", pretty_format_batches(&collect(rows).await?)?);
        }
    }
    Ok(())
}
