//! Managed tables' storage: transactions over files, what a crash or an old catalog
//! leaves, and what is on disk after each.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{exec, fails_with, ok, open_db, scalar};

/// A database in `dir` with table `t` holding (1, 0) and (2, 0), and two sessions.
async fn two_sessions_on_t(
    dir: &std::path::Path,
) -> (
    wasmudf_engine::Database,
    wasmudf_engine::Session,
    wasmudf_engine::Session,
) {
    let db = open_db(dir).await;
    let (a, b) = (db.session("wasmudf"), db.session("wasmudf"));
    ok(&a, "CREATE TABLE t (id bigint, v bigint)").await;
    ok(&a, "INSERT INTO t VALUES (1, 0), (2, 0)").await;
    (db, a, b)
}

#[tokio::test]
async fn two_blocks_updating_the_same_rows_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, a, b) = two_sessions_on_t(dir.path()).await;
    ok(&a, "BEGIN").await;
    ok(&a, "UPDATE t SET v = v + 1 WHERE id = 1").await;
    ok(&b, "BEGIN").await;
    ok(&b, "UPDATE t SET v = v + 100 WHERE id = 1").await;
    ok(&b, "COMMIT").await;
    let err = exec(&a, "COMMIT").await.unwrap_err();
    assert_eq!(wasmudf_engine::sqlstate(&err), "40001", "{err}");
    assert_eq!(scalar(&a, "SELECT v FROM t WHERE id = 1").await, "100");
}

#[tokio::test]
async fn a_block_that_lost_the_race_fails_at_its_next_statement() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, a, b) = two_sessions_on_t(dir.path()).await;
    ok(&a, "BEGIN").await;
    ok(&a, "DELETE FROM t WHERE id = 2").await;
    ok(&b, "UPDATE t SET v = 5 WHERE id = 1").await;
    // Reading both versions of the file would show id 1 twice: the block is over.
    let err = exec(&a, "SELECT count(*) FROM t").await.unwrap_err();
    assert_eq!(wasmudf_engine::sqlstate(&err), "40001", "{err}");
    let err = exec(&a, "SELECT 1").await.unwrap_err();
    assert_eq!(wasmudf_engine::sqlstate(&err), "25P02", "{err}");
    assert_eq!(ok(&a, "COMMIT").await, "ROLLBACK");
    assert_eq!(
        scalar(
            &a,
            "SELECT string_agg(CAST(id * 10 + v AS text), ',' ORDER BY id) FROM t"
        )
        .await,
        "15,20"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_racing_on_one_table_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let setup = db.session("wasmudf");
    ok(&setup, "CREATE TABLE counter (n bigint)").await;
    ok(&setup, "INSERT INTO counter VALUES (0)").await;
    ok(&setup, "CREATE TABLE log (who bigint, i bigint)").await;
    let mut racers = Vec::new();
    for who in 0..2 {
        let s = db.session("wasmudf");
        racers.push(tokio::spawn(async move {
            let mut retries = 0;
            for i in 0..25 {
                // Autocommit: a lost race runs again by itself.
                ok(&s, "UPDATE counter SET n = n + 1").await;
                ok(&s, &format!("INSERT INTO log VALUES ({who}, {i})")).await;
                // A block: the application retries on 40001, as PostgreSQL asks.
                loop {
                    ok(&s, "BEGIN").await;
                    let updated = exec(&s, "UPDATE counter SET n = n + 1").await;
                    let committed = match updated {
                        Ok(_) => exec(&s, "COMMIT").await,
                        Err(e) => {
                            ok(&s, "ROLLBACK").await;
                            Err(e)
                        }
                    };
                    match committed {
                        Ok(_) => break,
                        Err(e) => {
                            assert_eq!(wasmudf_engine::sqlstate(&e), "40001", "{e}");
                            retries += 1;
                        }
                    }
                }
            }
            retries
        }));
    }
    for racer in racers {
        racer.await.unwrap();
    }
    assert_eq!(scalar(&setup, "SELECT n FROM counter").await, "100");
    assert_eq!(scalar(&setup, "SELECT count(*) FROM counter").await, "1");
    assert_eq!(
        scalar(&setup, "SELECT count(DISTINCT who * 100 + i) FROM log").await,
        "50"
    );
}

