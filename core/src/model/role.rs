//! Who may see what (issue 16, ADR 0019): a worker's role and team, set by the station's
//! admin on the server and told to the worker's phones in every sync response.
//!
//! - A `worker` sees their caseload: the households assigned to them or to their team
//!   (a household a worker creates is assigned to them and their team).
//! - A `supervisor` sees and resolves everything of their station and may assign.
//! - A `county` account reads several stations' reports and console pages; it has no
//!   caseload of its own on a phone (its devices sync the station document only).

use std::fmt;

use crate::error::Error;
use crate::model::worker_label::invisible;

/// A worker's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Sees their caseload (assigned to them or their team).
    #[default]
    Worker,
    /// Sees the whole station.
    Supervisor,
    /// Reads several stations from the console; no caseload on a phone.
    County,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Worker, Role::Supervisor, Role::County];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Supervisor => "supervisor",
            Role::County => "county",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The wire code (docs/protocol.md).
    pub fn to_byte(self) -> u8 {
        match self {
            Role::Worker => 1,
            Role::Supervisor => 2,
            Role::County => 3,
        }
    }

    /// A code this version does not know reads as the narrowest role.
    pub fn from_byte(b: u8) -> Role {
        match b {
            2 => Role::Supervisor,
            3 => Role::County,
            _ => Role::Worker,
        }
    }

    /// Whether this role's devices receive every household of the station.
    pub fn sees_station(self) -> bool {
        self == Role::Supervisor
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest team name, in characters.
pub const MAX_TEAM_CHARS: usize = 32;

/// A checked team name ("村A组", "north villages"): trimmed, 1 to [`MAX_TEAM_CHARS`]
/// characters, one line, nothing invisible. A team groups workers who share a caseload (a
/// village's workers, say); it is not personal data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TeamName(String);

impl TeamName {
    pub fn new(name: &str) -> Result<TeamName, Error> {
        let v = name.trim();
        if v.is_empty() {
            return Err(Error::InvalidInput("a team name must not be empty"));
        }
        if v.chars().count() > MAX_TEAM_CHARS {
            return Err(Error::InvalidInput("a team name is at most 32 characters"));
        }
        if v.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(Error::InvalidInput(
                "control or invisible characters are not allowed in a team name",
            ));
        }
        Ok(TeamName(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_codes_are_narrowest() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(Role::from_byte(r.to_byte()), r);
        }
        assert_eq!(Role::from_byte(0), Role::Worker);
        assert_eq!(Role::from_byte(99), Role::Worker);
        assert_eq!(Role::parse("admin"), None);
        assert!(Role::Supervisor.sees_station());
        assert!(!Role::Worker.sees_station() && !Role::County.sees_station());
    }

    #[test]
    fn team_names_are_checked() {
        assert_eq!(TeamName::new("  村A组 ").unwrap().as_str(), "村A组");
        assert!(TeamName::new("").is_err());
        assert!(TeamName::new("a\nb").is_err());
        assert!(TeamName::new("a\u{200B}b").is_err());
        assert!(TeamName::new(&"x".repeat(33)).is_err());
        assert!(TeamName::new(&"组".repeat(32)).is_ok());
    }
}
