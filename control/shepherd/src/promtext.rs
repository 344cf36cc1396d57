//! Prometheus text exposition format, pure: the samples of a scraped page (what the root LB and
//! the DME serve on `/metrics`) and the naming and escaping rules for rendering one.
//!
//! Parsing keeps what collectors need: metric name, labels (unescaped) and value; `# HELP` /
//! `# TYPE` comments and timestamps are skipped. A line that does not parse is counted and
//! skipped, never fatal: one odd series must not hide the rest of the page.

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a page, and how many lines could not be read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub samples: Vec<Sample>,
    pub bad_lines: usize,
}

/// Parses a page of Prometheus text.
pub fn parse(text: &str) -> Page {
    let mut page = Page::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(s) => page.samples.push(s),
            None => page.bad_lines += 1,
        }
    }
    page
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// `name{label="value",...} value [timestamp]`, labels optional.
fn parse_line(line: &str) -> Option<Sample> {
    let end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    }
    let mut words = rest.split_ascii_whitespace();
    let value = words.next()?.parse::<f64>().ok()?;
    // An optional integer timestamp, then nothing.
    if let Some(ts) = words.next() {
        ts.parse::<i64>().ok()?;
    }
    if words.next().is_some() {
        return None;
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads labels up to and including `}`; returns what follows.
fn parse_labels<'a>(mut s: &'a str, out: &mut Vec<(String, String)>) -> Option<&'a str> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Some(r);
        }
        let end = s.find(|c: char| !is_name_char(c))?;
        let (key, r) = s.split_at(end);
        if key.is_empty() {
            return None;
        }
        let r = r.trim_start().strip_prefix('=')?.trim_start();
        let (value, r) = quoted(r.strip_prefix('"')?)?;
        out.push((key.to_owned(), value));
        s = r.trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return None;
        }
    }
}

/// A label value after its opening quote: the unescaped value and what follows the closing one.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// A valid metric or label name from `s`: every character outside `[A-Za-z0-9_]` becomes `_`,
/// and a leading digit gets a `_` in front.
pub fn sanitize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    out
}

/// Appends a label value escaped for the text format (`\`, `"` and line feeds).
pub fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
