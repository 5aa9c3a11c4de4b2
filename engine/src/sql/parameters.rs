//! PostgreSQL's session parameters (its GUCs): the ones clients read and write at
//! connect and around their statements, with PostgreSQL's names, defaults, value
//! checks and transaction behaviour (`SET LOCAL` ends with the transaction, a `SET`
//! in a rolled-back transaction is undone). A value wasmudf cannot honour is refused
//! (0A000), never stored and ignored.
//!
//! DataFusion has no such settings (its own are `datafusion.*`, the engine's limits
//! `wasm.*`); `TimeZone` is mirrored into DataFusion's time zone, `statement_timeout`
//! read by the session, and the output formats ([`TextFormat`]) by the wire layer.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use parking_lot::Mutex;

use crate::error::Error;
use crate::introspection::session_info::SERVER_VERSION;
use crate::introspection::settings::{SessionSettings, SettingRow};
use crate::pg::text::TextFormat;
use crate::sql::call::{text_at, CallArgs};
use crate::sql::output::Output;
use crate::wasm::limits::{format_duration, parse_duration_or_zero};

/// Who may change a parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Fixed by the server (`server_version`): SET is 55P02.
    Fixed,
    /// Any session, with SET / RESET / `set_config`.
    Session,
}

/// How a parameter's default is found.
#[derive(Clone, Copy)]
enum Initial {
    Text(&'static str),
    /// The session's role (`session_authorization`).
    User,
    /// `on` for an administrator role (`is_superuser`).
    Superuser,
}

/// One parameter: what PostgreSQL calls it, shows for it, and accepts.
struct Definition {
    /// The name as PostgreSQL spells it (`SHOW` names its column so).
    name: &'static str,
    /// Sent in ParameterStatus at login and whenever it changes (PostgreSQL's
    /// GUC_REPORT list).
    reported: bool,
    access: Access,
    default: Initial,
    /// The value as stored and shown, or why it is refused.
    normalize: fn(&'static str, &str) -> Result<String, Error>,
    description: &'static str,
}

const fn def(
    name: &'static str,
    reported: bool,
    access: Access,
    default: Initial,
    normalize: fn(&'static str, &str) -> Result<String, Error>,
    description: &'static str,
) -> Definition {
    Definition {
        name,
        reported,
        access,
        default,
        normalize,
        description,
    }
}

use Access::{Fixed, Session as Settable};

/// Every parameter, sorted by name (case-insensitively, as `SHOW ALL` lists them).
static DEFINITIONS: &[Definition] = &[
    def(
        "application_name",
        true,
        Settable,
        Initial::Text(""),
        application_name,
        "Sets the application name to be reported in statistics and logs.",
    ),
    def(
        "bytea_output",
        false,
        Settable,
        Initial::Text("hex"),
        bytea_output,
        "Sets the output format for bytea.",
    ),
    def(
        "client_encoding",
        true,
        Settable,
        Initial::Text("UTF8"),
        client_encoding,
        "Sets the client's character set encoding.",
    ),
    def(
        "client_min_messages",
        false,
        Settable,
        Initial::Text("notice"),
        message_level,
        "Sets the message levels that are sent to the client.",
    ),
    def(
        "DateStyle",
        true,
        Settable,
        Initial::Text("ISO, MDY"),
        date_style,
        "Sets the display format for date and time values.",
    ),
    def(
        "default_transaction_isolation",
        false,
        Settable,
        Initial::Text("read committed"),
        isolation,
        "Sets the transaction isolation level of each new transaction.",
    ),
    def(
        "default_transaction_read_only",
        true,
        Settable,
        Initial::Text("off"),
        only_off,
        "Sets the default read-only status of new transactions.",
    ),
    def(
        "extra_float_digits",
        false,
        Settable,
        Initial::Text("1"),
        extra_float_digits,
        "Sets the number of digits displayed for floating-point values.",
    ),
    def(
        "in_hot_standby",
        true,
        Fixed,
        Initial::Text("off"),
        any,
        "Shows whether hot standby is currently active.",
    ),
    def(
        "integer_datetimes",
        true,
        Fixed,
        Initial::Text("on"),
        any,
        "Shows whether datetimes are integer based.",
    ),
    def(
        "IntervalStyle",
        true,
        Settable,
        Initial::Text("postgres"),
        interval_style,
        "Sets the display format for interval values.",
    ),
    def(
        "is_superuser",
        true,
        Fixed,
        Initial::Superuser,
        any,
        "Shows whether the current user is a superuser.",
    ),
    def(
        "lc_collate",
        false,
        Fixed,
        Initial::Text("C"),
        any,
        "Shows the collation order locale.",
    ),
    def(
        "lc_ctype",
        false,
        Fixed,
        Initial::Text("C"),
        any,
        "Shows the character classification and case conversion locale.",
    ),
    def(
        "lc_messages",
        false,
        Settable,
        Initial::Text("C"),
        locale,
        "Sets the language in which messages are displayed.",
    ),
    def(
        "lc_monetary",
        false,
        Settable,
        Initial::Text("C"),
        locale,
        "Sets the locale for formatting monetary amounts.",
    ),
    def(
        "lc_numeric",
        false,
        Settable,
        Initial::Text("C"),
        locale,
        "Sets the locale for formatting numbers.",
    ),
    def(
        "lc_time",
        false,
        Settable,
        Initial::Text("C"),
        locale,
        "Sets the locale for formatting date and time values.",
    ),
    def(
        "max_identifier_length",
        false,
        Fixed,
        Initial::Text("63"),
        any,
        "Shows the maximum identifier length.",
    ),
    // pgjdbc reads it (from pg_settings) before it lists foreign keys.
    def(
        "max_index_keys",
        false,
        Fixed,
        Initial::Text("32"),
        any,
        "Shows the maximum number of index keys.",
    ),
    def(
        "scram_iterations",
        true,
        Fixed,
        Initial::Text("4096"),
        any,
        "Sets the iteration count for SCRAM secret generation.",
    ),
    def(
        "search_path",
        false,
        Settable,
        Initial::Text("\"$user\", public"),
        any,
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    def(
        "server_encoding",
        true,
        Fixed,
        Initial::Text("UTF8"),
        any,
        "Shows the server (database) character set encoding.",
    ),
    def(
        "server_version",
        true,
        Fixed,
        Initial::Text(SERVER_VERSION),
        any,
        "Shows the server version.",
    ),
    def(
        "server_version_num",
        false,
        Fixed,
        Initial::Text("160006"),
        any,
        "Shows the server version as an integer.",
    ),
    def(
        "session_authorization",
        true,
        Fixed,
        Initial::User,
        any,
        "Sets the session user name.",
    ),
    def(
        "standard_conforming_strings",
        true,
        Settable,
        Initial::Text("on"),
        only_on,
        "Causes '...' strings to treat backslashes literally.",
    ),
    def(
        "statement_timeout",
        false,
        Settable,
        Initial::Text("0"),
        statement_timeout,
        "Sets the maximum allowed duration of any statement.",
    ),
    def(
        "TimeZone",
        true,
        Settable,
        Initial::Text("UTC"),
        time_zone,
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    def(
        "transaction_isolation",
        false,
        Settable,
        Initial::Text("read committed"),
        isolation,
        "Sets the current transaction's isolation level.",
    ),
    def(
        "transaction_read_only",
        false,
        Settable,
        Initial::Text("off"),
        only_off,
        "Sets the current transaction's read-only status.",
    ),
];

fn definition(name: &str) -> Result<&'static Definition, Error> {
    DEFINITIONS
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| unrecognized(name))
}

/// PostgreSQL's error for a name it has no parameter for.
pub(crate) fn unrecognized(name: &str) -> Error {
    Error::UndefinedObject(format!(
        "unrecognized configuration parameter \"{}\"",
        crate::error::guest_text(&name.to_lowercase())
    ))
}

fn invalid(name: &str, value: &str) -> Error {
    Error::InvalidLimit(format!(
        "invalid value for parameter \"{name}\": \"{}\"",
        crate::error::guest_text(value)
    ))
}

fn unsupported(name: &str, value: &str, why: &str) -> Error {
    Error::NotSupported(format!(
        "{name} = \"{}\" is not supported: {why}",
        crate::error::guest_text(value)
    ))
}

fn any(_: &'static str, value: &str) -> Result<String, Error> {
    Ok(value.to_string())
}

/// PostgreSQL keeps NAMEDATALEN - 1 bytes and replaces what is not printable ASCII.
fn application_name(_: &'static str, value: &str) -> Result<String, Error> {
    let cleaned: String = value
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(63)
        .collect();
    Ok(cleaned)
}

fn one_of(name: &'static str, value: &str, allowed: &[&str]) -> Result<String, Error> {
    let lower = value.trim().to_lowercase();
    allowed
        .iter()
        .find(|a| **a == lower)
        .map(|a| a.to_string())
        .ok_or_else(|| invalid(name, value))
}

fn bytea_output(name: &'static str, value: &str) -> Result<String, Error> {
    one_of(name, value, &["hex", "escape"])
}

fn message_level(name: &'static str, value: &str) -> Result<String, Error> {
    one_of(
        name,
        value,
        &[
            "debug5", "debug4", "debug3", "debug2", "debug1", "debug", "log", "notice", "warning",
            "error",
        ],
    )
}

fn client_encoding(name: &'static str, value: &str) -> Result<String, Error> {
    let canonical: String = value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase();
    match canonical.as_str() {
        "UTF8" | "UNICODE" => Ok("UTF8".into()),
        // SQL_ASCII is a byte-transparent encoding: UTF-8 text passes as is.
        "SQLASCII" => Ok("SQL_ASCII".into()),
        _ => Err(unsupported(
            name,
            value,
            "the server sends and receives UTF8 only",
        )),
    }
}

/// Output is always ISO (`2024-01-31 12:00:00`); the field order only says how
/// ambiguous input is read, and ISO input is never ambiguous.
fn date_style(name: &'static str, value: &str) -> Result<String, Error> {
    let mut style = "ISO";
    let mut order = "MDY";
    for part in value.split(',').map(|p| p.trim().to_uppercase()) {
        match part.as_str() {
            "ISO" => style = "ISO",
            "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => order = "MDY",
            "DMY" | "EURO" | "EUROPEAN" => order = "DMY",
            "YMD" => order = "YMD",
            "SQL" | "POSTGRES" | "GERMAN" => {
                return Err(unsupported(
                    name,
                    value,
                    "dates are output in the ISO style only",
                ))
            }
            _ => return Err(invalid(name, value)),
        }
    }
    Ok(format!("{style}, {order}"))
}

fn interval_style(name: &'static str, value: &str) -> Result<String, Error> {
    match value.trim().to_lowercase().as_str() {
        "postgres" => Ok("postgres".into()),
        "postgres_verbose" | "sql_standard" | "iso_8601" => Err(unsupported(
            name,
            value,
            "intervals are output in the postgres style only",
        )),
        _ => Err(invalid(name, value)),
    }
}

fn isolation(name: &'static str, value: &str) -> Result<String, Error> {
    let words = value.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.to_lowercase().as_str() {
        // PostgreSQL runs READ UNCOMMITTED as READ COMMITTED, and shows what was asked.
        level @ ("read committed" | "read uncommitted") => Ok(level.to_string()),
        "repeatable read" | "serializable" => Err(unsupported(
            name,
            value,
            "each statement reads the latest committed data (READ COMMITTED)",
        )),
        _ => Err(invalid(name, value)),
    }
}

fn boolean(name: &'static str, value: &str) -> Result<bool, Error> {
    match value.trim().to_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Ok(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Ok(false),
        _ => Err(Error::InvalidLimit(format!(
            "parameter \"{name}\" requires a Boolean value"
        ))),
    }
}

fn only_off(name: &'static str, value: &str) -> Result<String, Error> {
    if boolean(name, value)? {
        Err(unsupported(
            name,
            value,
            "read-only transactions are not supported yet",
        ))
    } else {
        Ok("off".into())
    }
}

fn only_on(name: &'static str, value: &str) -> Result<String, Error> {
    if boolean(name, value)? {
        Ok("on".into())
    } else {
        Err(unsupported(
            name,
            value,
            "string literals always treat backslashes literally",
        ))
    }
}

fn extra_float_digits(name: &'static str, value: &str) -> Result<String, Error> {
    let digits: i32 = value.trim().parse().map_err(|_| {
        Error::InvalidLimit(format!("parameter \"{name}\" requires a numeric value"))
    })?;
    if !(-15..=3).contains(&digits) {
        return Err(Error::InvalidLimit(format!(
            "{digits} is outside the valid range for parameter \"{name}\" (-15 .. 3)"
        )));
    }
    Ok(digits.to_string())
}

/// The locales whose messages and formats are what wasmudf prints: English, C-style.
fn locale(name: &'static str, value: &str) -> Result<String, Error> {
    let lower = value.trim().to_lowercase();
    if lower.is_empty()
        || lower == "c"
        || lower == "posix"
        || lower.starts_with("c.")
        || lower.starts_with("en_us")
    {
        Ok(value.trim().to_string())
    } else {
        Err(unsupported(
            name,
            value,
            "messages and formats are those of the C locale",
        ))
    }
}

fn statement_timeout(name: &'static str, value: &str) -> Result<String, Error> {
    let limit = parse_duration_or_zero(value.trim()).map_err(|_| {
        Error::InvalidLimit(format!(
            "invalid value for parameter \"{name}\": \"{}\" (examples: 500, '2s', '1min', 0 for none)",
            crate::error::guest_text(value)
        ))
    })?;
    Ok(if limit.is_zero() {
        "0".into()
    } else {
        format_duration(limit)
    })
}

/// An IANA zone name (`Europe/Paris`, `UTC`) or a fixed offset (`+02:00`); a bare
/// number of hours is an offset east of UTC, as PostgreSQL's `SET TIME ZONE -7`.
fn time_zone(name: &'static str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    if let Ok(hours) = value.parse::<i32>() {
        if (-15..=15).contains(&hours) {
            let sign = if hours < 0 { '-' } else { '+' };
            return Ok(format!("{sign}{:02}:00", hours.abs()));
        }
    }
    let canonical = match value.to_uppercase().as_str() {
        "UTC" | "ETC/UTC" | "Z" | "ZULU" | "UCT" => "UTC".to_string(),
        "GMT" | "ETC/GMT" => "GMT".to_string(),
        _ => value.to_string(),
    };
    Tz::from_str(&canonical)
        .map(|_| canonical)
        .map_err(|_| invalid(name, value))
}

/// The session's parameters: the values it set, the transaction's view of them, and
/// the values RESET returns to (the defaults, as overridden at connect).
pub(crate) struct Parameters {
    /// The built-in defaults (for this role).
    boot: HashMap<&'static str, String>,
    /// What RESET returns to: the built-in defaults and what the client set at connect.
    defaults: HashMap<&'static str, String>,
    session: HashMap<&'static str, String>,
    /// `SET LOCAL` values, forgotten when the transaction ends.
    local: HashMap<&'static str, String>,
    /// The session values at BEGIN, restored by ROLLBACK; `None` outside a
    /// transaction block.
    at_begin: Option<HashMap<&'static str, String>>,
    /// The open savepoints, innermost last, each with the values to go back to.
    savepoints: Vec<Savepoint>,
    /// Counts changes, so readers can tell when to re-read.
    version: u64,
}

struct Savepoint {
    name: String,
    session: HashMap<&'static str, String>,
    local: HashMap<&'static str, String>,
}

impl Parameters {
    /// The defaults for a session of `user` (`superuser`: an administrator role).
    pub(crate) fn new(user: &str, superuser: bool) -> Self {
        let defaults: HashMap<&'static str, String> = DEFINITIONS
            .iter()
            .map(|d| {
                let value = match d.default {
                    Initial::Text(t) => t.to_string(),
                    Initial::User => user.to_string(),
                    Initial::Superuser => if superuser { "on" } else { "off" }.to_string(),
                };
                (d.name, value)
            })
            .collect();
        Parameters {
            boot: defaults.clone(),
            defaults,
            session: HashMap::new(),
            local: HashMap::new(),
            at_begin: None,
            savepoints: Vec::new(),
            version: 0,
        }
    }

