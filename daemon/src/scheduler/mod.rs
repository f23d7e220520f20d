//! The `scheduler` part; see the crate docs for its place in the flow.
