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