    fn value(&self, name: &'static str) -> &str {
        self.local
            .get(name)
            .or_else(|| self.session.get(name))
            .or_else(|| self.defaults.get(name))
            .map_or("", String::as_str)
    }

    /// The parameter's name as PostgreSQL spells it, and its current value.
    pub(crate) fn get(&self, name: &str) -> Result<(&'static str, String), Error> {
        let d = definition(name)?;
        Ok((d.name, self.value(d.name).to_string()))
    }

    /// `SET [LOCAL] name = value` (`None`: DEFAULT). `SET LOCAL` outside a transaction
    /// block has no effect, as in PostgreSQL.
    pub(crate) fn set(
        &mut self,
        name: &str,
        value: Option<&str>,
        local: bool,
    ) -> Result<(), Error> {
        let d = definition(name)?;
        if d.access == Fixed {
            return Err(Error::CantChangeParameter(format!(
                "parameter \"{}\" cannot be changed",
                d.name
            )));
        }
        let value = match value {
            Some(v) => Some((d.normalize)(d.name, v)?),
            None => None,
        };
        if local {
            if self.at_begin.is_some() {
                let value =
                    value.unwrap_or_else(|| self.defaults.get(d.name).cloned().unwrap_or_default());
                self.local.insert(d.name, value);
            }
        } else {
            self.local.remove(d.name);
            // RESET / SET ... TO DEFAULT: back to the connect value (pg_settings'
            // source is `default` again).
            match value {
                Some(value) => self.session.insert(d.name, value),
                None => self.session.remove(d.name),
            };
        }
        self.version += 1;
        Ok(())
    }

