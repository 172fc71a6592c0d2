//! Who may join and who we are: the node identity (Ed25519), formations and the
//! admission handshake that gates every connection.

mod admission;
mod formation;
mod identity;

pub(crate) use admission::{admit_inbound, admit_outbound};
pub use formation::Formation;
pub(crate) use identity::load_or_create_identity;
pub use identity::NodeId;
