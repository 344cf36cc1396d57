#![no_main]
// The access-ports grammar is owned by edge-model; fuzzed here next to the other L4 inputs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(ports) = edge_model::ports::parse_access_ports(s)
    {
        // What it formats must parse back to the same ports.
        let again = edge_model::ports::format_access_ports(&ports);
        assert_eq!(edge_model::ports::parse_access_ports(&again).ok(), Some(ports));
    }
});
