//! Contact cards on the device: the leases this device holds, the next serial to hand out,
//! issuing with the check digit and lease checked, duplicates to review.

use rusqlite::params;

use super::*;
use crate::doc::station::CardLease;
use crate::model::cards::CardSerial;
use crate::model::time::Date;

/// A card to leave with a household.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCard {
    /// As printed, e.g. `HG-000123-4` (case, spaces and dashes do not matter).
    pub serial: String,
    pub visit: Option<VisitId>,
    pub person: Option<PersonId>,
    pub replaces: Option<CardIssuanceId>,
    /// The serial is not from this device's lease (a found or older card): allowed only
    /// when set, and checked by the server against the station's batches on sync.
    pub outside_lease: bool,
}

/// How many cards this device can still hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardStock {
    /// Unissued serials in this device's active leases.
    pub remaining: u32,
    /// Fewer than the threshold asked about remain: ask the station for a new lease.
    pub low: bool,
    /// The serial to hand out next, if any.
    pub next: Option<String>,
}

/// One serial issued more than once (still active): a human voids all but one.
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicateCard {
    pub serial: String,
    pub issuances: Vec<CardSummary>,
}

impl Store {
    /// The card leases this device holds (returned and expired ones included; see
    /// `CardLease::active`).
    pub fn card_leases(&self) -> Result<Vec<CardLease>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT lease_id, batch_id, prefix, first, last, device_id, expires, returned
                 FROM ix_card_leases WHERE device_id = ?1 ORDER BY prefix, first",
            )?;
            let rows = st
                .query_map([self.device().to_string()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                        r.get::<_, u32>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, bool>(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(
                    |(id, batch, prefix, first, last, device, expires, returned)| {
                        Ok(CardLease {
                            id: CardLeaseId::parse(&id)?,
                            batch: CardBatchId::parse(&batch)?,
                            prefix,
                            first,
                            last,
                            device: DeviceId::parse(&device)?,
                            expires: expires.map(|e| Date::parse(&e)).transpose()?,
                            returned,
                        })
                    },
                )
                .collect()
        })
    }

    /// Whether a serial belongs to one of the station's batches (true when the station has
    /// registered none: its cards are not managed here).
    fn in_station_batch(&self, serial: &CardSerial) -> Result<bool> {
        self.reader_query(|c| {
            let batches: i64 = c.query_row("SELECT count(*) FROM ix_card_batches", [], |r| r.get(0))?;
            let hit: i64 = c.query_row(
                "SELECT count(*) FROM ix_card_batches WHERE prefix = ?1 AND ?2 BETWEEN first AND last",
                params![serial.prefix(), serial.number()],
                |r| r.get(0),
            )?;
            Ok(batches == 0 || hit > 0)
        })
    }

    fn used_serials(&self) -> Result<std::collections::HashSet<String>> {
        self.reader_query(|c| {
            let mut st = c.prepare_cached("SELECT serial FROM ix_cards")?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Unissued serials of the active leases, in order (at most `limit`), and their count.
    fn unissued(&self, as_of: Date, limit: usize) -> Result<(Vec<String>, u32)> {
        let used = self.used_serials()?;
        let mut first = Vec::new();
        let mut count = 0u32;
        for lease in self.card_leases()?.into_iter().filter(|l| l.active(as_of)) {
            for n in lease.first..=lease.last {
                let serial = CardSerial::new(&lease.prefix, n)?.to_string();
                if !used.contains(&serial) {
                    count += 1;
                    if first.len() < limit {
                        first.push(serial);
                    }
                }
            }
        }
        Ok((first, count))
    }

    /// The serial to hand out next: the lowest unissued one of this device's active leases.
    pub fn next_card_serial(&self, as_of: Date) -> Result<Option<String>> {
        Ok(self.unissued(as_of, 1)?.0.into_iter().next())
    }

    /// Cards left to hand out; `low` when fewer than `warn_below` remain.
    pub fn card_stock(&self, as_of: Date, warn_below: u32) -> Result<CardStock> {
        let (next, remaining) = self.unissued(as_of, 1)?;
        Ok(CardStock {
            remaining,
            low: remaining < warn_below,
            next: next.into_iter().next(),
        })
    }

    /// Leave a card with a household: the check digit must match, the serial must be in an
    /// active lease of this device (or `outside_lease` set), and not already issued here.
    pub fn issue_card(
        &self,
        household: HouseholdId,
        card: &NewCard,
        as_of: Date,
    ) -> Result<CardIssuanceId> {
        let serial = CardSerial::parse(&card.serial)?;
        let in_lease = self
            .card_leases()?
            .iter()
            .any(|l| l.active(as_of) && l.contains(&serial));
        if !in_lease && !card.outside_lease {
            return Err(Error::InvalidInput(
                "the serial is not in this device's card lease",
            ));
        }
        if !in_lease && !self.in_station_batch(&serial)? {
            return Err(Error::InvalidInput(
                "the serial is not from this station's card batches",
            ));
        }
        let text = serial.to_string();
        if self
            .cards_by_serial(&text)?
            .iter()
            .any(|c| c.status == CardStatus::Issued)
        {
            return Err(Error::InvalidInput("this card serial is already issued"));
        }
        self.record_card_issuance(
            household,
            &NewCardIssuance {
                serial: text,
                visit: card.visit,
                person: card.person,
                replaces: card.replaces,
            },
        )
    }

    /// Serials with more than one active issuance (two phones offline, or a typo that passed
    /// the check): each waits for a human to void all but one (`set_card_status(.., Void)`).
    pub fn duplicate_cards(&self) -> Result<Vec<DuplicateCard>> {
        let serials: Vec<String> = self.reader_query(|c| {
            let mut st = c.prepare_cached(
                "SELECT serial FROM ix_cards WHERE status = 'issued' GROUP BY serial HAVING count(*) > 1 ORDER BY serial",
            )?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        serials
            .into_iter()
            .map(|serial| {
                let issuances =
                    self.cards_where("serial = ?1 AND status = 'issued'", [serial.clone()])?;
                Ok(DuplicateCard { serial, issuances })
            })
            .collect()
    }

    /// Cards issued to a household.
    pub fn cards_of_household(&self, household: HouseholdId) -> Result<Vec<CardSummary>> {
        self.cards_where("household_id = doorstep_key(?1)", [household.to_string()])
    }

    /// Cards a worker issued between two instants (inclusive), for reports.
    pub fn cards_issued_by(
        &self,
        worker: WorkerId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CardSummary>> {
        self.cards_where(
            "issued_by = doorstep_key(?1) AND issued_at BETWEEN ?2 AND ?3",
            params![worker.to_string(), from.0, to.0],
        )
    }
}
