//! Statements prepared once per connection (the sync path's): a statement sent as text is
//! parsed and planned by PostgreSQL, and costs the server a round trip to prepare, every
//! time; a cached one is only bound and executed.

use std::cell::RefCell;
use std::collections::HashMap;

use ::postgres::types::ToSql;
use ::postgres::{GenericClient, Row, Statement};

use crate::store::StoreResult;

/// One connection's prepared statements, by their SQL text. Kept beside the connection in
/// the pool and dropped with it (a statement belongs to the connection that prepared it).
#[derive(Default)]
pub(super) struct Statements(RefCell<HashMap<String, Statement>>);

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Statements {
    /// The statement for `sql` on this connection, prepared on first use.
    fn get(&self, c: &mut impl GenericClient, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.0.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql)?;
        self.0.borrow_mut().insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(super) fn query(
        &self,
        c: &mut impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Vec<Row>> {
        let s = self.get(c, sql)?;
        Ok(c.query(&s, params)?)
    }

    pub(super) fn query_opt(
        &self,
        c: &mut impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Option<Row>> {
        let s = self.get(c, sql)?;
        Ok(c.query_opt(&s, params)?)
    }

    pub(super) fn query_one(
        &self,
        c: &mut impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<Row> {
        let s = self.get(c, sql)?;
        Ok(c.query_one(&s, params)?)
    }

    pub(super) fn execute(
        &self,
        c: &mut impl GenericClient,
        sql: &str,
        params: Params<'_>,
    ) -> StoreResult<u64> {
        let s = self.get(c, sql)?;
        Ok(c.execute(&s, params)?)
    }
}
