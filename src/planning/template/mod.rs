//! Jinja input templates, rendered as Jinja2 renders them, and the XML check of each result.
//!
//! Jinja2 semantics kept: strict undefined variables, no autoescaping, the final newline
//! dropped, values printed as Python's `str()` prints them (see [`crate::planning::pyfmt`]),
//! `~` and `%` as Python means them ([`operators`]), and filters and tests that differ in
//! minijinja replaced by Jinja2's ([`python`]).

mod operators;
mod printf;
mod python;

use std::fmt;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::planning::pyfmt;

/// A template that failed to parse or render, with the template line when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// Template name (its key) as given in the spec.
    pub template: String,
    /// The render would take more work or memory than an input may ([`FUEL_PER_INPUT`],
    /// [`MAX_INPUT_BYTES`], [`MAX_TEMPLATE_BYTES`]).
    pub too_expensive: bool,
    pub line: Option<usize>,
    pub message: String,
    /// The source text the error points at, when known.
    pub excerpt: Option<String>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template {}", self.template)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": ")?;
        if self.too_expensive {
            write!(f, "too expensive: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(excerpt) = &self.excerpt {
            write!(f, " in `{excerpt}`")?;
        }
        Ok(())
    }
}

impl TemplateError {
    /// A render past the bounds on work and size.
    fn too_expensive(template: &str, line: Option<usize>, message: String) -> Self {
        TemplateError {
            template: template.to_string(),
            too_expensive: true,
            line,
            message,
            excerpt: None,
        }
    }
}

/// Work one input may take: minijinja's fuel, about one unit per instruction. A real input
/// template (a thousand conditions in loops) uses tens of thousands; a runaway loop stops here
/// within a second or two instead of running for hours.
pub const FUEL_PER_INPUT: u64 = 20_000_000;
/// The largest rendered input: model inputs are kilobytes; a bound keeps a runaway template
/// from filling memory before the XML check runs.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// The largest template source read.
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;

/// A parsed template.
pub struct Template {
    env: Environment<'static>,
    name: String,
    /// The source as added to `env`, with its operators rewritten.
    rewritten: operators::Rewritten,
    /// The source as the user wrote it, for error excerpts.
    source: String,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

impl Template {
    /// Parses `source`; a syntax error names its line.
    pub fn parse(name: &str, source: &str) -> Result<Template, TemplateError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::too_expensive(
                name,
                None,
                format!(
                    "{} bytes; a template may have at most {MAX_TEMPLATE_BYTES}",
                    source.len()
                ),
            ));
        }
        let mut env = Environment::new();
        // minijinja's default syntax already drops the final newline, as Jinja2 does.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL_PER_INPUT));
        // Jinja2's Environment does not escape unless told to; minijinja would for `.xml`.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(|out, _state, value| {
            pyfmt::write_str(value, out).map_err(|_| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write output")
            })
        });
        // `dict.items()`, `str.upper()` and friends, as Python templates use them.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        python::register(&mut env);
        let rewritten = operators::rewrite(source);
        env.add_template_owned(name.to_string(), rewritten.source.clone())
            .map_err(|e| template_error(name, source, &rewritten, &e))?;
        Ok(Template {
            env,
            name: name.to_string(),
            rewritten,
            source: source.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders with `context`; an undefined variable is an error naming its line.
    pub fn render(&self, context: &Value) -> Result<String, TemplateError> {
        self.render_with(context, &mut Vec::new())
    }

    /// [`Template::render`] through `scratch`, a buffer kept from one input to the next: the
    /// text grows there and is copied out once at its size, where a buffer of its own would be
    /// reallocated at every doubling.
    pub fn render_with(
        &self,
        context: &Value,
        scratch: &mut Vec<u8>,
    ) -> Result<String, TemplateError> {
        scratch.clear();
        let template = self
            .env
            .get_template(&self.name)
            .expect("the template was added in parse");
        let mut out = BoundedOutput {
            bytes: scratch,
            overflowed: false,
        };
        let rendered = template
            .render_captured_to(context.clone(), &mut out)
            .map(drop);
        if out.overflowed {
            return Err(TemplateError::too_expensive(
                &self.name,
                None,
                format!(
                    "an input would be larger than {MAX_INPUT_BYTES} bytes; check the template's loops"
                ),
            ));
        }
        rendered.map_err(|e| {
            if e.kind() == minijinja::ErrorKind::OutOfFuel {
                return TemplateError::too_expensive(
                    &self.name,
                    e.line(),
                    format!(
                        "rendering one input took more than {FUEL_PER_INPUT} steps; check the template's loops"
                    ),
                );
            }
            template_error(&self.name, &self.source, &self.rewritten, &e)
        })?;
        let text = std::str::from_utf8(out.bytes).map_err(|_| TemplateError {
            template: self.name.clone(),
            too_expensive: false,
            line: None,
            message: "the rendered input is not UTF-8 text".into(),
            excerpt: None,
        })?;
        Ok(text.to_owned())
    }
}

/// Collects rendered output, refusing to grow past [`MAX_INPUT_BYTES`].
struct BoundedOutput<'a> {
    bytes: &'a mut Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for BoundedOutput<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_INPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("input too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The error of the template `name`, its excerpt taken from the `source` the user wrote.
fn template_error(
    name: &str,
    source: &str,
    rewritten: &operators::Rewritten,
    err: &minijinja::Error,
) -> TemplateError {
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let excerpt = err
        .range()
        .map(|range| rewritten.original_offset(range.start)..rewritten.original_offset(range.end))
        .and_then(|range| source.get(range))
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty() && !message.contains(text.as_str()));
    TemplateError {
        template: name.to_string(),
        too_expensive: false,
        line: err.line(),
        message,
        excerpt,
    }
}

