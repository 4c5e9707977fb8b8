//! Checks a spec beyond what its schema can say, and resolves it into the shape planning uses.
//!
//! Every problem is reported (not just the first), each naming the field and the fix.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::model::layout::{self, DEFAULT_GROUP};
use crate::model::name_limits::{GroupNames, NameLimit, names_that_do_not_fit};
use crate::model::spec::{MAX_SEED, SimulationSeriesSpec};

/// Fields the planner adds to the template context; a condition must not define them.
const RESERVED_FIELDS: [&str; 3] = ["seed", "start_seed", "end_seed"];
pub use crate::model::bounds::*;
/// Problems listed one by one; past this only their number is given.
pub const MAX_LISTED_PROBLEMS: usize = 20;

/// One problem with a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Path of the field, e.g. `spec.series.conditions[2].key`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The problems found in a spec: the first [`MAX_LISTED_PROBLEMS`] one by one, and how many
/// more there were (a hostile spec can hold millions of problems).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors {
    pub problems: Vec<SpecError>,
    /// Problems found past the listed ones.
    pub omitted: usize,
}

impl SpecErrors {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        SpecErrors {
            problems: vec![SpecError {
                field: field.into(),
                message: message.into(),
            }],
            omitted: 0,
        }
    }

    pub fn total(&self) -> usize {
        self.problems.len() + self.omitted
    }
}

impl From<Vec<SpecError>> for SpecErrors {
    fn from(mut problems: Vec<SpecError>) -> Self {
        let omitted = problems.len().saturating_sub(MAX_LISTED_PROBLEMS);
        problems.truncate(MAX_LISTED_PROBLEMS);
        SpecErrors { problems, omitted }
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let noun = if total == 1 { "problem" } else { "problems" };
        write!(f, "the series spec has {total} {noun}:")?;
        for error in &self.problems {
            write!(f, "\n  - {error}")?;
        }
        if self.omitted > 0 {
            write!(
                f,
                "\n  … and {} more (the first {MAX_LISTED_PROBLEMS} are listed)",
                self.omitted
            )?;
        }
        Ok(())
    }
}

/// A group as planning sees it: its key, whether it is skipped, and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// The series name for `_`, else `{name}_{group}`.
    pub key: String,
    /// A null value in `series.groups`: the group is not planned.
    pub skipped: bool,
    /// Indices into `spec.series.conditions`, in spec order.
    pub conditions: Vec<usize>,
    /// Indices into `spec.series.inits`, in spec order.
    pub inits: Vec<usize>,
}

/// A spec that passed every check, with groups resolved and seeds sorted.
#[derive(Debug, Clone)]
pub struct ValidSeries<'a> {
    pub spec: &'a SimulationSeriesSpec,
    /// Distinct seeds in ascending order.
    pub seeds: Vec<u32>,
    /// Groups in the order of `series.groups`.
    pub groups: Vec<Group>,
}

impl<'a> ValidSeries<'a> {
    pub fn name(&self) -> &'a str {
        &self.spec.series.name
    }

    pub fn is_arcade(&self) -> bool {
        self.spec.is_arcade()
    }
}