    /// A parameter given at connect (startup packet or `options=-c`): the session's
    /// value and what RESET returns to. A fixed parameter is refused, as PostgreSQL
    /// refuses `options=-c server_version=1`.
    pub(crate) fn set_at_startup(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let d = definition(name)?;
        if d.access == Fixed {
            return Err(Error::CantChangeParameter(format!(
                "parameter \"{}\" cannot be changed",
                d.name
            )));
        }
        let value = (d.normalize)(d.name, value)?;
        self.defaults.insert(d.name, value);
        self.version += 1;
        Ok(())
    }

    /// `RESET ALL` (and `DISCARD ALL`): every parameter back to its connect value.
    pub(crate) fn reset_all(&mut self) {
        self.session.clear();
        self.local.clear();
        self.version += 1;
    }

    /// Whether a transaction block is open.
    pub(crate) fn in_transaction(&self) -> bool {
        self.at_begin.is_some()
    }

    /// BEGIN: remembers the session values for ROLLBACK.
    pub(crate) fn begin(&mut self) {
        if self.at_begin.is_none() {
            self.at_begin = Some(self.session.clone());
        }
    }

    /// COMMIT: `SET LOCAL` values end; session values stay.
    pub(crate) fn commit(&mut self) {
        self.at_begin = None;
        self.savepoints.clear();
        self.local.clear();
        self.version += 1;
    }

