//! The Distributed Matching Engine (being written).
