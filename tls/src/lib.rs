//! TLS material for every component (placeholder; being written).
