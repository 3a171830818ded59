//! The console's card forms, checked before anything is written: register a printed batch,
//! lease a range to a phone, return a lease. Each form is read against the station
//! document as it is (gathered by the page) and becomes a `CardOrder` or a `Refusal` the
//! page shows in words. The rules are the CLI's (`doorstep-server cards batch / lease /
//! return`): `crate::cards` and the core check them again when the order is carried out,
//! so a form can never write what the CLI would refuse.

use doorstep_core::doc::station::StationCards;
use doorstep_core::model::cards::MAX_CARD_NUMBER;
use doorstep_core::{CardBatchId, CardLeaseId, CardSerial, Date, DeviceId};

/// What a supervisor asked for, checked against the station document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardOrder {
    Batch {
        prefix: String,
        first: u32,
        last: u32,
    },
    Lease {
        batch: CardBatchId,
        device: DeviceId,
        first: u32,
        last: u32,
        expires: Option<Date>,
    },
    Return {
        lease: CardLeaseId,
    },
}

/// Why a card form was refused. Nothing is written for any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The prefix is not 1–8 letters.
    Prefix,
    /// A number is not a whole number from 1 to 999999.
    Number,
    /// The first number is after the last.
    Reversed,
    /// The range overlaps a batch of the same prefix.
    BatchOverlap,
    /// No such batch in this station.
    UnknownBatch,
    /// The range is not inside its batch.
    OutsideBatch,
    /// The range overlaps a lease of the batch that is not returned.
    LeaseOverlap,
    /// Not a phone of this station that is enrolled and not revoked.
    UnknownDevice,
    /// The expiry is not a date (YYYY-MM-DD).
    Date,
    /// The expiry is before today (station time).
    PastDate,
    /// No such lease in this station.
    UnknownLease,
    /// The lease was returned already.
    Returned,
    /// The station's cards changed between the check and the write: look again.
    Changed,
}

impl Refusal {
    /// The console's word (`view::words`) that explains it.
    pub fn word(self) -> &'static str {
        match self {
            Refusal::Prefix => "card_err_prefix",
            Refusal::Number => "card_err_number",
            Refusal::Reversed => "card_err_reversed",
            Refusal::BatchOverlap => "card_err_batch_overlap",
            Refusal::UnknownBatch => "card_err_unknown_batch",
            Refusal::OutsideBatch => "card_err_outside_batch",
            Refusal::LeaseOverlap => "card_err_lease_overlap",
            Refusal::UnknownDevice => "card_err_unknown_device",
            Refusal::Date => "card_err_date",
            Refusal::PastDate => "card_err_past_date",
            Refusal::UnknownLease => "card_err_unknown_lease",
            Refusal::Returned => "card_err_returned",
            Refusal::Changed => "card_err_changed",
        }
    }

    /// 409 when the form is well formed but clashes with what the station has; 400 else.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BatchOverlap
            | Refusal::LeaseOverlap
            | Refusal::Returned
            | Refusal::Changed => 409,
            _ => 400,
        }
    }
}

/// A card number as typed: digits only (leading zeros allowed, as printed), 1–999999.
fn number(text: &str) -> Result<u32, Refusal> {
    let t = text.trim();
    if t.is_empty() || t.len() > 7 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Number);
    }
    match t.parse::<u32>() {
        Ok(n) if (1..=MAX_CARD_NUMBER).contains(&n) => Ok(n),
        _ => Err(Refusal::Number),
    }
}

fn range(first: &str, last: &str) -> Result<(u32, u32), Refusal> {
    let (first, last) = (number(first)?, number(last)?);
    if first > last {
        return Err(Refusal::Reversed);
    }
    Ok((first, last))
}

/// A printed batch `PREFIX-first` … `PREFIX-last`: batches of one prefix never overlap.
pub fn plan_batch(
    cards: &StationCards,
    prefix: &str,
    first: &str,
    last: &str,
) -> Result<CardOrder, Refusal> {
    // The serial's own rule for prefixes (trimmed, capitalised, 1–8 ASCII letters).
    let prefix = CardSerial::new(prefix, 1)
        .map_err(|_| Refusal::Prefix)?
        .prefix()
        .to_owned();
    let (first, last) = range(first, last)?;
    if cards
        .batches
        .iter()
        .any(|b| b.prefix == prefix && b.first <= last && first <= b.last)
    {
        return Err(Refusal::BatchOverlap);
    }
    Ok(CardOrder::Batch {
        prefix,
        first,
        last,
    })
}