    /// ROLLBACK: the transaction's SETs are undone.
    pub(crate) fn rollback(&mut self) {
        if let Some(values) = self.at_begin.take() {
            self.session = values;
        }
        self.savepoints.clear();
        self.local.clear();
        self.version += 1;
    }

    /// `SAVEPOINT name` (a name may be reused: the newest is the one named after).
    pub(crate) fn savepoint(&mut self, name: &str) -> Result<(), Error> {
        if !self.in_transaction() {
            return Err(Error::NoActiveTransaction(
                "SAVEPOINT can only be used in transaction blocks".into(),
            ));
        }
        self.savepoints.push(Savepoint {
            name: name.to_string(),
            session: self.session.clone(),
            local: self.local.clone(),
        });
        Ok(())
    }

    fn savepoint_index(&self, name: &str, statement: &str) -> Result<usize, Error> {
        if !self.in_transaction() {
            return Err(Error::NoActiveTransaction(format!(
                "{statement} can only be used in transaction blocks"
            )));
        }
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| {
                Error::UndefinedSavepoint(format!(
                    "savepoint \"{}\" does not exist",
                    crate::error::guest_text(name)
                ))
            })
    }

    /// `RELEASE name`: the savepoint and those after it end; their changes stay.
    pub(crate) fn release(&mut self, name: &str) -> Result<(), Error> {
        let i = self.savepoint_index(name, "RELEASE SAVEPOINT")?;
        self.savepoints.truncate(i);
        Ok(())
    }

