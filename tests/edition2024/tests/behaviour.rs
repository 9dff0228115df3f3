//! The behaviour tests again, in a crate of edition 2024: temporaries and scopes differ from
//! edition 2021, in which the other tests are written.

#![allow(
    clippy::duplicate_mod,
    reason = "each test file loads the shared helpers of tests/common, as in its own crate"
)]

// The name tests/hygiene.rs reaches the crate under, in every module (an `extern crate` in a
// module does not add to the extern prelude as one at the root does).
extern crate dagjoin as dj;

#[path = "../../fallible.rs"]
mod fallible;
#[allow(
    unused_extern_crates,
    reason = "its own `extern crate` is the one at the root"
)]
#[path = "../../hygiene.rs"]
mod hygiene;
#[path = "../../language.rs"]
mod language;
#[path = "../../placement.rs"]
mod placement;
#[path = "../../schedule.rs"]
mod schedule;
