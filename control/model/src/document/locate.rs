//! Maps a line and column back to the document path there (`cloudlets[2].location.colour`), for
//! errors that `serde-saphyr` reports with a position only. It replays the YAML parser's events
//! up to that position, keeping a stack of mapping keys and sequence indexes; only error paths
//! pay for it. Best effort: a text the parser cannot read past gives the path up to that point.

use serde_saphyr::granit_parser::{Event, Parser};

/// Where the parser is inside one open collection.
enum Frame {
    /// `key` is the current (last seen) key; `want_key` tells whether the next node is a key.
    Map { key: Option<String>, want_key: bool },
    /// Index of the current item; `None` before the first one.
    Seq { index: Option<usize> },
}

/// The path of the last node that starts at or before `line`:`column` (both 1-based).
pub(super) fn path_at(text: &str, line: usize, column: usize) -> String {
    walk(text, (line, column), false)
}

/// The path of the innermost mapping or sequence open at `line`:`column`: for errors such as a
/// missing field, which are about a mapping rather than the node they point into.
pub(super) fn container_at(text: &str, line: usize, column: usize) -> String {
    walk(text, (line, column), true)
}

fn walk(text: &str, target: (usize, usize), container: bool) -> String {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut best = String::new();
    while let Some(Ok((event, span))) = parser.next_event() {
        let at = (span.start.line(), span.start.col() + 1);
        let closes = matches!(event, Event::SequenceEnd | Event::MappingEnd);
        // A container error may point at the closing bracket: stop before it pops the frame.
        if at > target || (container && closes && at == target) {
            break;
        }
        match event {
            Event::Scalar(value, ..) => {
                let is_key = node_start(&mut stack, Some(&value));
                best = render(&stack);
                if !is_key {
                    value_done(&mut stack);
                }
            }
            Event::Alias(_) => {
                node_start(&mut stack, None);
                best = render(&stack);
                value_done(&mut stack);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                node_start(&mut stack, None);
                best = render(&stack);
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq { index: None },
                    _ => Frame::Map {
                        key: None,
                        want_key: true,
                    },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    if container {
        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
            *key = None;
        }
        return render(&stack);
    }
    best
}

/// Accounts for a node starting in the innermost collection; returns true when it is a mapping
/// key (whose scalar text, if any, becomes the current key).
fn node_start(stack: &mut [Frame], scalar: Option<&str>) -> bool {
    match stack.last_mut() {
        Some(Frame::Map { key, want_key }) if *want_key => {
            // A complex (collection) key has no name to show.
            *key = Some(scalar.unwrap_or("?").to_owned());
            *want_key = false;
            scalar.is_some()
        }
        Some(Frame::Seq { index }) => {
            *index = Some(index.map_or(0, |i| i + 1));
            false
        }
        _ => false,
    }
}

/// A value finished: the enclosing mapping expects a key next.
fn value_done(stack: &mut [Frame]) {
    if let Some(Frame::Map { want_key, .. }) = stack.last_mut() {
        *want_key = true;
    }
}

fn render(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Seq { index: Some(i) } => path.push_str(&format!("[{i}]")),
            _ => {}
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::{container_at, path_at};

    #[test]
    fn finds_paths_in_block_and_flow_yaml() {
        let text = "version: 1\ncloudlets:\n  - key: {organization: a, name: b}\n    location: {latitude: 1, colour: red}\n  - key: x\n";
        assert_eq!(path_at(text, 1, 10), "version");
        assert_eq!(path_at(text, 3, 14), "cloudlets[0].key.organization");
        assert_eq!(path_at(text, 4, 29), "cloudlets[0].location.colour");
        assert_eq!(path_at(text, 5, 5), "cloudlets[1].key");
        assert_eq!(container_at(text, 4, 29), "cloudlets[0].location");
        assert_eq!(container_at(text, 5, 10), "cloudlets[1]");
    }

    #[test]
    fn finds_paths_in_json() {
        let text = "{\n  \"apps\": [\n    {},\n    {\"key\": 1}\n  ]\n}\n";
        assert_eq!(path_at(text, 4, 6), "apps[1].key");
    }
}
