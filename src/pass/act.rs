//! The thin layer that acts: runs one [`Step`] through storage and the executor and reports
//! its outcome as an [`Outcome`]. Both drivers (the local runner and the Kubernetes controller)
//! use it, so the side effects of a pass are the same everywhere.

use std::sync::Arc;

use crate::executor::spool::Spool;
use crate::executor::{Executor, PassContext, storage_failure};
use crate::model::layout::{self, Date, DatedFolder};
use crate::model::outcome::{Failure, PlanOutcome, PlannedGroup, PlannedJobRecord, Recount};
use crate::model::record::{ChildRecord, GroupRecord, JobDetail, PassRecord};
use crate::model::spec::SimulationSeriesSpec;
use crate::model::status::{Pass, RunCounts, SimulationSeriesStatus};
use crate::model::usage::{ChildUsage, PassUsage, Resources, Usage};
use crate::model::validate::{ValidSeries, validate};
use crate::pass::decide::{Outcome, Step};
use crate::planning::listing;
use crate::planning::manifest::{Completeness, RunState};
use crate::planning::plan::Plan;
use crate::planning::prepare::{
    Locations, PrepareError, Prepared, Stores, prepare, read_completeness,
};
use crate::storage::{self, StorageError};

/// Acts for one series.
pub struct Actor {
    spec: Arc<SimulationSeriesSpec>,
    locations: Locations,
    stores: Stores,
    executor: Arc<dyn Executor>,
    /// Who runs the series (tags of AWS resources): `{namespace}/{name}` or the spec file.
    owner: String,
    /// The date planning uses (tests pin it); default: today in UTC.
    date: Option<Date>,
    /// The plan of the current pass, between `Plan` and `CopyInits`.
    prepared: Option<Prepared>,
}

impl Actor {
    pub fn new(
        spec: Arc<SimulationSeriesSpec>,
        locations: Locations,
        stores: Stores,
        executor: Arc<dyn Executor>,
        owner: String,
    ) -> Self {
        Actor {
            spec,
            locations,
            stores,
            executor,
            owner,
            date: None,
            prepared: None,
        }
    }

    /// Plans with this date instead of today's (tests).
    pub fn with_date(mut self, date: Option<Date>) -> Self {
        self.date = date;
        self
    }

    /// What the executor needs to know about `pass`, once it is planned (it has a date).
    pub fn context(&self, pass: &Pass) -> Result<PassContext, Failure> {
        let date = pass.date.ok_or_else(|| {
            Failure::permanent(
                "PassNotPlanned",
                format!("pass {} has no date: it was not planned", pass.number),
            )
        })?;
        Ok(PassContext {
            spec: self.spec.clone(),
            folder: DatedFolder::new(&self.spec.series.name, date),
            pass: pass.number,
            generation: pass.generation,
            owner: self.owner.clone(),
            working: self.stores.working.clone(),
        })
    }

    /// Runs `step` for the pass in `status`. `Wait` and `Done` are the driver's to handle.
    #[tracing::instrument(skip_all, fields(series = %self.spec.series.name, step = step.name()))]
    pub async fn act(&mut self, status: &SimulationSeriesStatus, step: &Step) -> Outcome {
        let outcome = match status.pass.as_ref() {
            Some(pass) => match self.act_on(pass, status.runs.as_ref(), step).await {
                Ok(outcome) => outcome,
                Err(failure) => step.failed(failure),
            },
            None => Outcome::Resumed,
        };
        // The step had its effect; the driver has not recorded its outcome yet.
        if !matches!(step, Step::Wait { .. } | Step::Done) {
            crate::faults::crash_point(&format!("after-{}", step.name()));
        }
        outcome
    }

