//! Client protocols: native v1 (JSON control + binary audio over `/agent`).

pub mod protocol;
pub mod twilio;
pub mod v1;
pub mod writer;
