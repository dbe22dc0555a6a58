//! One module per subcommand.

pub mod bench;
pub mod bugs;
pub mod check;
pub mod client;
pub mod cluster;
pub mod explore;
pub mod import;
pub mod jepsen;
pub mod linearize;
pub mod node;
pub mod sim;
pub mod validate;