    /// Runs `step`; an error is a failure before the step could start.
    async fn act_on(
        &mut self,
        pass: &Pass,
        planned: Option<&RunCounts>,
        step: &Step,
    ) -> Result<Outcome, Failure> {
        Ok(match step {
            Step::Plan => Outcome::Planned(self.plan(pass).await),
            Step::WriteInputs => Outcome::InputsWritten(self.write_inputs(pass).await),
            Step::CopyInits => Outcome::InitsCopied(self.copy_inits().await),
            Step::Register { group } => {
                let context = self.context(pass)?;
                let g = pass.groups.get(*group).ok_or_else(|| {
                    Failure::permanent("NoSuchGroup", format!("no group {group}"))
                })?;
                Outcome::Registered {
                    group: *group,
                    result: self.executor.register(&context, g).await,
                }
            }
            Step::Submit {
                group,
                job,
                may_exist,
            } => {
                let context = self.context(pass)?;
                let (g, j) = pass
                    .groups
                    .get(*group)
                    .and_then(|g| g.jobs.get(*job).map(|j| (g, j)))
                    .ok_or_else(|| {
                        Failure::permanent("NoSuchJob", format!("no job {group}/{job}"))
                    })?;
                Outcome::Submitted {
                    group: *group,
                    job: *job,
                    result: self.executor.submit(&context, g, j, *may_exist).await,
                }
            }
            Step::Poll => {
                let context = self.context(pass)?;
                let jobs: Vec<_> = pass
                    .groups
                    .iter()
                    .flat_map(|g| &g.jobs)
                    .filter(|j| j.id.is_some() && !j.is_finished())
                    .cloned()
                    .collect();
                Outcome::Polled(self.executor.poll(&context, &jobs).await)
            }
            Step::Terminate { jobs } => {
                let records: Vec<_> = pass
                    .groups
                    .iter()
                    .flat_map(|g| &g.jobs)
                    .filter(|j| j.id.as_ref().is_some_and(|id| jobs.contains(id)))
                    .cloned()
                    .collect();
                let context = self.context(pass)?;
                Outcome::Terminated(self.executor.terminate(&context, &records).await)
            }
            Step::CollectLogs => {
                let context = self.context(pass)?;
                Outcome::LogsCollected(self.executor.collect_logs(&context, pass).await)
            }
            Step::Clean => {
                let context = self.context(pass)?;
                Outcome::Cleaned(self.executor.clean(&context, pass).await)
            }
            Step::Recount => Outcome::Recounted(self.recount(pass, planned).await),
            Step::Wait { .. } | Step::Done => Outcome::Resumed,
        })
    }

    async fn plan(&mut self, pass: &Pass) -> Result<PlanOutcome, Failure> {
        let date = self.date.unwrap_or_else(Date::today_utc);
        let prepared = prepare(&self.spec, &self.stores, date)
            .await
            .map_err(|e| prepare_failure(&e))?;
        if !prepared.missing_init_sources.is_empty() {
            let list: Vec<String> = prepared
                .missing_init_sources
                .iter()
                .map(|s| self.locations.working.url_of(s))
                .collect();
            return Err(Failure::permanent(
                "InitFilesMissing",
                format!(
                    "init files are missing from the working location: {}; add them or fix spec.series.inits",
                    list.join(", ")
                ),
            ));
        }
        let outcome = plan_outcome(&self.spec, &prepared.plan, pass.number);
        self.prepared = Some(prepared);
        Ok(outcome)
    }

    async fn write_inputs(&mut self, pass: &Pass) -> Result<(), Failure> {
        let prepared = self.prepared.as_ref().ok_or_else(|| {
            Failure::transient("PlanLost", "the plan of the pass is gone; planning again")
        })?;
        let mut objects: Vec<(String, Vec<u8>)> = prepared
            .inputs
            .iter()
            .map(|input| (input.key.clone(), input.text.clone().into_bytes()))
            .collect();
        let record = pass_record(&self.spec, &prepared.plan, pass);
        let record_key = prepared.plan.folder.pass_record(pass.number);
        objects.push((
            record_key,
            serde_json::to_vec_pretty(&record).expect("record serializes"),
        ));
        self.stores
            .working
            .write_all(objects, storage::DEFAULT_CONCURRENCY)
            .await
            .map_err(|e| storage_failure("InputsNotWritten", &e))
    }

    async fn copy_inits(&mut self) -> Result<(), Failure> {
        let prepared = self.prepared.as_ref().ok_or_else(|| {
            Failure::transient("PlanLost", "the plan of the pass is gone; planning again")
        })?;
        let pairs: Vec<(String, String)> = prepared
            .plan
            .groups
            .iter()
            .flat_map(|g| &g.inits)
            .map(|c| (c.source.clone(), c.target.clone()))
            .collect();
        storage::copy_all(
            self.stores.working.as_ref(),
            pairs,
            storage::DEFAULT_CONCURRENCY,
        )
        .await
        .map_err(|e| storage_failure("InitsNotCopied", &e))
    }

