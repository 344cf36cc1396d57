//! The pieces of `edge-load`, the load generator for the DME's edge-events stream
//! (`StreamEdgeEvent`): the region it runs against ([`region`]: a controller in this process,
//! the DME as a child process whose memory and CPU are read from `/proc`, a grid of cloudlets of
//! one operator) and the clients ([`streams`]: one task per stream, paced messages, counters and
//! the arrival times of pushed events), and [`floor`], the same stream on the same server stack
//! without the DME behind it.

pub mod floor;
pub mod region;
pub mod streams;
