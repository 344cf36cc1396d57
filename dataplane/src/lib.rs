//! The shared root load balancer (being written).
