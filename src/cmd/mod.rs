//! One module per subcommand.

pub mod linearize;
pub mod validate;