/// Files of a table's directory (the data directory holds one table).
fn table_files(data: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for dir in std::fs::read_dir(data.join("tables/public"))
        .unwrap()
        .flatten()
    {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            names.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

/// The rows of every Parquet file in table `name`'s directory, read apart from the
/// database.
async fn rows_on_disk(data: &std::path::Path, name: &str) -> String {
    let dir = std::fs::read_dir(data.join("tables/public"))
        .unwrap()
        .flatten()
        .find(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .unwrap()
        .path();
    if std::fs::read_dir(&dir).unwrap().next().is_none() {
        return "0".into();
    }
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet("disk", dir.display().to_string(), Default::default())
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*) FROM disk")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap()
}

#[tokio::test]
async fn a_rolled_back_or_replaced_file_leaves_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let db = open_db(&data).await;
        let s = db.session("wasmudf");
        ok(&s, "CREATE TABLE t (id bigint)").await;
        ok(&s, "INSERT INTO t VALUES (1), (2)").await;
        assert_eq!(table_files(&data).len(), 1);
        ok(&s, "BEGIN").await;
        ok(&s, "INSERT INTO t VALUES (3)").await;
        assert_eq!(table_files(&data).len(), 2, "the block's write is a file");
        ok(&s, "ROLLBACK").await;
        assert_eq!(table_files(&data).len(), 1, "a rolled-back file is deleted");
        let before = table_files(&data);
        ok(&s, "DELETE FROM t WHERE id = 1").await;
        let after = table_files(&data);
        assert_eq!(after.len(), 1, "the replaced version is deleted: {after:?}");
        assert_ne!(before, after);
        ok(&s, "TRUNCATE t").await;
        assert!(table_files(&data).is_empty());
        ok(&s, "INSERT INTO t VALUES (4)").await;
    }
    // A file no commit names (what a crash mid-write leaves) is removed at startup.
    let table_dir = std::fs::read_dir(data.join("tables/public"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::write(table_dir.join("0123456789abcdef.parquet"), b"half a file").unwrap();
    let db = open_db(&data).await;
    let s = db.session("wasmudf");
    assert_eq!(
        scalar(&s, "SELECT string_agg(CAST(id AS text), ',') FROM t").await,
        "4"
    );
    assert_eq!(table_files(&data).len(), 1, "{:?}", table_files(&data));
}

#[tokio::test]
async fn tables_of_a_format_1_catalog_are_upgraded_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let db = open_db(&data).await;
        let s = db.session("wasmudf");
        ok(&s, "CREATE TABLE old (id bigint, name text)").await;
        ok(&s, "INSERT INTO old VALUES (1, 'a'), (2, 'b')").await;
        ok(&s, "INSERT INTO old VALUES (3, NULL)").await;
    }
    // What a server of format 1 left: no file records, its tables every Parquet file of
    // their directories (and, from a crash, a temporary file it wrote aside).
    {
        let catalog = redb::Database::open(data.join("catalog.redb")).unwrap();
        let txn = catalog.begin_write().unwrap();
        txn.delete_table(redb::TableDefinition::<&str, &[u8]>::new("table_files"))
            .unwrap();
        txn.open_table(redb::TableDefinition::<&str, &str>::new("meta"))
            .unwrap()
            .insert("format", "1")
            .unwrap();
        txn.commit().unwrap();
    }
    let table_dir = std::fs::read_dir(data.join("tables/public"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    std::fs::write(table_dir.join(".tmp-0123.parquet.part"), b"aside").unwrap();
    for _ in 0..2 {
        // Upgraded at the first start, read as before at the second.
        let db = open_db(&data).await;
        let s = db.session("wasmudf");
        assert_eq!(
            scalar(&s, "SELECT string_agg(CAST(id AS text) || coalesce(name, '-'), ',' ORDER BY id) FROM old").await,
            "1a,2b,3-"
        );
        assert_eq!(table_files(&data).len(), 2, "{:?}", table_files(&data));
    }
    let db = open_db(&data).await;
    let s = db.session("wasmudf");
    ok(&s, "DELETE FROM old WHERE id = 2").await;
    drop(s);
    drop(db);
    let db = open_db(&data).await;
    let s = db.session("wasmudf");
    assert_eq!(scalar(&s, "SELECT count(*) FROM old").await, "2");
}

#[tokio::test]
async fn single_row_inserts_do_not_leave_a_file_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = open_db(&data).await;
    let s = db.session("wasmudf");
    ok(&s, "CREATE TABLE t (x bigint)").await;
    for i in 0..100 {
        ok(&s, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    // A block's inserts too, merged after its COMMIT.
    ok(&s, "BEGIN").await;
    for i in 100..120 {
        ok(&s, &format!("INSERT INTO t VALUES ({i})")).await;
    }
    ok(&s, "COMMIT").await;
    let files = table_files(&data).len();
    assert!(files < 16, "{files} files for 120 single-row inserts");
    assert_eq!(scalar(&s, "SELECT count(*) FROM t").await, "120");
    assert_eq!(scalar(&s, "SELECT sum(x) FROM t").await, "7140");
    assert_eq!(rows_on_disk(&data, "t").await, "120");
    drop(s);
    drop(db);
    let db = open_db(&data).await;
    let s = db.session("wasmudf");
    assert_eq!(scalar(&s, "SELECT count(DISTINCT x) FROM t").await, "120");
}

const DIR_VAR: &str = "WASMUDF_TX_CRASH_TEST_DIR";

/// The victim: transactions forever, each inserting three rows tagged with its number
/// and moving the counter row to it; prints the number once COMMIT has returned. Runs
/// only when the parent test starts it.
#[tokio::test]
#[ignore = "started by committed_transactions_survive_sigkill"]
async fn transaction_loop_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let db = open_db(std::path::Path::new(&dir)).await;
    let s = db.session("victim");
    let mut n: u64 = scalar(&s, "SELECT n FROM counter").await.parse().unwrap();
    for i in 0u64.. {
        if i.is_multiple_of(4) {
            // Rolled back: must never be seen.
            ok(&s, "BEGIN").await;
            ok(&s, "INSERT INTO rows VALUES (-1, 0)").await;
            ok(&s, "UPDATE counter SET n = -1").await;
            ok(&s, "INSERT INTO keyed (tx) VALUES (-1)").await;
            ok(&s, "ROLLBACK").await;
        }
        n += 1;
        ok(&s, "BEGIN").await;
        ok(
            &s,
            &format!("INSERT INTO rows VALUES ({n}, 1), ({n}, 2), ({n}, 3)"),
        )
        .await;
        ok(&s, &format!("UPDATE counter SET n = {n}")).await;
        ok(&s, &format!("INSERT INTO keyed (tx) VALUES ({n})")).await;
        if n.is_multiple_of(3) {
            ok(&s, &format!("DELETE FROM rows WHERE tx = {n} AND k = 3")).await;
            ok(&s, &format!("INSERT INTO rows VALUES ({n}, 3)")).await;
        }
        ok(&s, "COMMIT").await;
        println!("committed {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let db = open_db(&data).await;
        let s = db.session("wasmudf");
        ok(
            &s,
            "CREATE TABLE rows (tx bigint NOT NULL, k bigint NOT NULL)",
        )
        .await;
        ok(&s, "CREATE TABLE counter (n bigint)").await;
        ok(&s, "INSERT INTO counter VALUES (0)").await;
        // A generated key per transaction: a crash may skip values, never repeat one,
        // and the key's index is rebuilt from what the commits left.
        ok(
            &s,
            "CREATE TABLE keyed (id bigserial PRIMARY KEY, tx bigint NOT NULL)",
        )
        .await;
    }
    let mut committed: u64 = 0;
    let mut rounds_with_commits = 0;
    for round in 0..100 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tables::transaction_loop_child",
                "--ignored",
                "--nocapture",
            ])
            .env(DIR_VAR, &data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the transaction loop");
        // Read what it reports until the moment of the kill, a random time after its
        // first commit of the round (or a time limit, if it never gets there).
        let jitter = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            % 150;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ") {
                    if tx.send(n.parse::<u64>().unwrap()).is_err() {
                        break;
                    }
                }
            }
        });
        let started = Instant::now();
        let mut deadline = started + Duration::from_secs(20);
        let mut first = true;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(n) => {
                    committed = committed.max(n);
                    if first {
                        first = false;
                        deadline = Instant::now() + Duration::from_millis(jitter);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        // What arrived before the kill counts as acknowledged.
        while let Ok(n) = rx.try_recv() {
            committed = committed.max(n);
        }
        if !first {
            rounds_with_commits += 1;
        }

        let db = open_db(&data).await;
        let s = db.session("checker");
        let n: u64 = scalar(&s, "SELECT n FROM counter").await.parse().unwrap();
        // Every acknowledged commit is there; one more may be (committed, killed
        // before it said so).
        assert!(
            n == committed || n == committed + 1,
            "round {round}: counter {n}, acknowledged {committed}"
        );
        committed = n;
        // Exactly the committed transactions, each whole; nothing rolled back.
        assert_eq!(
            scalar(&s, "SELECT count(*) FROM rows WHERE tx < 0 OR k = 0").await,
            "0",
            "round {round}: a rolled-back write is visible"
        );
        assert_eq!(
            scalar(
                &s,
                "SELECT count(*) FROM (SELECT tx FROM rows GROUP BY tx \
                 HAVING count(*) <> 3 OR count(DISTINCT k) <> 3) AS partial"
            )
            .await,
            "0",
            "round {round}: a transaction is partly visible"
        );
        assert_eq!(
            scalar(&s, "SELECT count(DISTINCT tx) FROM rows").await,
            n.to_string(),
            "round {round}: transactions in rows vs counter {n}"
        );
        // One key per committed transaction, none handed out twice, in commit order.
        assert_eq!(
            scalar(
                &s,
                "SELECT count(*) || ' ' || count(DISTINCT id) FROM keyed WHERE tx > 0"
            )
            .await,
            format!("{n} {n}"),
            "round {round}: generated keys"
        );
        assert_eq!(
            scalar(&s, "SELECT count(*) FROM keyed WHERE tx < 0").await,
            "0",
            "round {round}: a rolled-back key is visible"
        );
        assert_eq!(
            scalar(
                &s,
                "SELECT count(*) FROM keyed a JOIN keyed b ON a.tx < b.tx AND a.id >= b.id"
            )
            .await,
            "0",
            "round {round}: a key was handed out again after the crash"
        );
        if n > 0 {
            let taken = scalar(&s, "SELECT max(id) FROM keyed").await;
            fails_with(
                &s,
                &format!("INSERT INTO keyed VALUES ({taken}, 0)"),
                "23505",
                "keyed_pkey",
            )
            .await;
        }
        // On disk: only the files the commits name (startup removed the rest), so
        // the directory read whole holds exactly the table's rows.
        let rows = scalar(&s, "SELECT count(*) FROM rows").await;
        assert_eq!(rows_on_disk(&data, "rows").await, rows, "round {round}");
        drop(s);
        drop(db);
    }
    assert!(
        rounds_with_commits >= 90,
        "only {rounds_with_commits} of 100 rounds committed anything"
    );
}