    /// `ROLLBACK TO name`: the changes since the savepoint are undone; it stays open.
    pub(crate) fn rollback_to(&mut self, name: &str) -> Result<(), Error> {
        let i = self.savepoint_index(name, "ROLLBACK TO SAVEPOINT")?;
        self.savepoints.truncate(i + 1);
        if let Some(s) = self.savepoints.last() {
            self.session = s.session.clone();
            self.local = s.local.clone();
        }
        self.version += 1;
        Ok(())
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The parameters a client is told about in ParameterStatus, with their values.
    pub(crate) fn reported(&self) -> Vec<(&'static str, String)> {
        DEFINITIONS
            .iter()
            .filter(|d| d.reported)
            .map(|d| (d.name, self.value(d.name).to_string()))
            .collect()
    }

    /// Every parameter: name, value, description (`SHOW ALL`).
    pub(crate) fn all(&self) -> Vec<(&'static str, String, &'static str)> {
        DEFINITIONS
            .iter()
            .map(|d| (d.name, self.value(d.name).to_string(), d.description))
            .collect()
    }

    /// Every parameter as `pg_settings` shows it.
    pub(crate) fn setting_rows(&self) -> Vec<SettingRow> {
        DEFINITIONS
            .iter()
            .map(|d| {
                let value = self.value(d.name).to_string();
                let boot = self.boot.get(d.name).cloned().unwrap_or_default();
                let reset = self.defaults.get(d.name).cloned().unwrap_or_default();
                let source = if self.local.contains_key(d.name) || self.session.contains_key(d.name)
                {
                    "session"
                } else if reset != boot {
                    "client"
                } else {
                    "default"
                };
                let (vartype, enumvals) = value_kind(d.name);
                // statement_timeout is an integer of milliseconds there, as in PostgreSQL.
                let in_unit = |v: &str| match d.name {
                    "statement_timeout" => parse_duration_or_zero(v)
                        .map(|t| t.as_millis().to_string())
                        .unwrap_or_else(|_| v.to_string()),
                    _ => v.to_string(),
                };
                SettingRow {
                    name: d.name.to_string(),
                    setting: in_unit(&value),
                    unit: (d.name == "statement_timeout").then_some("ms"),
                    category: if d.access == Fixed {
                        "Preset Options"
                    } else {
                        "Client Connection Defaults"
                    },
                    short_desc: d.description.to_string(),
                    context: if d.access == Fixed {
                        "internal"
                    } else {
                        "user"
                    },
                    vartype,
                    source,
                    enumvals,
                    boot_val: in_unit(&boot),
                    reset_val: in_unit(&reset),
                }
            })
            .collect()
    }

    /// The session time zone (checked when set).
    pub(crate) fn time_zone(&self) -> String {
        self.value("TimeZone").to_string()
    }

    /// `statement_timeout`; `None` when off.
    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        parse_duration_or_zero(self.value("statement_timeout"))
            .ok()
            .filter(|d| !d.is_zero())
    }