/// Checks `spec` and resolves its groups.
pub fn validate(spec: &SimulationSeriesSpec) -> Result<ValidSeries<'_>, SpecErrors> {
    let mut errors = Errors::default();
    let series = &spec.series;

    errors.name("spec.series.name", &series.name, "series name");
    errors.key(
        "spec.series.templateKey",
        &series.template_key,
        "template key",
    );
    errors.key(
        "spec.series.manifestKey",
        &series.manifest_key,
        "manifest key",
    );

    errors.at_most("spec.series.seeds", series.seeds.len(), MAX_SEEDS, "seeds");
    errors.at_most(
        "spec.series.conditions",
        series.conditions.len(),
        MAX_CONDITIONS,
        "conditions",
    );
    errors.at_most("spec.series.inits", series.inits.len(), MAX_INITS, "inits");
    let runs = series.conditions.len() as u64 * series.seeds.len() as u64;
    if runs > MAX_RUNS {
        errors.push(
            "spec.series",
            format!(
                "{} conditions x {} seeds = {runs} runs; a series may plan at most {MAX_RUNS}: split it into several series",
                series.conditions.len(),
                series.seeds.len()
            ),
        );
    }
    if errors.too_big {
        // Checking millions of entries one by one would only list problems of a spec that is
        // refused anyway.
        std::mem::take(&mut errors).finish()?;
    }

    check_executor(&mut errors, spec);

    let seeds = check_seeds(&mut errors, "spec.series.seeds", &series.seeds);
    if series.seeds.is_empty() {
        errors.push(
            "spec.series.seeds",
            "no seeds; list at least one seed from 0 to 9999",
        );
    }

    if series.conditions.is_empty() {
        errors.push(
            "spec.series.conditions",
            "no conditions; list at least one condition with a unique `key`",
        );
    }
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (i, condition) in series.conditions.iter().enumerate() {
        let field = format!("spec.series.conditions[{i}]");
        errors.name(&format!("{field}.key"), &condition.key, "condition key");
        if let Some(first) = first_with_key.insert(&condition.key, i) {
            errors.push(
                &format!("{field}.key"),
                format!(
                    "duplicate condition key {:?} (also spec.series.conditions[{first}]); give every condition a unique key",
                    condition.key
                ),
            );
            first_with_key.insert(&condition.key, first);
        }
        if let Some(group) = &condition.group {
            errors.name(&format!("{field}.group"), group, "group name");
        }
        for reserved in RESERVED_FIELDS {
            if condition.parameters.contains_key(reserved) {
                errors.push(
                    &format!("{field}.{reserved}"),
                    format!("`{reserved}` is set by simseries for each input; rename the field"),
                );
            }
        }
    }

    if series.extensions.is_empty() {
        errors.push(
            "spec.series.extensions",
            "no extensions; list the output file extensions a complete run has, e.g. [CELLS.tar.xz]",
        );
    }
    let mut seen_extensions = HashSet::new();
    for (i, extension) in series.extensions.iter().enumerate() {
        let field = format!("spec.series.extensions[{i}]");
        errors.extension(&field, extension);
        if !seen_extensions.insert(extension.as_str()) {
            errors.push(
                &field,
                format!("duplicate extension {extension:?}; list each once"),
            );
        }
    }
    if series.extensions.len() > MAX_EXTENSIONS {
        errors.push(
            "spec.series.extensions",
            format!(
                "{} extensions; at most {MAX_EXTENSIONS} are supported",
                series.extensions.len()
            ),
        );
    }

    for (i, init) in series.inits.iter().enumerate() {
        let field = format!("spec.series.inits[{i}]");
        errors.name(&format!("{field}.name"), &init.name, "init name");
        errors.name(&format!("{field}.key"), &init.key, "init key");
        if let Some(group) = &init.group {
            errors.name(&format!("{field}.group"), group, "group name");
        }
        check_seeds(&mut errors, &format!("{field}.seeds"), &init.seeds);
        for (j, extension) in init.extensions.iter().enumerate() {
            errors.extension(&format!("{field}.extensions[{j}]"), extension);
        }
    }

    let groups = resolve_groups(&mut errors, spec);
    check_init_overlaps(&mut errors, spec, &groups);
    let planned: Vec<GroupNames<'_>> = groups
        .iter()
        .filter(|g| !g.skipped)
        .map(|g| GroupNames {
            name: &g.name,
            key: &g.key,
            conditions: g.conditions.len(),
            inits: &g.inits,
        })
        .collect();
    for (field, message) in names_that_do_not_fit(spec, &planned, NameLimit::of(spec)) {
        errors.push(&field, message);
    }

    let parameters = &spec.parameters;
    if parameters.model.trim().is_empty() {
        errors.push(
            "spec.parameters.model",
            "the model name is empty; give e.g. ARCADE or PhysiCell",
        );
    } else {
        // The model names the init folder `inits.{MODEL}`: it must stay one path part.
        errors.name_with_dots("spec.parameters.model", &parameters.model, "model name");
    }
    if parameters.retry_delay > MAX_RETRY_DELAY_SECONDS {
        errors.push(
            "spec.parameters.retryDelay",
            format!(
                "{} seconds is more than a week; give at most {MAX_RETRY_DELAY_SECONDS} (the delay is in seconds)",
                parameters.retry_delay
            ),
        );
    }
    if parameters.retries > MAX_RETRIES {
        errors.push(
            "spec.parameters.retries",
            format!("{} polls; give at most {MAX_RETRIES}", parameters.retries),
        );
    }
    if parameters.log_filter.chars().count() > MAX_LOG_FILTER_CHARS {
        errors.push(
            "spec.parameters.logFilter",
            format!("longer than {MAX_LOG_FILTER_CHARS} characters (CloudWatch Logs' limit)"),
        );
    }
    if parameters.spot_retries > MAX_SPOT_RETRIES {
        errors.push(
            "spec.parameters.spotRetries",
            format!(
                "{} retries; give 0 to {MAX_SPOT_RETRIES} (AWS Batch tries a job at most 10 times)",
                parameters.spot_retries
            ),
        );
    }
    if let Some(seconds) = parameters.timeout_seconds
        && seconds < MIN_TIMEOUT_SECONDS
    {
        errors.push(
            "spec.parameters.timeoutSeconds",
            format!("{seconds} seconds; AWS Batch takes at least {MIN_TIMEOUT_SECONDS}"),
        );
    }
    if let Some(priority) = parameters.scheduling_priority
        && priority > MAX_SCHEDULING_PRIORITY
    {
        errors.push(
            "spec.parameters.schedulingPriority",
            format!("{priority}; give 0 to {MAX_SCHEDULING_PRIORITY}"),
        );
    }
    if let Some(price) = parameters.vcpu_hour_price
        && !(0.0..=MAX_VCPU_HOUR_PRICE).contains(&price)
    {
        errors.push(
            "spec.parameters.vcpuHourPrice",
            format!("{price}; give the price of one vCPU-hour, 0 to {MAX_VCPU_HOUR_PRICE}"),
        );
    }
    if let Some(share) = &spec.context.share_identifier
        && (share.is_empty()
            || share.len() > 255
            || !share.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        errors.push(
            "spec.context.shareIdentifier",
            "give 1 to 255 letters, digits or `_` (AWS Batch's rule for share identifiers)",
        );
    }
    if parameters.seeds_per_job == 0 {
        errors.push("spec.parameters.seedsPerJob", "must be at least 1");
    }
    if let Some(command) = &parameters.command
        && command
            .first()
            .is_none_or(|program| program.trim().is_empty())
    {
        errors.push(
            "spec.parameters.command",
            "the command is empty; give the program and its arguments, e.g. [sh, model.sh]",
        );
    }
    if let Err(e) = crate::model::logfilter::LogFilter::parse(&parameters.log_filter) {
        errors.push("spec.parameters.logFilter", e.to_string());
    }
    let context = &spec.context;
    if context.vcpus == 0 {
        errors.push("spec.context.vcpus", "must be at least 1");
    }
    if context.memory == 0 {
        errors.push("spec.context.memory", "must be at least 1 (MiB)");
    }
    if let Some(account) = &context.account
        && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(
            "spec.context.account",
            format!("{account:?} is not a 12-digit AWS account ID"),
        );
    }
    if let Some(user) = &context.user {
        errors.name("spec.context.user", user, "user name");
    }

    errors.finish()?;
    Ok(ValidSeries {
        spec,
        seeds,
        groups,
    })
}

