//! What a series still needs: the runs to (re)run per group, the inputs that run them, and the
//! init copies they need. Pure data in, data out: no I/O here.

use std::cmp::Ordering;

use crate::model::layout::{self, Date, DatedFolder};
use crate::model::validate::ValidSeries;
use crate::planning::manifest::{Completeness, RunState};

/// The plan of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub series: String,
    pub model: String,
    pub arcade: bool,
    pub folder: DatedFolder,
    pub groups: Vec<GroupPlan>,
}

/// The plan of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    pub name: String,
    pub key: String,
    pub skipped: bool,
    /// Completeness per condition of the group, in spec order.
    pub conditions: Vec<ConditionPlan>,
    /// Inputs to write, in index order (`{groupKey}_{index}.xml`). Empty when skipped.
    pub inputs: Vec<Input>,
    /// Init copies, in the order the original flow makes them. Empty when skipped.
    pub inits: Vec<InitCopy>,
}

/// Completeness of one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionPlan {
    /// Index into `spec.series.conditions`.
    pub index: usize,
    pub key: String,
    /// Runs of the condition (= number of seeds).
    pub total: u32,
    pub complete: u32,
    /// Seeds without any output, ascending.
    pub missing: Vec<u32>,
    /// Seeds with some but not all outputs, ascending.
    pub incomplete: Vec<u32>,
}

impl ConditionPlan {
    /// Seeds to run: missing and incomplete, ascending.
    pub fn rerun(&self) -> Vec<u32> {
        let mut seeds = Vec::with_capacity(self.missing.len() + self.incomplete.len());
        seeds.extend_from_slice(&self.missing);
        seeds.extend_from_slice(&self.incomplete);
        seeds.sort_unstable();
        seeds
    }
}

/// The content of one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// ARCADE: seed ranges of one or more conditions, at most `seedsPerJob` seeds in all.
    Ranges(Vec<SeedRange>),
    /// Other models: one run.
    Run { condition: usize, seed: u32 },
}

impl Input {
    /// Runs the input covers, as (condition index, seed).
    pub fn runs(&self) -> Vec<(usize, u32)> {
        match self {
            Input::Ranges(ranges) => ranges
                .iter()
                .flat_map(|r| (r.start..=r.end).map(move |s| (r.condition, s)))
                .collect(),
            Input::Run { condition, seed } => vec![(*condition, *seed)],
        }
    }

    /// Number of runs the input covers.
    pub fn run_count(&self) -> usize {
        match self {
            Input::Ranges(ranges) => ranges.iter().map(|r| r.seed_count() as usize).sum(),
            Input::Run { .. } => 1,
        }
    }
}

/// Consecutive seeds `start..=end` of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    pub condition: usize,
    pub start: u32,
    pub end: u32,
}

impl SeedRange {
    pub fn seed_count(&self) -> u32 {
        self.end - self.start + 1
    }
}

/// One init file to copy, keys relative to the working location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitCopy {
    pub source: String,
    pub target: String,
}

/// One job of a group: a consecutive slice of the group's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJob {
    /// `FILE_SET_NAME` of the job (see [`layout::file_set_name`]).
    pub file_set_name: String,
    /// Index of the job's first input among the group's inputs.
    pub first_input: usize,
    /// Number of inputs (array children).
    pub array_size: usize,
    /// Runs the job covers.
    pub runs: usize,
}

impl GroupPlan {
    /// The jobs of the group: slices of at most [`layout::MAX_ARRAY_SIZE`] inputs.
    pub fn jobs(&self) -> Vec<PlannedJob> {
        self.inputs
            .chunks(layout::MAX_ARRAY_SIZE)
            .enumerate()
            .map(|(part, inputs)| PlannedJob {
                file_set_name: layout::file_set_name(&self.key, part),
                first_input: part * layout::MAX_ARRAY_SIZE,
                array_size: inputs.len(),
                runs: inputs.iter().map(Input::run_count).sum(),
            })
            .collect()
    }

    /// The file set and array index that read input `index` of the group.
    pub fn input_slot(&self, index: usize) -> (String, usize) {
        let part = index / layout::MAX_ARRAY_SIZE;
        (
            layout::file_set_name(&self.key, part),
            index % layout::MAX_ARRAY_SIZE,
        )
    }

    /// Key of input `index` in the working location.
    pub fn input_key(&self, folder: &DatedFolder, index: usize) -> String {
        let (file_set_name, slot) = self.input_slot(index);
        folder.input(&file_set_name, slot)
    }
}

impl Plan {
    /// Runs of the groups that are planned (not skipped).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for group in self.groups.iter().filter(|g| !g.skipped) {
            for condition in &group.conditions {
                totals.runs += u64::from(condition.total);
                totals.complete += u64::from(condition.complete);
                totals.missing += condition.missing.len() as u64;
                totals.incomplete += condition.incomplete.len() as u64;
            }
            totals.inputs += group.inputs.len() as u64;
            totals.inits += group.inits.len() as u64;
        }
        totals
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.inputs.is_empty())
    }
}