/// Converts spec values (YAML read as JSON values) into template values, keeping integers and
/// floats apart (`2` and `2.0` print differently) and the order of map keys.
pub fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => {
            Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), json_value(v))))
        }
    }
}

/// A rendered input that is not well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Checks that `text` is one well-formed XML document: balanced tags, one root element,
/// well-formed attributes, known entities, nothing but whitespace outside the root.
pub fn check_xml(text: &str) -> Result<(), XmlError> {
    // The text is already UTF-8: a reader of its bytes does not check each event again.
    let mut reader = Reader::from_reader(text.as_bytes());
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    let at = |offset: u64, message: String| position_error(text, offset as usize, message);
    loop {
        let before = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| at(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(at(before, "a second root element".into()));
                    }
                }
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| at(before, format!("attribute: {e}")))?;
                    if attribute.value.contains('<') {
                        return Err(at(before, "'<' in an attribute value".into()));
                    }
                    // Only a reference can make a value malformed; most values have none.
                    if attribute.value.contains('&') {
                        attribute
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| at(before, format!("attribute value: {e}")))?;
                    }
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(ref content)
                if depth == 0 && !content.xml10_content().trim().is_empty() =>
            {
                return Err(at(before, "text outside the root element".into()));
            }
            Event::CData(_) if depth == 0 => {
                return Err(at(before, "CDATA outside the root element".into()));
            }
            Event::GeneralRef(ref reference) => {
                if depth == 0 {
                    return Err(at(before, "a reference outside the root element".into()));
                }
                let known = match reference.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => matches!(&**reference, "lt" | "gt" | "amp" | "apos" | "quot"),
                    Err(_) => false,
                };
                if !known {
                    let name: &str = reference;
                    return Err(at(before, format!("unknown entity &{name};")));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth > 0 {
        return Err(position_error(
            text,
            text.len(),
            "an element is not closed".into(),
        ));
    }
    if roots == 0 {
        return Err(position_error(text, text.len(), "no root element".into()));
    }
    Ok(())
}

