//! One module per subcommand.

pub mod bugs;
pub mod check;
pub mod explore;
pub mod linearize;
pub mod sim;
pub mod validate;