    /// Completeness after the pass, from the outputs in the working location (and the
    /// manifest, when the series uses one), and the final pass record. `planned` are the
    /// counts planning found at the start of the pass.
    async fn recount(
        &mut self,
        pass: &Pass,
        planned: Option<&RunCounts>,
    ) -> Result<Recount, Failure> {
        self.prepared = None;
        let context = self.context(pass)?;
        let series =
            validate(&self.spec).map_err(|e| Failure::permanent("InvalidSpec", e.to_string()))?;
        let record = match &pass.record {
            Some(key) => match self.read_record(key).await {
                Ok(record) => Some((key, record)),
                Err(failure) => {
                    tracing::warn!(reason = %failure.reason, "pass record not read: {}", failure.message);
                    None
                }
            },
            None => None,
        };
        // This pass's outputs (and the manifest) first: they settle a pass that made every
        // run it planned; only otherwise are the other dated folders read into the same table.
        let source = self.spec.series.manifest_source;
        let mut loaded = read_completeness(&series, &self.stores, source, Some(&context.folder))
            .await
            .map_err(|e| prepare_failure(&e))?;
        let settled = match (planned, &record) {
            (Some(planned), Some((_, record))) => settled_counts(&loaded.table, planned, record),
            _ => None,
        };
        let (counts, example_missing) = match settled {
            Some(counts) => (counts, None),
            None => {
                if source.uses_listing() {
                    self.record_other_outputs(&series, &context.folder, &mut loaded.table)
                        .await
                        .map_err(|e| prepare_failure(&PrepareError::Listing(e)))?;
                }
                self.counts_of(&series, &loaded.table, &context.folder)
            }
        };
        let usage = match record {
            Some((key, record)) => match self.finish_record(pass, key, record).await {
                Ok(usage) => usage,
                Err(failure) => {
                    tracing::warn!(reason = %failure.reason, "pass record not updated: {}", failure.message);
                    None
                }
            },
            None => None,
        };
        Ok(Recount {
            counts,
            example_missing,
            outputs: format!("{}outputs/", context.working_url()),
            usage,
        })
    }

    /// Records the outputs of every dated folder but `folder` into `table`.
    async fn record_other_outputs(
        &self,
        series: &ValidSeries<'_>,
        folder: &DatedFolder,
        table: &mut Completeness,
    ) -> Result<(), StorageError> {
        let working = self.stores.working.as_ref();
        let mut others = listing::dated_folders(working, &self.spec.series.name).await?;
        others.retain(|other| *other != folder.root());
        listing::record_outputs(working, series, &others, table).await?;
        Ok(())
    }

    /// The counts of `table` (read from the source planning uses, so the table and the plan
    /// never disagree), and a run still missing, if any.
    fn counts_of(
        &self,
        series: &ValidSeries<'_>,
        table: &Completeness,
        folder: &DatedFolder,
    ) -> (RunCounts, Option<String>) {
        let plan = crate::planning::plan::plan(series, table, folder.date());
        let totals = plan.totals();
        let example_missing = plan
            .groups
            .iter()
            .flat_map(|g| &g.inputs)
            .flat_map(|input| input.runs().into_iter().next())
            .next()
            .map(|(condition, seed)| {
                let key = &self.spec.series.conditions[condition].key;
                layout::run_key(&plan.series, key, seed)
            });
        let counts = RunCounts {
            total: totals.runs,
            complete: totals.complete,
            missing: totals.missing,
            incomplete: totals.incomplete,
        };
        (counts, example_missing)
    }

    async fn read_record(&self, key: &str) -> Result<PassRecord, Failure> {
        let bytes = self
            .stores
            .working
            .read(key)
            .await
            .map_err(|e| storage_failure("RecordUnreadable", &e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Failure::permanent("RecordUnreadable", format!("{key}: {e}")))
    }

    /// Writes every child's outcome, attempts, usage and log key into the pass record, and
    /// returns what the pass's children used (when the executor measured it).
    async fn finish_record(
        &self,
        pass: &Pass,
        key: &str,
        mut record: PassRecord,
    ) -> Result<Option<PassUsage>, Failure> {
        let working = self.stores.working.as_ref();
        let context = self.context(pass)?;
        let resources = Resources {
            vcpus: self.spec.context.vcpus,
            memory: self.spec.context.memory,
        };
        let mut total = Usage::default();
        for group in &pass.groups {
            let logs_saved = group.logs.is_some();
            for job in &group.jobs {
                let outcomes = self.executor.children(&context, job).await?;
                if let Some(detail) = record.job_mut(&job.name) {
                    detail.id = job.id.clone();
                    for (child, mut outcome) in detail.children.iter_mut().zip(outcomes) {
                        let usage = Usage::of_child(&outcome.attempts, resources);
                        if usage.is_measured() {
                            outcome.usage = Some(ChildUsage::of(&usage, resources));
                        }
                        if usage.attempts > 0 {
                            total = total + usage;
                        }
                        child.outcome = Some(outcome);
                        if logs_saved {
                            child.log = Some(context.folder.log(
                                context.pass,
                                &job.file_set_name,
                                child.index as usize,
                            ));
                        }
                    }
                }
            }
        }
        // Serialized into a spool file, not memory: a million children's record runs to
        // hundreds of MB of JSON.
        let spool = Spool::new()?;
        let file = spool.file();
        let serialized = std::fs::File::create(&file).and_then(|out| {
            let mut out = std::io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut out, &record)?;
            std::io::Write::flush(&mut out)
        });
        serialized.map_err(|e| {
            Failure::transient("RecordNotWritten", format!("{}: {e}", file.display()))
        })?;
        working
            .write_from_file(key, &file)
            .await
            .map_err(|e| storage_failure("RecordNotWritten", &e))?;
        // Executors that report no attempts (the local one) measure nothing.
        Ok((total.attempts > 0)
            .then(|| PassUsage::new(&total, self.spec.parameters.vcpu_hour_price)))
    }
}

