//! Sequences: the values of serial and identity columns.
//!
//! Values are handed out from memory; the catalog records, a block at a time, the
//! value up to which they may have been handed out (PostgreSQL logs 32 values ahead
//! the same way). A crash loses the rest of the block: the sequence goes on past it,
//! with a gap, and never hands a value out twice. As in PostgreSQL, a value once
//! handed out is used up, whatever becomes of the transaction that took it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::store::catalog::{Catalog, SequenceRecord};

/// Values reserved in the catalog at a time.
const RESERVE: i64 = 32;

/// The sequences of a database.
pub(crate) struct Sequences {
    catalog: Weak<Catalog>,
    /// Sequences used since startup, by `schema.name`: the record as committed, and
    /// the next value to hand out (`None`: past the end of `i64`).
    live: Mutex<HashMap<String, (SequenceRecord, Option<i64>)>>,
}

impl Sequences {
    pub(crate) fn new(catalog: &Arc<Catalog>) -> Arc<Sequences> {
        Arc::new(Sequences {
            catalog: Arc::downgrade(catalog),
            live: Mutex::new(HashMap::new()),
        })
    }

    fn catalog(&self) -> Result<Arc<Catalog>> {
        self.catalog
            .upgrade()
            .ok_or_else(|| Error::Catalog("the database is closed".into()))
    }

    /// `n` values of the sequence `key` (`schema.name`): the first, then each one
    /// `increment` further. 2200H past its maximum (or minimum).
    pub(crate) fn next_values(&self, key: &str, n: usize) -> Result<(i64, i64)> {
        let mut live = self.live.lock();
        if !live.contains_key(key) {
            let record = self
                .catalog()?
                .sequences()?
                .into_iter()
                .find(|s| s.key() == key)
                .ok_or_else(|| {
                    Error::UndefinedRelation(format!(
                        "relation \"{}\" does not exist",
                        crate::error::log_text(key)
                    ))
                })?;
            let next = match record.reserved {
                None => Some(record.start),
                Some(r) => r.checked_add(record.increment),
            };
            live.insert(key.to_string(), (record, next));
        }
        let Some((record, next)) = live.get_mut(key) else {
            return Err(Error::Catalog(format!("sequence {key} vanished")));
        };
        let span = i64::try_from(n)
            .ok()
            .and_then(|n| (n.max(1) - 1).checked_mul(record.increment));
        let within = |v: i64| v >= record.min && v <= record.max;
        let range = next.filter(|&f| within(f)).and_then(|first| {
            span.and_then(|s| first.checked_add(s))
                .filter(|&l| within(l))
                .map(|last| (first, last))
        });
        let Some((first, last)) = range else {
            let (which, bound) = if record.increment > 0 {
                ("maximum", record.max)
            } else {
                ("minimum", record.min)
            };
            return Err(Error::SequenceLimit(format!(
                "nextval: reached {which} value of sequence \"{}\" ({bound})",
                crate::error::log_text(&record.name)
            )));
        };
        let covered = match record.reserved {
            None => false,
            Some(r) if record.increment > 0 => last <= r,
            Some(r) => last >= r,
        };
        if !covered {
            let ahead = last
                .saturating_add(record.increment.saturating_mul(RESERVE))
                .clamp(record.min, record.max);
            let mut reserved = record.clone();
            reserved.reserved = Some(ahead);
            let change = self.catalog()?.change()?;
            change.put_sequence(&reserved)?;
            change.commit()?;
            *record = reserved;
        }
        // Past the maximum, the next call fails.
        *next = last.checked_add(record.increment);
        Ok((first, record.increment))
    }

    /// `setval`: the next value handed out is the one after `value` (`called`) or
    /// `value` itself, committed at once.
    pub(crate) fn set(&self, key: &str, value: i64, called: bool) -> Result<()> {
        let mut live = self.live.lock();
        let catalog = self.catalog()?;
        let mut record = match live.get(key) {
            Some((record, _)) => record.clone(),
            None => catalog
                .sequences()?
                .into_iter()
                .find(|s| s.key() == key)
                .ok_or_else(|| {
                    Error::UndefinedRelation(format!(
                        "relation \"{}\" does not exist",
                        crate::error::log_text(key)
                    ))
                })?,
        };
        if value < record.min || value > record.max {
            return Err(Error::SequenceLimit(format!(
                "setval: value {value} is out of bounds for sequence \"{}\" ({}..{})",
                crate::error::log_text(&record.name),
                record.min,
                record.max
            )));
        }
        let next = if called {
            value.checked_add(record.increment)
        } else {
            Some(value)
        };
        // Everything before `next` counts as handed out, after a restart too.
        record.reserved = Some(if called {
            value
        } else {
            value.saturating_sub(record.increment)
        });
        let change = catalog.change()?;
        change.put_sequence(&record)?;
        change.commit()?;
        live.insert(key.to_string(), (record, next));
        Ok(())
    }

    /// Forgets what memory holds of the sequence `key` (dropped, or replaced).
    pub(crate) fn forget(&self, key: &str) {
        self.live.lock().remove(key);
    }
}