fn check_seeds(errors: &mut Errors, field: &str, seeds: &[u32]) -> Vec<u32> {
    let mut seen = HashSet::new();
    for (i, seed) in seeds.iter().enumerate() {
        if *seed > MAX_SEED {
            errors.push(
                &format!("{field}[{i}]"),
                format!("seed {seed} is outside 0..=9999 (run keys have four seed digits)"),
            );
        }
        if !seen.insert(*seed) {
            errors.push(
                &format!("{field}[{i}]"),
                format!("seed {seed} is listed twice; list each seed once"),
            );
        }
    }
    let mut sorted: Vec<u32> = seen.into_iter().collect();
    sorted.sort_unstable();
    sorted
}

fn resolve_groups(errors: &mut Errors, spec: &SimulationSeriesSpec) -> Vec<Group> {
    let series = &spec.series;
    let Some(named) = &series.groups else {
        return vec![Group {
            name: DEFAULT_GROUP.to_string(),
            key: layout::group_key(&series.name, DEFAULT_GROUP),
            skipped: false,
            conditions: (0..series.conditions.len()).collect(),
            inits: (0..series.inits.len()).collect(),
        }];
    };
    if named.is_empty() {
        errors.push(
            "spec.series.groups",
            "no groups; leave `groups` out to run every condition as the single group `_`",
        );
        return Vec::new();
    }
    if named.contains_key(DEFAULT_GROUP) {
        if named.len() > 1 {
            errors.push(
                "spec.series.groups",
                "group `_` already holds every condition and cannot be combined with named groups; remove `_` or the other groups",
            );
        }
        let skipped = named[DEFAULT_GROUP].is_none();
        return vec![Group {
            name: DEFAULT_GROUP.to_string(),
            key: layout::group_key(&series.name, DEFAULT_GROUP),
            skipped,
            conditions: (0..series.conditions.len()).collect(),
            inits: (0..series.inits.len()).collect(),
        }];
    }
    let mut groups: Vec<Group> = named
        .iter()
        .map(|(name, description)| {
            errors.name(&format!("spec.series.groups.{name}"), name, "group name");
            Group {
                name: name.clone(),
                key: layout::group_key(&series.name, name),
                skipped: description.is_none(),
                conditions: Vec::new(),
                inits: Vec::new(),
            }
        })
        .collect();
    // Jobs past 10,000 inputs take the file set name `{groupKey}-part{n}`; no group key may
    // look like one, or two jobs would read each other's inputs.
    for group in &groups {
        if let Some((base, part)) = group.name.rsplit_once("-part")
            && !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && named.contains_key(base)
        {
            errors.push(
                &format!("spec.series.groups.{}", group.name),
                format!("group names ending in -part<n> are reserved for the jobs of group {base:?} past 10,000 inputs; rename the group"),
            );
        }
    }
    let index: HashMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.clone(), i))
        .collect();
    let known = groups
        .iter()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    for (i, condition) in series.conditions.iter().enumerate() {
        let field = format!("spec.series.conditions[{i}].group");
        match condition.group.as_deref().map(|g| index.get(g)) {
            Some(Some(&g)) => groups[g].conditions.push(i),
            Some(None) => errors.push(
                &field,
                format!(
                    "group {:?} is not in spec.series.groups ({known}); add it there or fix the name",
                    condition.group.as_deref().unwrap_or_default()
                ),
            ),
            None => errors.push(
                &field,
                format!("missing; with named groups every condition needs a `group` ({known})"),
            ),
        }
    }
    for (i, init) in series.inits.iter().enumerate() {
        let field = format!("spec.series.inits[{i}].group");
        match init.group.as_deref().map(|g| index.get(g)) {
            Some(Some(&g)) => groups[g].inits.push(i),
            Some(None) => errors.push(
                &field,
                format!(
                    "unknown group {:?}: it is not in spec.series.groups ({known}); add it there or fix the name",
                    init.group.as_deref().unwrap_or_default()
                ),
            ),
            None => errors.push(
                &field,
                format!("missing; with named groups every init needs a `group` ({known})"),
            ),
        }
    }
    groups
}