/// The counts after a pass from a table holding its own dated folder's outputs, when that
/// settles them: every run the pass planned (its record's) now has all its outputs, and
/// planning (`planned`) found every other run complete. `None` otherwise: only every output
/// of the series can then say which runs lack what.
fn settled_counts(
    table: &Completeness,
    planned: &RunCounts,
    record: &PassRecord,
) -> Option<RunCounts> {
    let mut ran = 0u64;
    for run in record.runs() {
        if table.run_state(run) != Some(RunState::Complete) {
            return None;
        }
        ran += 1;
    }
    (planned.complete + ran == planned.total).then_some(RunCounts {
        total: planned.total,
        complete: planned.total,
        missing: 0,
        incomplete: 0,
    })
}

/// The jobs of a plan, as the decision function records them.
pub fn plan_outcome(spec: &SimulationSeriesSpec, plan: &Plan, pass: u32) -> PlanOutcome {
    let totals = plan.totals();
    let user = spec.context.user.as_deref();
    PlanOutcome {
        date: plan.folder.date(),
        counts: RunCounts {
            total: totals.runs,
            complete: totals.complete,
            missing: totals.missing,
            incomplete: totals.incomplete,
        },
        groups: plan
            .groups
            .iter()
            .filter(|g| !g.inputs.is_empty())
            .map(|g| PlannedGroup {
                group: g.name.clone(),
                group_key: g.key.clone(),
                jobs: g
                    .jobs()
                    .into_iter()
                    .map(|j| PlannedJobRecord {
                        name: layout::job_name(user, &j.file_set_name),
                        file_set_name: j.file_set_name,
                        array_size: j.array_size as u32,
                        runs: j.runs as u32,
                    })
                    .collect(),
            })
            .collect(),
        record: plan.folder.pass_record(pass),
    }
}

/// The pass record as written with the inputs: every child's input and runs.
fn pass_record(spec: &SimulationSeriesSpec, plan: &Plan, pass: &Pass) -> PassRecord {
    let user = spec.context.user.as_deref();
    let key_of = |c: usize| spec.series.conditions[c].key.as_str();
    let mut record = PassRecord::new(
        &plan.series,
        pass.number,
        pass.generation,
        &plan.folder.date().to_string(),
    );
    for group in plan.groups.iter().filter(|g| !g.inputs.is_empty()) {
        let jobs = group
            .jobs()
            .into_iter()
            .map(|job| JobDetail {
                name: layout::job_name(user, &job.file_set_name),
                file_set_name: job.file_set_name.clone(),
                id: None,
                children: (0..job.array_size)
                    .map(|i| {
                        let input = &group.inputs[job.first_input + i];
                        ChildRecord {
                            index: i as u32,
                            input: group.input_key(&plan.folder, job.first_input + i),
                            runs: input
                                .runs()
                                .into_iter()
                                .map(|(c, seed)| layout::run_key(&plan.series, key_of(c), seed))
                                .collect(),
                            outcome: None,
                            log: None,
                        }
                    })
                    .collect(),
            })
            .collect();
        record.groups.push(GroupRecord {
            group: group.name.clone(),
            group_key: group.key.clone(),
            jobs,
        });
    }
    record
}

/// Classifies a planning error: the user must act, unless storage was briefly unavailable.
pub fn prepare_failure(error: &PrepareError) -> Failure {
    let message = error.to_string();
    let reason = match error {
        PrepareError::Spec(_) => "InvalidSpec",
        PrepareError::TemplateMissing(e) => return storage_or("TemplateNotFound", e, message),
        PrepareError::ManifestMissing(e) => return storage_or("ManifestNotFound", e, message),
        PrepareError::Listing(e) | PrepareError::Working(e) | PrepareError::Inits(e) => {
            return storage_or("WorkingLocationUnavailable", e, message);
        }
        PrepareError::Manifest(_) => "ManifestInvalid",
        PrepareError::Template(e)
        | PrepareError::Render(crate::planning::inputs::RenderError::Template {
            error: e, ..
        }) => {
            if e.too_expensive {
                "TemplateTooExpensive"
            } else {
                "TemplateError"
            }
        }
        PrepareError::Render(crate::planning::inputs::RenderError::Xml { .. }) => "InvalidXml",
    };
    Failure::permanent(reason, message)
}

/// A storage failure with the fuller message of the planning error that carries it.
fn storage_or(reason: &str, error: &StorageError, message: String) -> Failure {
    Failure {
        message,
        ..storage_failure(reason, error)
    }
}
