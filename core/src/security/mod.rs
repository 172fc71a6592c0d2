//! Who may join and who we are: the node identity (Ed25519), formations and the
//! admission handshake that gates every connection.

mod admission;
mod admitted;
mod formation;
mod identity;

#[cfg(test)]
pub(crate) use admission::admit_outbound;
pub(crate) use admitted::{admit, Admitted, Control};
pub use formation::Formation;
pub(crate) use identity::load_or_create_identity;
pub use identity::NodeId;