    /// How text-format values are printed for this session.
    pub(crate) fn text_format(&self) -> TextFormat {
        TextFormat {
            time_zone: self.time_zone(),
            extra_float_digits: self.value("extra_float_digits").parse().unwrap_or(1),
            bytea_escape: self.value("bytea_output") == "escape",
        }
    }
}

/// A parameter's `pg_settings.vartype`, and an enum's values.
fn value_kind(name: &str) -> (&'static str, Option<Vec<&'static str>>) {
    match name {
        "default_transaction_read_only"
        | "in_hot_standby"
        | "integer_datetimes"
        | "is_superuser"
        | "standard_conforming_strings"
        | "transaction_read_only" => ("bool", None),
        "extra_float_digits"
        | "max_identifier_length"
        | "max_index_keys"
        | "scram_iterations"
        | "server_version_num"
        | "statement_timeout" => ("integer", None),
        "bytea_output" => ("enum", Some(vec!["escape", "hex"])),
        "IntervalStyle" => (
            "enum",
            Some(vec![
                "postgres",
                "postgres_verbose",
                "sql_standard",
                "iso_8601",
            ]),
        ),
        "client_min_messages" => (
            "enum",
            Some(vec![
                "debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning",
                "error",
            ]),
        ),
        "default_transaction_isolation" | "transaction_isolation" => (
            "enum",
            Some(vec![
                "serializable",
                "repeatable read",
                "read committed",
                "read uncommitted",
            ]),
        ),
        _ => ("string", None),
    }
}

/// A session's parameters as `pg_settings` reads them.
#[derive(Debug)]
pub(crate) struct SettingsView(pub SharedParameters);

impl SessionSettings for SettingsView {
    fn rows(&self) -> Vec<SettingRow> {
        self.0.lock().setting_rows()
    }
}

/// The one-column result of `SHOW <name>`, as PostgreSQL returns it.
pub(crate) fn setting_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, false)]))
}

