//! Who may join and who we are: the node identity (Ed25519), formations and the
//! admission handshake that gates every connection.

mod admission;
mod admitted;
mod enrollment;
mod formation;
mod gate;
mod identity;
mod trust_store;

pub use crate::identity::NodeId;
#[cfg(test)]
pub(crate) use admission::{admit_outbound, Admission};
pub(crate) use admitted::{admit, Admitted, Control};
pub use enrollment::ENROLLED_VALIDITY;
pub use formation::Formation;
pub(crate) use gate::{Gate, News};
pub(crate) use identity::load_or_create_identity;
pub use identity::rotate_identity;
