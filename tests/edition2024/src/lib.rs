//! No code: this package runs dagjoin's behaviour tests (`tests/behaviour.rs`) in a crate of
//! edition 2024.