/// Two inits of a group writing the same init file would silently overwrite each other.
fn check_init_overlaps(errors: &mut Errors, spec: &SimulationSeriesSpec, groups: &[Group]) {
    for group in groups {
        let mut owner: HashMap<(u32, &str), usize> = HashMap::new();
        for &i in &group.inits {
            let init = &spec.series.inits[i];
            for seed in &init.seeds {
                for extension in &init.extensions {
                    if let Some(&other) = owner.get(&(*seed, extension.as_str()))
                        && other != i
                    {
                        errors.push(
                            &format!("spec.series.inits[{i}]"),
                            format!(
                                "seed {seed} extension {extension:?} of group {:?} is also provided by spec.series.inits[{other}]; give each seed and extension of a group one init",
                                group.name
                            ),
                        );
                    }
                    owner.insert((*seed, extension.as_str()), i);
                }
            }
        }
    }
}

/// Problems as they are found: the first few kept, the rest counted.
#[derive(Default)]
struct Errors {
    listed: Vec<SpecError>,
    omitted: usize,
    /// A list is over its size bound.
    too_big: bool,
}

impl Errors {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        if self.listed.len() >= MAX_LISTED_PROBLEMS {
            self.omitted += 1;
            return;
        }
        let error = SpecError {
            field: field.to_string(),
            message: message.into(),
        };
        if !self.listed.contains(&error) {
            self.listed.push(error);
        }
    }

    fn at_most(&mut self, field: &str, len: usize, max: usize, what: &str) {
        if len > max {
            self.too_big = true;
            self.push(field, format!("{len} {what}; at most {max} are accepted"));
        }
    }

    /// A key below a location (`series.templateKey`, …): relative, and it cannot climb out.
    fn key(&mut self, field: &str, value: &str, what: &str) {
        if let Err(why) = crate::model::layout::check_relative_key(value) {
            self.push(field, format!("{what} {value:?} {why}"));
        }
    }

    /// One path part that may hold dots (`PhysiCell-1.2`), never `.` or `..`.
    fn name_with_dots(&mut self, field: &str, value: &str, what: &str) {
        let allowed = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !allowed || value.starts_with('.') {
            self.push(
                field,
                format!("{what} {value:?} may only contain letters, digits, `_`, `-` and `.` (not first), and no `/`"),
            );
        }
    }

    /// Names become parts of keys, job names and file names.
    fn name(&mut self, field: &str, value: &str, what: &str) {
        if value.is_empty() {
            self.push(field, format!("the {what} is empty"));
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.push(
                field,
                format!("{what} {value:?} may only contain letters, digits, `_` and `-` (no `.`, `/` or spaces)"),
            );
        }
    }

    fn extension(&mut self, field: &str, value: &str) {
        let valid = !value.is_empty()
            && value.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !valid {
            self.push(
                field,
                format!("extension {value:?} must be dot-separated letters, digits, `_` and `-` without a leading dot, e.g. CELLS.tar.xz"),
            );
        }
    }

    fn finish(self) -> Result<(), SpecErrors> {
        if self.listed.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors {
                problems: self.listed,
                omitted: self.omitted,
            })
        }
    }
}

/// The executor's settings agree with the executor: settings of one it does not use would be
/// silently ignored.
fn check_executor(errors: &mut Errors, spec: &SimulationSeriesSpec) {
    use crate::model::spec::ExecutorKind;
    let context = &spec.context;
    if context.kubernetes.is_some() && context.executor != Some(ExecutorKind::Kubernetes) {
        errors.push(
            "spec.context.kubernetes",
            "set, but spec.context.executor is not `kubernetes`, so the children would not run on Kubernetes; add `executor: kubernetes` or remove the block",
        );
    }
    if context.executor == Some(ExecutorKind::Batch)
        && !context.working_location.starts_with("s3://")
    {
        errors.push(
            "spec.context.workingLocation",
            "AWS Batch jobs read and write S3: give an s3:// working location, or remove `executor: batch` to run the model on this machine",
        );
    }
}