/// `SHOW <name>` as rows: one column named after the setting, one row.
pub(crate) fn setting_output(name: &str, value: String) -> DfResult<Output> {
    rows(setting_schema(name), vec![vec![value]])
}

/// `SHOW ALL`'s columns.
pub(crate) fn show_all_schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["name", "setting", "description"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ))
}

/// `SHOW ALL` as rows of (name, setting, description).
pub(crate) fn show_all_output(entries: Vec<[String; 3]>) -> DfResult<Output> {
    let mut columns = vec![Vec::new(), Vec::new(), Vec::new()];
    for entry in entries {
        for (column, value) in columns.iter_mut().zip(entry) {
            column.push(value);
        }
    }
    rows(show_all_schema(), columns)
}

fn rows(schema: SchemaRef, columns: Vec<Vec<String>>) -> DfResult<Output> {
    let arrays = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter([Ok(batch)]),
    ))))
}

/// The parameters of one session, shared with its `current_setting` / `set_config`.
pub(crate) type SharedParameters = Arc<Mutex<Parameters>>;

/// `current_setting(name [, missing_ok])` and `set_config(name, value, is_local)`
/// over one session's parameters.
#[derive(Debug)]
struct SettingFunction {
    name: &'static str,
    signature: Signature,
    parameters: SharedParameters,
}

impl PartialEq for SettingFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.parameters, &other.parameters)
    }
}

impl Eq for SettingFunction {}

impl std::hash::Hash for SettingFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        Arc::as_ptr(&self.parameters).hash(state);
    }
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameters")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl ScalarUDFImpl for SettingFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let call = CallArgs::new(&args)?;
        let names = call
            .text(0)?
            .unwrap_or_else(|| StringArray::from(Vec::<String>::new()));
        let flags = call.text(if self.name == "current_setting" { 1 } else { 2 })?;
        let flag = |i: usize| {
            flags
                .as_ref()
                .and_then(|f| text_at(f, i))
                .is_some_and(|v| matches!(v, "true" | "t" | "on" | "1"))
        };
        let values = call.text(1)?;
        let mut out = StringBuilder::new();
        for i in 0..call.rows {
            let Some(name) = text_at(&names, i) else {
                out.append_null();
                continue;
            };
            if self.name == "set_config" {
                let value = values.as_ref().and_then(|v| text_at(v, i));
                let mut parameters = self.parameters.lock();
                parameters.set(name, value, flag(i))?;
                out.append_value(parameters.get(name)?.1);
                continue;
            }
            let missing_ok = flag(i);
            let lower = name.to_lowercase();
            // The engine's own settings live in DataFusion's config.
            if lower.starts_with("wasm.") || lower.starts_with("datafusion.") {
                let entry = args
                    .config_options
                    .entries()
                    .into_iter()
                    .find(|e| e.key == lower);
                match entry {
                    Some(e) => out.append_option(e.value),
                    None if missing_ok => out.append_null(),
                    None => return Err(unrecognized(name).into()),
                }
                continue;
            }
            match self.parameters.lock().get(name) {
                Ok((_, value)) => out.append_value(value),
                Err(_) if missing_ok => out.append_null(),
                Err(e) => return Err(e.into()),
            }
        }
        call.result(Arc::new(out.finish()))
    }
}