/// What the lease form sent, as typed.
#[derive(Clone, Debug, Default)]
pub struct LeaseForm<'a> {
    pub batch: &'a str,
    pub device: &'a str,
    pub first: &'a str,
    pub last: &'a str,
    /// Empty: no expiry.
    pub expires: &'a str,
}

/// A range of a batch to one of `phones` (the station's enrolled, unrevoked phones), until
/// an optional last day no earlier than `today`; leases of a batch never overlap unless
/// returned.
pub fn plan_lease(
    cards: &StationCards,
    phones: &[DeviceId],
    form: &LeaseForm<'_>,
    today: Date,
) -> Result<CardOrder, Refusal> {
    let batch = CardBatchId::parse(form.batch.trim())
        .ok()
        .and_then(|id| cards.batches.iter().find(|b| b.id == id))
        .ok_or(Refusal::UnknownBatch)?;
    let device = DeviceId::parse(form.device.trim())
        .ok()
        .filter(|d| phones.contains(d))
        .ok_or(Refusal::UnknownDevice)?;
    let (first, last) = range(form.first, form.last)?;
    if first < batch.first || last > batch.last {
        return Err(Refusal::OutsideBatch);
    }
    let expires = match form.expires.trim() {
        "" => None,
        d => Some(Date::parse(d).map_err(|_| Refusal::Date)?),
    };
    if expires.is_some_and(|d| d < today) {
        return Err(Refusal::PastDate);
    }
    if cards
        .leases
        .iter()
        .any(|l| l.batch == batch.id && !l.returned && l.first <= last && first <= l.last)
    {
        return Err(Refusal::LeaseOverlap);
    }
    Ok(CardOrder::Lease {
        batch: batch.id,
        device,
        first,
        last,
        expires,
    })
}

