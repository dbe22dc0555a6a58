//! One module per subcommand.

pub mod bench;
pub mod client;
pub mod cluster;
pub mod node;
pub mod sim;
pub mod validate;