/// Counts over the planned groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub runs: u64,
    pub complete: u64,
    pub missing: u64,
    pub incomplete: u64,
    pub inputs: u64,
    pub inits: u64,
}

/// Plans a pass of `series` dated `date`, given what `table` says is complete.
pub fn plan(series: &ValidSeries<'_>, table: &Completeness, date: Date) -> Plan {
    let spec = series.spec;
    let folder = DatedFolder::new(series.name(), date);
    let groups = series
        .groups
        .iter()
        .map(|group| {
            let conditions: Vec<ConditionPlan> = group
                .conditions
                .iter()
                .map(|&c| condition_plan(series, table, c))
                .collect();
            if group.skipped {
                return GroupPlan {
                    name: group.name.clone(),
                    key: group.key.clone(),
                    skipped: true,
                    conditions,
                    inputs: Vec::new(),
                    inits: Vec::new(),
                };
            }
            let inputs = if series.is_arcade() {
                arcade_inputs(&conditions, spec.parameters.seeds_per_job.max(1))
            } else {
                conditions
                    .iter()
                    .flat_map(|c| {
                        c.rerun().into_iter().map(|seed| Input::Run {
                            condition: c.index,
                            seed,
                        })
                    })
                    .collect()
            };
            let inits = init_copies(series, &group.inits, &group.key, &conditions, &folder);
            GroupPlan {
                name: group.name.clone(),
                key: group.key.clone(),
                skipped: false,
                conditions,
                inputs,
                inits,
            }
        })
        .collect();
    Plan {
        series: series.name().to_string(),
        model: spec.parameters.model.clone(),
        arcade: series.is_arcade(),
        folder,
        groups,
    }
}

fn condition_plan(series: &ValidSeries<'_>, table: &Completeness, index: usize) -> ConditionPlan {
    let mut plan = ConditionPlan {
        index,
        key: series.spec.series.conditions[index].key.clone(),
        total: series.seeds.len() as u32,
        complete: 0,
        missing: Vec::new(),
        incomplete: Vec::new(),
    };
    for (slot, &seed) in series.seeds.iter().enumerate() {
        match table.state(index, slot) {
            RunState::Complete => plan.complete += 1,
            RunState::Incomplete => plan.incomplete.push(seed),
            RunState::Missing => plan.missing.push(seed),
        }
    }
    plan
}

/// ARCADE inputs: runs sorted by (condition key, seed), cut into ranges of consecutive seeds,
/// ranges split to at most `per_job` seeds, then packed in order into inputs of at most
/// `per_job` seeds.
fn arcade_inputs(conditions: &[ConditionPlan], per_job: u32) -> Vec<Input> {
    let mut order: Vec<&ConditionPlan> = conditions.iter().collect();
    order.sort_by(|a, b| byte_order(&a.key, &b.key));
    let mut ranges = Vec::new();
    for condition in order {
        let seeds = condition.rerun();
        let mut i = 0;
        while i < seeds.len() {
            let mut j = i;
            while j + 1 < seeds.len() && seeds[j + 1] == seeds[j] + 1 {
                j += 1;
            }
            // seeds[i..=j] are consecutive; split them into chunks of at most per_job.
            let mut start = seeds[i];
            while start <= seeds[j] {
                let end = seeds[j].min(start + per_job - 1);
                ranges.push(SeedRange {
                    condition: condition.index,
                    start,
                    end,
                });
                start = end + 1;
            }
            i = j + 1;
        }
    }
    let mut inputs = Vec::new();
    let mut current: Vec<SeedRange> = Vec::new();
    let mut count = 0;
    for range in ranges {
        if count + range.seed_count() > per_job && !current.is_empty() {
            inputs.push(Input::Ranges(std::mem::take(&mut current)));
            count = 0;
        }
        count += range.seed_count();
        current.push(range);
    }
    if !current.is_empty() {
        inputs.push(Input::Ranges(current));
    }
    inputs
}

/// Python compares strings by code point; for UTF-8 that is byte order.
fn byte_order(a: &str, b: &str) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

/// For each init of the group whose seeds meet a run of the group, every seed and extension of
/// the init.
fn init_copies(
    series: &ValidSeries<'_>,
    inits: &[usize],
    group_key: &str,
    conditions: &[ConditionPlan],
    folder: &DatedFolder,
) -> Vec<InitCopy> {
    let mut running = vec![false; crate::model::spec::MAX_SEED as usize + 1];
    for condition in conditions {
        for seed in condition.missing.iter().chain(&condition.incomplete) {
            running[*seed as usize] = true;
        }
    }
    let model = &series.spec.parameters.model;
    let mut copies = Vec::new();
    for &i in inits {
        let init = &series.spec.series.inits[i];
        if !init
            .seeds
            .iter()
            .any(|s| running.get(*s as usize) == Some(&true))
        {
            continue;
        }
        for seed in &init.seeds {
            for extension in &init.extensions {
                copies.push(InitCopy {
                    source: layout::init_source(&init.name, model, &init.key, extension),
                    target: folder.init_target(group_key, *seed, extension),
                });
            }
        }
    }
    copies
}
