//! Domain types and ids, and the merge policy of every field.

pub mod attachment;
pub mod cards;
pub mod id_number;
pub mod ids;
pub mod person_details;
pub mod policy;
pub mod provenance;
pub mod records;
pub mod role;
pub mod station_work;
pub mod survey;
pub mod time;
pub mod values;
pub mod vocabulary;
pub mod vocabulary_defaults;
pub mod worker_label;
