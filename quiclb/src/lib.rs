//! QUIC connection IDs that carry a server id (placeholder; being written).