/// Take back a lease that is not returned yet.
pub fn plan_return(cards: &StationCards, lease: &str) -> Result<CardOrder, Refusal> {
    let lease = CardLeaseId::parse(lease.trim())
        .ok()
        .and_then(|id| cards.leases.iter().find(|l| l.id == id))
        .ok_or(Refusal::UnknownLease)?;
    if lease.returned {
        return Err(Refusal::Returned);
    }
    Ok(CardOrder::Return { lease: lease.id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::doc::station::{CardBatch, CardLease};

    fn date(s: &str) -> Date {
        Date::parse(s).unwrap_or_else(|_| panic!("{s}"))
    }

    /// HG 1–100 with 1–10 leased to `phone`, 11–20 leased and returned; QF 1–50.
    fn station(phone: DeviceId) -> StationCards {
        let hg = CardBatchId::new();
        let batch = |id, prefix: &str, first, last| CardBatch {
            id,
            prefix: prefix.into(),
            first,
            last,
        };
        let lease = |first, last, returned| CardLease {
            id: CardLeaseId::new(),
            batch: hg,
            prefix: "HG".into(),
            first,
            last,
            device: phone,
            expires: None,
            returned,
        };
        StationCards {
            batches: vec![
                batch(hg, "HG", 1, 100),
                batch(CardBatchId::new(), "QF", 1, 50),
            ],
            leases: vec![lease(1, 10, false), lease(11, 20, true)],
        }
    }

    #[test]
    fn batches_follow_the_cli_rules() {
        let cards = station(DeviceId::new());
        assert_eq!(
            plan_batch(&cards, " hg ", "101", "000200"),
            Ok(CardOrder::Batch {
                prefix: "HG".into(),
                first: 101,
                last: 200
            })
        );
        // Another prefix may reuse the numbers.
        assert!(plan_batch(&cards, "ZZ", "1", "100").is_ok());
        for prefix in ["", "H1", "ABCDEFGHI", "汉字", "H-G"] {
            assert_eq!(
                plan_batch(&cards, prefix, "1", "2"),
                Err(Refusal::Prefix),
                "{prefix:?}"
            );
        }
        for n in ["", "0", "-1", "1000000", "1e3", "12 3", "99999999999"] {
            assert_eq!(
                plan_batch(&cards, "ZZ", n, "5"),
                Err(Refusal::Number),
                "{n:?}"
            );
        }
        assert_eq!(plan_batch(&cards, "ZZ", "5", "4"), Err(Refusal::Reversed));
        for (first, last) in [("100", "150"), ("1", "1"), ("50", "60"), ("0001", "999999")] {
            assert_eq!(
                plan_batch(&cards, "hg", first, last),
                Err(Refusal::BatchOverlap),
                "{first}-{last}"
            );
        }
    }

    #[test]
    fn leases_stay_inside_their_batch_and_apart() {
        let phone = DeviceId::new();
        let cards = station(phone);
        let hg = cards.batches[0].id.to_string();
        let device = phone.to_string();
        let today = date("2026-12-06");
        let form = |first: &'static str, last: &'static str, expires: &'static str| LeaseForm {
            batch: "",
            device: "",
            first,
            last,
            expires,
        };
        let ask = |f: LeaseForm<'_>| {
            plan_lease(
                &cards,
                &[phone],
                &LeaseForm {
                    batch: &hg,
                    device: &device,
                    ..f
                },
                today,
            )
        };
        // A returned lease's range is free again; expiry today is still usable.
        assert_eq!(
            ask(form("11", "30", "2026-12-06")),
            Ok(CardOrder::Lease {
                batch: cards.batches[0].id,
                device: phone,
                first: 11,
                last: 30,
                expires: Some(today),
            })
        );
        assert!(matches!(
            ask(form("21", "21", "")),
            Ok(CardOrder::Lease { expires: None, .. })
        ));
        assert_eq!(ask(form("10", "12", "")), Err(Refusal::LeaseOverlap));
        assert_eq!(ask(form("90", "101", "")), Err(Refusal::OutsideBatch));
        assert_eq!(ask(form("30", "21", "")), Err(Refusal::Reversed));
        assert_eq!(ask(form("x", "21", "")), Err(Refusal::Number));
        assert_eq!(ask(form("21", "30", "2026-12-05")), Err(Refusal::PastDate));
        assert_eq!(ask(form("21", "30", "2026-13-01")), Err(Refusal::Date));
        assert_eq!(ask(form("21", "30", "next week")), Err(Refusal::Date));
        let other = DeviceId::new().to_string();
        for (batch, device, why) in [
            (hg.as_str(), other.as_str(), Refusal::UnknownDevice),
            (hg.as_str(), "not-an-id", Refusal::UnknownDevice),
            (device.as_str(), device.as_str(), Refusal::UnknownBatch),
            ("", device.as_str(), Refusal::UnknownBatch),
        ] {
            let f = LeaseForm {
                batch,
                device,
                first: "21",
                last: "30",
                expires: "",
            };
            assert_eq!(plan_lease(&cards, &[phone], &f, today), Err(why));
        }
    }

    #[test]
    fn only_a_lease_in_use_is_returned() {
        let cards = station(DeviceId::new());
        let (open, returned) = (&cards.leases[0], &cards.leases[1]);
        assert_eq!(
            plan_return(&cards, &open.id.to_string()),
            Ok(CardOrder::Return { lease: open.id })
        );
        assert_eq!(
            plan_return(&cards, &returned.id.to_string()),
            Err(Refusal::Returned)
        );
        assert_eq!(
            plan_return(&cards, &CardLeaseId::new().to_string()),
            Err(Refusal::UnknownLease)
        );
        assert_eq!(plan_return(&cards, "?"), Err(Refusal::UnknownLease));
    }

    #[test]
    fn every_refusal_has_words_in_both_languages() {
        use crate::console::view::{words, Lang};
        for r in [
            Refusal::Prefix,
            Refusal::Number,
            Refusal::Reversed,
            Refusal::BatchOverlap,
            Refusal::UnknownBatch,
            Refusal::OutsideBatch,
            Refusal::LeaseOverlap,
            Refusal::UnknownDevice,
            Refusal::Date,
            Refusal::PastDate,
            Refusal::UnknownLease,
            Refusal::Returned,
            Refusal::Changed,
        ] {
            for lang in [Lang::Zh, Lang::En] {
                assert!(words(lang).contains_key(r.word()), "{r:?} {lang:?}");
            }
        }
    }
}
