//! The `synod` command.
fn main() {}
