//! Declares the `loom` cfg so that `#[cfg(loom)]` passes rustc's check-cfg lint.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
