//! Renders the inputs of a plan from the template and checks each is well-formed XML, all
//! before anything is written.

use minijinja::Value;

use crate::model::validate::ValidSeries;
use crate::planning::plan::{Input, Plan};
use crate::planning::template::{Template, TemplateError, XmlError, check_xml, json_value};

/// One rendered input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedInput {
    /// Key in the working location: `{name}/{date}/inputs/{groupKey}_{index}.xml`.
    pub key: String,
    pub text: String,
}

/// An input that could not be rendered, named by its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("rendering input {input}: {error}")]
    Template { input: String, error: TemplateError },
    #[error(
        "input {input} rendered from template {template} is not well-formed XML: {error}; fix the template (or the condition values it prints)"
    )]
    Xml {
        input: String,
        template: String,
        error: XmlError,
    },
}

/// Renders every input of `plan`, in plan order.
pub fn render_inputs(
    series: &ValidSeries<'_>,
    plan: &Plan,
    template: &Template,
) -> Result<Vec<RenderedInput>, RenderError> {
    let fields: Vec<Vec<(String, Value)>> = series
        .spec
        .series
        .conditions
        .iter()
        .map(|condition| {
            let mut pairs = vec![("key".to_string(), Value::from(condition.key.as_str()))];
            if let Some(group) = &condition.group {
                pairs.push(("group".to_string(), Value::from(group.as_str())));
            }
            pairs.extend(
                condition
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json_value(v))),
            );
            pairs
        })
        .collect();
    let with = |condition: usize, extra: &[(&str, u32)]| {
        let base = fields[condition]
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()));
        Value::from_pairs(base.chain(extra.iter().map(|(k, v)| (*k, Value::from(*v)))))
    };

    let mut rendered = Vec::new();
    for group in &plan.groups {
        for (index, input) in group.inputs.iter().enumerate() {
            let key = group.input_key(&plan.folder, index);
            let context = match input {
                Input::Ranges(ranges) => {
                    let entries: Vec<Value> = ranges
                        .iter()
                        .map(|r| with(r.condition, &[("start_seed", r.start), ("end_seed", r.end)]))
                        .collect();
                    Value::from_pairs([("conditions", Value::from(entries))])
                }
                Input::Run { condition, seed } => with(*condition, &[("seed", *seed)]),
            };
            let text = template
                .render(&context)
                .map_err(|error| RenderError::Template {
                    input: key.clone(),
                    error,
                })?;
            check_xml(&text).map_err(|error| RenderError::Xml {
                input: key.clone(),
                template: template.name().to_string(),
                error,
            })?;
            rendered.push(RenderedInput { key, text });
        }
    }
    Ok(rendered)
}
