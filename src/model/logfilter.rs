//! `logFilter`: the CloudWatch Logs filter-pattern syntax for unstructured log lines, applied
//! line by line when logs are saved locally (on AWS, CloudWatch applies the same pattern).
//!
//! - `ERROR` — a plain term: the line must contain it (case-sensitive).
//! - `"disk full"` — a quoted phrase: the line must contain it.
//! - `ERROR Exception` — every term and phrase must match.
//! - `?ERROR ?WARN` — at least one of the `?` terms must match.
//! - `-DEBUG` — the line must not contain it.
//! - an empty pattern keeps every line.
//!
//! JSON (`{ $.level = … }`) and space-delimited (`[ip, …]`) patterns are not supported.

use std::fmt;
use std::io::Write as _;

/// A writer that counts what it writes.
struct Counted<'a, W> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes of a line [`LogFilter::copy`] judges it by (and holds at once).
pub const MATCHED_PREFIX: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl LogFilter {
    pub fn parse(pattern: &str) -> Result<LogFilter, FilterError> {
        let pattern = pattern.trim();
        if pattern.starts_with('{') || pattern.starts_with('[') {
            return Err(FilterError(
                "JSON and space-delimited filter patterns are not supported; use terms, \"quoted phrases\", ?optional and -excluded terms".into(),
            ));
        }
        let mut filter = LogFilter::default();
        let mut chars = pattern.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let Some(&first) = chars.peek() else { break };
            let kind = match first {
                '?' | '-' => {
                    chars.next();
                    first
                }
                _ => ' ',
            };
            let mut term = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                term.push(escaped);
                            }
                        }
                        c => term.push(c),
                    }
                }
                if !closed {
                    return Err(FilterError(format!(
                        "unclosed quote in filter pattern {pattern:?}"
                    )));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    term.push(c);
                    chars.next();
                }
            }
            if term.is_empty() {
                continue;
            }
            match kind {
                '?' => filter.any.push(term),
                '-' => filter.none.push(term),
                _ => filter.all.push(term),
            }
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.none.is_empty()
    }

    pub fn matches(&self, line: &str) -> bool {
        self.all.iter().all(|t| line.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| line.contains(t.as_str())))
            && !self.none.iter().any(|t| line.contains(t.as_str()))
    }

    /// Copies the lines of `reader` that match to `writer`, each ending with a newline,
    /// holding at most [`MATCHED_PREFIX`] bytes of a line at once: a log of gigabytes (or one
    /// line of them) streams through. A line is judged by its first `MATCHED_PREFIX` bytes.
    /// Returns the bytes written.
    pub fn copy(
        &self,
        reader: &mut impl std::io::BufRead,
        writer: &mut impl std::io::Write,
    ) -> std::io::Result<u64> {
        let mut out = Counted {
            inner: writer,
            bytes: 0,
        };
        let mut head: Vec<u8> = Vec::new();
        // Within a line past its judged head: whether it is kept.
        let mut keeping: Option<bool> = None;
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            let (part, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => (&chunk[..end], true),
                None => (chunk, false),
            };
            let used = part.len() + usize::from(ends);
            match keeping {
                Some(true) => out.write_all(part)?,
                Some(false) => {}
                None => {
                    let taken = part.len().min(MATCHED_PREFIX - head.len());
                    head.extend_from_slice(&part[..taken]);
                    if head.len() == MATCHED_PREFIX && !ends {
                        let keep = self.judge(&head, &mut out)?;
                        if keep {
                            out.write_all(&part[taken..])?;
                        }
                        head.clear();
                        keeping = Some(keep);
                    }
                }
            }
            if ends {
                self.end_line(&mut head, keeping.take(), &mut out)?;
            }
            reader.consume(used);
        }
        // A last line without its newline.
        if keeping.is_some() || !head.is_empty() {
            self.end_line(&mut head, keeping, &mut out)?;
        }
        Ok(out.bytes)
    }

    /// Ends a line: judged by its `head` unless it was already (`keeping`), and its newline
    /// written when kept.
    fn end_line(
        &self,
        head: &mut Vec<u8>,
        keeping: Option<bool>,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let keep = match keeping {
            Some(keep) => keep,
            None => self.judge(head, out)?,
        };
        if keep {
            out.write_all(b"\n")?;
        }
        head.clear();
        Ok(())
    }

    /// Whether the line that starts with `head` is kept; writes `head` when it is.
    fn judge(&self, head: &[u8], out: &mut impl std::io::Write) -> std::io::Result<bool> {
        let keep = self.matches(&String::from_utf8_lossy(head));
        if keep {
            out.write_all(head)?;
        }
        Ok(keep)
    }

    /// The lines of `text` that match, each ending with a newline.
    pub fn apply(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        let mut out = String::new();
        for line in text.lines().filter(|l| self.matches(l)) {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copying_streams_the_same_lines_as_apply() {
        let long = format!("seed {}", "x".repeat(3 * MATCHED_PREFIX));
        let texts = [
            "a seed 1\nnothing\nseed 2".to_string(),
            "seed\n\n\nseed\n".to_string(),
            format!("{long}\nno\n{long}"),
            format!("{}\nseed", "y".repeat(2 * MATCHED_PREFIX)),
            String::new(),
        ];
        for pattern in ["seed", "", "-seed"] {
            let filter = LogFilter::parse(pattern).unwrap();
            for text in &texts {
                // A tiny buffer makes lines span many reads.
                let mut reader = std::io::BufReader::with_capacity(7, text.as_bytes());
                let mut out = Vec::new();
                let n = filter.copy(&mut reader, &mut out).unwrap();
                let expected = if filter.is_empty() {
                    text.lines().map(|l| format!("{l}\n")).collect::<String>()
                } else {
                    filter.apply(text)
                };
                assert_eq!(String::from_utf8(out).unwrap(), expected, "{pattern:?}");
                assert_eq!(n as usize, expected.len());
            }
        }
    }

    #[test]
    fn terms_phrases_optional_and_excluded() {
        let f = LogFilter::parse("ERROR \"disk full\"").unwrap();
        assert!(f.matches("x ERROR: disk full now"));
        assert!(!f.matches("x ERROR: disk nearly full"));
        assert!(!f.matches("x error: disk full"), "case-sensitive");
        let f = LogFilter::parse("?ERROR ?WARN -retry").unwrap();
        assert!(f.matches("WARN low"));
        assert!(f.matches("ERROR x"));
        assert!(!f.matches("INFO x"));
        assert!(!f.matches("WARN retry 2"));
        assert!(LogFilter::parse("").unwrap().matches("anything"));
        assert_eq!(
            LogFilter::parse("seed")
                .unwrap()
                .apply("a seed 1\nnothing\nseed 2"),
            "a seed 1\nseed 2\n"
        );
    }

    #[test]
    fn unsupported_or_broken_patterns_are_rejected() {
        assert!(LogFilter::parse("{ $.level = \"x\" }").is_err());
        assert!(LogFilter::parse("[ip, user]").is_err());
        assert!(LogFilter::parse("\"open").is_err());
    }
}
