//! Load generators (being written).
