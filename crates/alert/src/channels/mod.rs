//! One module per channel kind.

pub mod webhook;
