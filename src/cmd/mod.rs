//! One module per subcommand.

pub mod client;
pub mod cluster;
pub mod node;
pub mod sim;
pub mod validate;