fn position_error(text: &str, offset: usize, message: String) -> XmlError {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = offset
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    XmlError {
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    /// Outputs of Jinja2 3.1 (rendered with the test environment's `jinja2`).
    #[test]
    fn string_and_center_filters_render_as_jinja2_does() {
        let cases: [(&str, Value, &str); 10] = [
            ("{{ x|string }}", Value::from(1e-05), "1e-05"),
            ("{{ x|string }}", Value::from(1.0), "1.0"),
            ("{{ x|string }}", Value::from(true), "True"),
            (
                "{{ x|string }}",
                Value::from(vec![Value::from(1.5), Value::from(true), Value::from("a")]),
                "[1.5, True, 'a']",
            ),
            ("{{ (x|string)|length }}", Value::from(2.5e-07), "7"),
            ("[{{ x|center(9) }}]", Value::from("ab"), "[    ab   ]"),
            ("[{{ x|center(8) }}]", Value::from("abc"), "[  abc   ]"),
            ("[{{ x|center(7) }}]", Value::from("ab"), "[   ab  ]"),
            ("[{{ x|center(6) }}]", Value::from(1e-05), "[1e-05 ]"),
            ("[{{ x|center(2) }}]", Value::from("abcd"), "[abcd]"),
        ];
        for (source, x, expected) in cases {
            let t = Template::parse("t", source).unwrap();
            assert_eq!(t.render(&context! { x }).unwrap(), expected, "{source}");
        }
        let t = Template::parse("t", "[{{ x|center }}]").unwrap();
        let default = t.render(&context! { x => "ab" }).unwrap();
        assert_eq!(default, format!("[{}ab{}]", " ".repeat(39), " ".repeat(39)));
        let t = Template::parse("t", "{{ x|center(1000000000) }}").unwrap();
        let error = t.render(&context! { x => "ab" }).unwrap_err();
        assert!(error.message.contains("wider than an input"), "{error:?}");
    }

    #[test]
    fn renders_like_jinja2() {
        let t = Template::parse(
            "t.xml",
            "<a x=\"{{ f }}\" y=\"{{ b }}\" z=\"{{ n // 4 }}\">{{ s }}</a>\n",
        )
        .unwrap();
        let out = t
            .render(&context! { f => 1e-05, b => false, n => 50, s => "a&b" })
            .unwrap();
        // No autoescape, no trailing newline, Python floats and booleans.
        assert_eq!(out, "<a x=\"1e-05\" y=\"False\" z=\"12\">a&b</a>");
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel_with_a_clear_error() {
        let t = Template::parse(
            "runaway.xml",
            "<a>{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}</a>",
        )
        .unwrap();
        let err = t.render(&context! {}).unwrap_err();
        assert_eq!(err.template, "runaway.xml");
        assert!(err.too_expensive, "{err}");
        assert!(err.to_string().contains("too expensive"), "{err}");
    }

    #[test]
    fn an_input_larger_than_the_bound_is_refused() {
        let t = Template::parse(
            "big.xml",
            "<a>{% for i in range(100000) %}{{ line }}{% endfor %}</a>",
        )
        .unwrap();
        let line = "x".repeat(1000);
        let err = t.render(&context! { line }).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        // A long but reasonable input renders.
        let line = "x".repeat(10);
        assert!(t.render(&context! { line }).is_ok());
    }

    #[test]
    fn undefined_variables_name_the_line() {
        let t = Template::parse("t.xml", "<a>\n  {{ missing_var }}\n</a>").unwrap();
        let err = t.render(&context! {}).unwrap_err();
        assert_eq!(err.line, Some(2));
        let text = err.to_string();
        assert!(text.contains("template t.xml line 2"), "{text}");
        assert!(text.contains("missing_var"), "{text}");
        // Strict also in conditions, as Jinja2's StrictUndefined.
        let t = Template::parse("t.xml", "{% if nope %}x{% endif %}").unwrap();
        assert!(t.render(&context! {}).is_err());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Template::parse("t.xml", "<a>\n{% for x in y %}\n</a>").unwrap_err();
        assert!(err.line.is_some(), "{err}");
        assert!(err.to_string().starts_with("template t.xml line"), "{err}");
    }

    #[test]
    fn python_methods_work() {
        let t = Template::parse(
            "t",
            "{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}",
        )
        .unwrap();
        let m = json_value(&serde_json::json!({"b": 1.0, "a": true}));
        assert_eq!(t.render(&context! { m }).unwrap(), "b=1.0;a=True;");
    }

    #[test]
    fn well_formed_xml_passes() {
        check_xml("<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\"><b/>&#65;<!-- c --></a>\n").unwrap();
    }

    #[test]
    fn malformed_xml_is_located() {
        let cases = [
            ("<a>\n<b></a>", 2),
            ("<a></a>\n<b/>", 2),
            ("<a x=\"1\" x=\"2\"/>", 1),
            ("<a>\n\n x &foo; </a>", 3),
            ("<a>", 1),
            ("", 1),
            ("<a x=\"<\"/>", 1),
            ("text<a/>", 1),
            ("<a><!-- -- --></a>", 1),
        ];
        for (text, line) in cases {
            let err = check_xml(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