/// `current_setting` and `set_config` for a session with `parameters`.
pub(crate) fn functions(parameters: &SharedParameters) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(SettingFunction {
            name: "current_setting",
            signature: Signature::one_of(
                vec![TypeSignature::Any(1), TypeSignature::Any(2)],
                Volatility::Stable,
            ),
            parameters: parameters.clone(),
        }),
        ScalarUDF::new_from_impl(SettingFunction {
            name: "set_config",
            signature: Signature::any(3, Volatility::Volatile),
            parameters: parameters.clone(),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_sorted_and_unique() {
        let names: Vec<String> = DEFINITIONS.iter().map(|d| d.name.to_lowercase()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn set_local_ends_with_the_transaction_and_rollback_undoes_set() {
        let mut p = Parameters::new("u", false);
        p.set("TIMEZONE", Some("Europe/Paris"), false).unwrap();
        p.begin();
        p.set("timezone", Some("Asia/Tokyo"), false).unwrap();
        p.set("extra_float_digits", Some("0"), true).unwrap();
        assert_eq!(p.get("extra_float_digits").unwrap().1, "0");
        p.rollback();
        assert_eq!(
            p.get("TimeZone").unwrap(),
            ("TimeZone", "Europe/Paris".into())
        );
        assert_eq!(p.get("extra_float_digits").unwrap().1, "1");
        p.begin();
        p.set("timezone", Some("Asia/Tokyo"), false).unwrap();
        p.commit();
        assert_eq!(p.time_zone(), "Asia/Tokyo");
        p.begin();
        p.set("extra_float_digits", Some("2"), false).unwrap();
        p.savepoint("a").unwrap();
        p.set("extra_float_digits", Some("3"), false).unwrap();
        p.rollback_to("a").unwrap();
        assert_eq!(p.get("extra_float_digits").unwrap().1, "2");
        assert_eq!(p.release("b").unwrap_err().sqlstate(), "3B001");
        p.release("a").unwrap();
        p.commit();
        assert_eq!(p.get("extra_float_digits").unwrap().1, "2");
        assert_eq!(p.savepoint("c").unwrap_err().sqlstate(), "25P01");
        // Outside a transaction block SET LOCAL does nothing (PostgreSQL warns).
        p.set("bytea_output", Some("escape"), true).unwrap();
        assert_eq!(p.get("bytea_output").unwrap().1, "hex");
    }

    #[test]
    fn values_are_checked_like_postgres() {
        let mut p = Parameters::new("u", true);
        let code = |e: Error| e.sqlstate();
        assert_eq!(code(p.set("nope", Some("1"), false).unwrap_err()), "42704");
        assert_eq!(
            code(p.set("server_version", Some("1"), false).unwrap_err()),
            "55P02"
        );
        assert_eq!(
            code(p.set("extra_float_digits", Some("9"), false).unwrap_err()),
            "22023"
        );
        assert_eq!(
            code(p.set("DateStyle", Some("German"), false).unwrap_err()),
            "0A000"
        );
        assert_eq!(
            code(p.set("TimeZone", Some("Mars/Olympus"), false).unwrap_err()),
            "22023"
        );
        assert_eq!(
            code(
                p.set("default_transaction_isolation", Some("serializable"), false)
                    .unwrap_err()
            ),
            "0A000"
        );
        p.set("DateStyle", Some("iso, dmy"), false).unwrap();
        assert_eq!(p.get("datestyle").unwrap().1, "ISO, DMY");
        p.set("statement_timeout", Some("1500"), false).unwrap();
        assert_eq!(p.get("statement_timeout").unwrap().1, "1500ms");
        assert_eq!(p.statement_timeout(), Some(Duration::from_millis(1500)));
        p.set("TimeZone", Some("-7"), false).unwrap();
        assert_eq!(p.time_zone(), "-07:00");
        assert_eq!(p.get("is_superuser").unwrap().1, "on");
        p.set_at_startup("application_name", "app\u{e9}\n").unwrap();
        p.set("application_name", Some("other"), false).unwrap();
        p.reset_all();
        assert_eq!(p.get("application_name").unwrap().1, "app??");
    }
}
