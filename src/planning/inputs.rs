//! Renders the inputs of a plan from the template and checks each is well-formed XML, all
//! before anything is written.

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object};

use crate::model::spec::Condition;
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

/// Renders every input of `plan`, in plan order, on every core: the inputs are cut into one
/// contiguous share per core, so the first error in plan order is the one reported, as a
/// render on one core would report it.
pub fn render_inputs(
    series: &ValidSeries<'_>,
    plan: &Plan,
    template: &Template,
) -> Result<Vec<RenderedInput>, RenderError> {
    let fields: Vec<ConditionFields> = series
        .spec
        .series
        .conditions
        .iter()
        .map(ConditionFields::of)
        .collect();

    let render =
        |key: String, input: &Input, scratch: &mut Vec<u8>| -> Result<RenderedInput, RenderError> {
            let context = match input {
                Input::Ranges(ranges) => {
                    let entries: Vec<Value> = ranges
                        .iter()
                        .map(|r| fields[r.condition].with(Seeds::Range(r.start, r.end)))
                        .collect();
                    Value::from_pairs([("conditions", Value::from(entries))])
                }
                Input::Run { condition, seed } => fields[*condition].with(Seeds::One(*seed)),
            };
            let text =
                template
                    .render_with(&context, scratch)
                    .map_err(|error| RenderError::Template {
                        input: key.clone(),
                        error,
                    })?;
            check_xml(&text).map_err(|error| RenderError::Xml {
                input: key.clone(),
                template: template.name().to_string(),
                error,
            })?;
            Ok(RenderedInput { key, text })
        };

    let work: Vec<(String, &Input)> = plan
        .groups
        .iter()
        .flat_map(|group| {
            group
                .inputs
                .iter()
                .enumerate()
                .map(|(index, input)| (group.input_key(&plan.folder, index), input))
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below a few hundred inputs a thread costs more than it saves.
    if cores == 1 || work.len() < 256 {
        let mut scratch = Vec::new();
        return work
            .into_iter()
            .map(|(key, input)| render(key, input, &mut scratch))
            .collect();
    }
    let share = work.len().div_ceil(cores);
    let rendered: Vec<Result<Vec<RenderedInput>, RenderError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = work
            .chunks(share)
            .map(|mine| {
                let render = &render;
                scope.spawn(move || {
                    let mut scratch = Vec::new();
                    mine.iter()
                        .map(|(key, input)| render(key.clone(), input, &mut scratch))
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut inputs = Vec::new();
    for share in rendered {
        inputs.extend(share?);
    }
    Ok(inputs)
}

/// A condition's fields as a template sees them (`key`, `group`, then its parameters), made
/// values once and shared by every input that prints the condition: a map built per input
/// would copy them all, once per run in the largest series.
#[derive(Debug, Clone)]
pub struct ConditionFields(Arc<[(Value, Value)]>);

impl ConditionFields {
    pub fn of(condition: &Condition) -> ConditionFields {
        let mut pairs = vec![(Value::from("key"), Value::from(condition.key.as_str()))];
        if let Some(group) = &condition.group {
            pairs.push((Value::from("group"), Value::from(group.as_str())));
        }
        pairs.extend(
            condition
                .parameters
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_value(v))),
        );
        ConditionFields(pairs.into())
    }

    /// The condition in one input: a map, as a dict would be, of its fields then its seeds.
    pub fn with(&self, seeds: Seeds) -> Value {
        Value::from_object(ConditionEntry {
            fields: Arc::clone(&self.0),
            seeds,
        })
    }
}

/// The seeds of a condition in one input: `seed` for an input of one run, `start_seed` and
/// `end_seed` for a range of them.
#[derive(Debug, Clone, Copy)]
pub enum Seeds {
    One(u32),
    Range(u32, u32),
}

impl Seeds {
    fn names(self) -> &'static [&'static str] {
        match self {
            Seeds::One(_) => &["seed"],
            Seeds::Range(..) => &["start_seed", "end_seed"],
        }
    }
}

#[derive(Debug)]
struct ConditionEntry {
    fields: Arc<[(Value, Value)]>,
    seeds: Seeds,
}

impl Object for ConditionEntry {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let seed = match (self.seeds, key) {
            (Seeds::One(seed), "seed") => Some(seed),
            (Seeds::Range(start, _), "start_seed") => Some(start),
            (Seeds::Range(_, end), "end_seed") => Some(end),
            _ => None,
        };
        if let Some(seed) = seed {
            return Some(Value::from(seed));
        }
        self.fields
            .iter()
            .find(|(name, _)| name.as_str() == Some(key))
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let fields = self.fields.iter().map(|(name, _)| name.clone());
        let seeds = self.seeds.names().iter().map(|name| Value::from(*name));
        Enumerator::Values(fields.chain(seeds).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.fields.len() + self.seeds.names().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layout::Date;
    use crate::model::specfile;
    use crate::model::validate::validate;
    use crate::planning::manifest::Completeness;
    use crate::planning::plan::plan;

    /// A series of 100 conditions x 10 seeds, one input per run (1,000 inputs, rendered on
    /// every core); condition `C{bad}` lacks the field the template prints.
    fn rendered(bad: &[usize]) -> Result<Vec<RenderedInput>, RenderError> {
        let conditions: Vec<String> = (0..100)
            .map(|i| {
                if bad.contains(&i) {
                    format!("{{key: C{i:03}}}")
                } else {
                    format!("{{key: C{i:03}, rate: {}}}", f64::from(i as u32) / 8.0)
                }
            })
            .collect();
        let yaml = format!(
            "apiVersion: simseries.io/v1alpha1\nkind: SimulationSeries\nmetadata: {{name: s}}\nspec:\n  context: {{workingLocation: w, manifestLocation: ., templateLocation: ., vcpus: 1, memory: 1}}\n  series: {{name: S, manifestKey: m.csv, templateKey: t.xml, seeds: [0,1,2,3,4,5,6,7,8,9], conditions: [{}], extensions: [A]}}\n  parameters: {{model: toy, retries: 1, retryDelay: 1}}\n",
            conditions.join(", ")
        );
        let spec = specfile::parse(&yaml).unwrap().spec;
        let series = validate(&spec).unwrap();
        let table = Completeness::new(&series);
        let plan = plan(&series, &table, "2024-06-01".parse::<Date>().unwrap());
        let template = Template::parse(
            "t.xml",
            "<run key=\"{{ key }}\" seed=\"{{ seed }}\" rate=\"{{ rate }}\"/>",
        )
        .unwrap();
        render_inputs(&series, &plan, &template)
    }

    #[test]
    fn inputs_come_out_in_plan_order_whatever_the_cores() {
        let inputs = rendered(&[]).unwrap();
        assert_eq!(inputs.len(), 1000);
        for (index, input) in inputs.iter().enumerate() {
            assert_eq!(input.key, format!("S/2024-06-01/inputs/S_{index}.xml"));
            let (condition, seed) = (index / 10, index % 10);
            assert!(
                input
                    .text
                    .starts_with(&format!("<run key=\"C{condition:03}\" seed=\"{seed}\"")),
                "{}",
                input.text
            );
        }
    }

    #[test]
    fn the_first_error_in_plan_order_is_reported() {
        // One bad condition near the end (the last core's share) and one early: the early one
        // is named, as a render on one core would name it.
        let error = rendered(&[95, 7]).unwrap_err().to_string();
        assert!(error.contains("S/2024-06-01/inputs/S_70.xml"), "{error}");
    }
}
