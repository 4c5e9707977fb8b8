//! The `simseries` binary: the command line (`run`, `plan`, `crd`, `controller`). It parses
//! arguments, sets up logging and is the one place where errors become messages and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use simseries::cli::cluster::ClusterSeries;
use simseries::cli::plan_report::{PlanDocument, plan_table};
use simseries::cli::plugin;
use simseries::cli::report::{self, ReportFormat};
use simseries::cli::run::{self, RunOptions, RunOutcome};
use simseries::cli::status::{self, Format, Target};
use simseries::model::layout::Date;
use simseries::model::status::Phase;
use simseries::model::{crd, specfile};
use simseries::planning::prepare::{Locations, Stores, prepare};
use simseries::storage::{LocalStorage, S3Options, Storage};
use std::io::IsTerminal;

/// Declarative parameter sweeps of containerized simulation models on AWS Batch.
#[derive(Parser)]
#[command(name = "simseries", version, about)]
struct Cli {
    /// Address S3 buckets path-style (endpoint/bucket/key), as S3-compatible servers need.
    #[arg(long, global = true, env = "SIMSERIES_S3_PATH_STYLE")]
    s3_path_style: bool,
    /// Log format on stderr (levels from SIMSERIES_LOG, e.g. `info` or `simseries=debug`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dry run: show what a series still needs (missing runs, inputs, init copies) without
    /// writing to the working location.
    Plan {
        /// The SimulationSeries YAML file (the one `kubectl apply` takes).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Also write the rendered inputs and the init copy list under this folder, laid out as
        /// in the working location ({name}/{date}/inputs/...).
        #[arg(long, value_name = "DIR")]
        write_inputs: Option<PathBuf>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Date of the dated folder (YYYY-MM-DD); default: today in UTC.
        #[arg(long)]
        date: Option<Date>,
    },
    /// Reconcile a series to the end of a pass from this machine: plan, write inputs, run the
    /// model for each input (local processes, AWS Batch or Kubernetes Jobs), poll, terminate
    /// stragglers, save logs, clean.
    Run {
        /// The SimulationSeries YAML file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Start a new pass even though the spec did not change (runs what is still missing).
        #[arg(long)]
        rerun: bool,
        /// Only show the plan (same as `simseries plan`).
        #[arg(long)]
        dry_run: bool,
        /// Date of the dated folder (YYYY-MM-DD); default: today in UTC.
        #[arg(long)]
        date: Option<Date>,
        /// With `context.executor: kubernetes`: the kubeconfig of the cluster that runs the
        /// Jobs (default: KUBECONFIG, else ~/.kube/config).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context to use (default: its current one).
        #[arg(long)]
        context: Option<String>,
    },
    /// Run the Kubernetes controller: reconcile SimulationSeries resources on AWS Batch.
    Controller {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "SIMSERIES_NAMESPACE")]
        namespace: Option<String>,
        /// Series reconciled at once.
        #[arg(long, default_value_t = 4)]
        concurrency: u16,
        /// Address of /metrics, /healthz and /readyz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_address: std::net::SocketAddr,
        /// Do not take part in leader election (only with a single replica).
        #[arg(long)]
        no_leader_election: bool,
        /// Name of the coordination.k8s.io Lease used for leader election.
        #[arg(long, default_value = "simseries-controller")]
        lease_name: String,
        /// Namespace of the Lease (default: POD_NAMESPACE, else the client's namespace).
        #[arg(long)]
        lease_namespace: Option<String>,
        /// Which S3 locations and Batch queues each namespace may use: a grants file (read at
        /// every pass), or `any` on a cluster whose series authors may use all the role
        /// reaches. Without it every series is refused.
        #[arg(long, env = "SIMSERIES_TENANCY")]
        tenancy: Option<String>,
    },
    /// Show a series: its completeness per condition, the current or last pass with each
    /// job, and the runs that failed (a local series with -f, or one in the cluster by name).
    #[command(group(clap::ArgGroup::new("series").required(true).args(["name", "file"])))]
    Status {
        /// A series in the cluster (kubeconfig as kubectl reads it).
        name: Option<String>,
        /// A local series: its SimulationSeries YAML file.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Namespace of the series (default: the context's).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// The kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = StatusOutput::Table)]
        output: StatusOutput,
        /// Show the status again every 5 s until the pass ends.
        #[arg(long)]
        watch: bool,
    },
    /// Write a report to look at: one self-contained HTML file with the completeness map
    /// (conditions x seeds), the bars, the pass and the failed runs; or the map alone with
    /// --format svg|png (a local series with -f, or one in the cluster by name).
    #[command(group(clap::ArgGroup::new("series").required(true).args(["name", "file"])))]
    Report {
        /// A series in the cluster (kubeconfig as kubectl reads it).
        name: Option<String>,
        /// A local series: its SimulationSeries YAML file.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Namespace of the series (default: the context's).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// The kubeconfig context to use.
        #[arg(long)]
        context: Option<String>,
        /// What to write.
        #[arg(long, value_enum, default_value_t = ReportOutput::Html)]
        format: ReportOutput,
        /// Where to write it (default: SERIES-report.html, .svg or .png here).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the CustomResourceDefinition YAML.
    Crd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportOutput {
    Html,
    Svg,
    Png,
}

impl From<ReportOutput> for ReportFormat {
    fn from(output: ReportOutput) -> ReportFormat {
        match output {
            ReportOutput::Html => ReportFormat::Html,
            ReportOutput::Svg => ReportFormat::Svg,
            ReportOutput::Png => ReportFormat::Png,
        }
    }
}

/// `kubectl simseries`: the same binary installed as the kubectl plugin `kubectl-simseries`.
#[derive(Parser)]
#[command(
    name = "kubectl simseries",
    bin_name = "kubectl simseries",
    version,
    about = "SimulationSeries in the cluster: status, the log of a run, rerun, plan"
)]
struct Plugin {
    /// Namespace of the series (default: the context's).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Address S3 buckets path-style (endpoint/bucket/key), as S3-compatible servers need.
    #[arg(long, global = true, env = "SIMSERIES_S3_PATH_STYLE")]
    s3_path_style: bool,
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Completeness per condition, the current or last pass with each job, failed runs.
    Status {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t = StatusOutput::Table)]
        output: StatusOutput,
        /// Show the status again every 5 s until the pass ends.
        #[arg(long)]
        watch: bool,
    },
    /// Write the series' report (one HTML file; the completeness map alone with --format).
    Report {
        name: String,
        #[arg(long, value_enum, default_value_t = ReportOutput::Html)]
        format: ReportOutput,
        /// Where to write it (default: SERIES-report.html, .svg or .png here).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the saved log of one run (CONDITION_SEED, e.g. LOW_0003, or an input name).
    Logs { name: String, run: String },
    /// Run what is still missing: set the simseries.io/rerun annotation to a fresh value.
    Rerun { name: String },
    /// Dry run of the series' live spec: what a pass would plan now.
    Plan {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Date of the dated folder (YYYY-MM-DD); default: today in UTC.
        #[arg(long)]
        date: Option<Date>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusOutput {
    Table,
    Json,
    Yaml,
}

impl From<StatusOutput> for Format {
    fn from(output: StatusOutput) -> Format {
        match output {
            StatusOutput::Table => Format::Table,
            StatusOutput::Json => Format::Json,
            StatusOutput::Yaml => Format::Yaml,
        }
    }
}

/// Refresh period of `status --watch`.
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Whether this binary runs as the kubectl plugin (invoked as `kubectl-simseries`).
fn invoked_as_plugin() -> bool {
    std::env::args_os()
        .next()
        .and_then(|arg| {
            PathBuf::from(arg)
                .file_name()
                .map(|f| f.to_string_lossy().starts_with("kubectl-simseries"))
        })
        .unwrap_or(false)
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn main() -> ExitCode {
    // Crash points of the tests; nothing without the `failpoints` feature.
    let _crash_points = simseries::faults::setup();
    if invoked_as_plugin() {
        let plugin = Plugin::parse();
        init_logs(LogFormat::Text, "simseries=warn");
        return finish(runtime().block_on(run_plugin(plugin)));
    }
    let cli = Cli::parse();
    // The commands report to the user themselves; the controller logs what it does.
    let default_level = if matches!(cli.command, Command::Controller { .. }) {
        "info"
    } else {
        "simseries=warn"
    };
    init_logs(cli.log_format, default_level);
    finish(runtime().block_on(run(cli)))
}

fn init_logs(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIMSERIES_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal: a log file or a pod's log gets plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

fn finish(result: Result<ExitCode, Failed>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_plugin(plugin: Plugin) -> Result<ExitCode, Failed> {
    let s3 = S3Options {
        force_path_style: plugin.s3_path_style,
        fallback_region: None,
    };
    let namespace = plugin.namespace.as_deref();
    let context = plugin.context.as_deref();
    match plugin.command {
        PluginCommand::Status {
            name,
            output,
            watch,
        } => {
            let target = Target::Cluster {
                name,
                namespace: plugin.namespace.clone(),
                context: plugin.context.clone(),
            };
            status::show(
                &target,
                &s3,
                output.into(),
                watch.then_some(WATCH_EVERY),
                out,
            )
            .await?;
        }
        PluginCommand::Report { name, format, out } => {
            let target = Target::Cluster {
                name,
                namespace: plugin.namespace.clone(),
                context: plugin.context.clone(),
            };
            write_report(&target, &s3, format, out).await?;
        }
        PluginCommand::Logs { name, run } => {
            let cluster = ClusterSeries::connect(namespace, context).await?;
            let log = plugin::log(&cluster, &name, &run, &s3).await?;
            out(&String::from_utf8_lossy(&log));
        }
        PluginCommand::Rerun { name } => {
            let cluster = ClusterSeries::connect(namespace, context).await?;
            let value = plugin::rerun(&cluster, &name).await?;
            out(&format!(
                "simulationseries.simseries.io/{name} rerun requested (simseries.io/rerun={value})\n"
            ));
        }
        PluginCommand::Plan { name, output, date } => {
            let cluster = ClusterSeries::connect(namespace, context).await?;
            let (view, prepared) = plugin::plan(&cluster, &name, &s3, date).await?;
            print_plan(&view.spec, &view.locations, &prepared, output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The binary's edge: every error ends here as a message and an exit code.
type Failed = Box<dyn std::error::Error>;

async fn run(cli: Cli) -> Result<ExitCode, Failed> {
    let s3 = S3Options {
        force_path_style: cli.s3_path_style,
        fallback_region: None,
    };
    match cli.command {
        Command::Controller {
            namespace,
            concurrency,
            metrics_address,
            no_leader_election,
            lease_name,
            lease_namespace,
            tenancy,
        } => {
            simseries::controller::run(simseries::controller::ControllerOptions {
                namespace,
                concurrency,
                metrics_address,
                leader_election: !no_leader_election,
                lease_name,
                lease_namespace,
                s3,
                tenancy: simseries::controller::tenancy::Tenancy::from_flag(tenancy.as_deref()),
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crd => {
            out(&crd::crd_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            file,
            dry_run: true,
            date,
            ..
        } => plan(&file, None, Output::Table, date, s3).await,
        Command::Run {
            file,
            rerun,
            dry_run: false,
            date,
            kubeconfig,
            context,
        } => {
            let outcome = run::run(RunOptions {
                file,
                rerun,
                s3,
                progress_bar: std::io::stderr().is_terminal(),
                date,
                kubeconfig,
                kube_context: context,
            })
            .await?;
            report_run(&outcome);
            Ok(if outcome.interrupted {
                ExitCode::from(130)
            } else if outcome.all_complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plan {
            file,
            write_inputs,
            output,
            date,
        } => plan(&file, write_inputs, output, date, s3).await,
        Command::Status {
            name,
            file,
            namespace,
            context,
            output,
            watch,
        } => {
            let target = target_of(file, name, namespace, context)?;
            status::show(
                &target,
                &s3,
                output.into(),
                watch.then_some(WATCH_EVERY),
                out,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            name,
            file,
            namespace,
            context,
            format,
            out,
        } => {
            let target = target_of(file, name, namespace, context)?;
            write_report(&target, &s3, format, out).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn plan(
    file: &std::path::Path,
    write_inputs: Option<PathBuf>,
    output: Output,
    date: Option<Date>,
    s3: S3Options,
) -> Result<ExitCode, Failed> {
    let series = specfile::read(file)?;
    let spec = &series.resource.spec;
    let locations = Locations::resolve(spec, Some(&series.folder))?;
    let stores = Stores::open_for(spec, &locations, &s3).await;
    let date = date.unwrap_or_else(Date::today_utc);
    let mut prepared = prepare(spec, &stores, date).await?;
    if let Some(dir) = write_inputs {
        // The printed plan needs only the plan; the rendered texts move into the writes.
        let inputs = std::mem::take(&mut prepared.inputs);
        write_plan_files(&dir, inputs, &prepared.plan).await?;
    }
    print_plan(spec, &locations, &prepared, output)?;
    Ok(ExitCode::SUCCESS)
}

fn print_plan(
    spec: &simseries::model::spec::SimulationSeriesSpec,
    locations: &Locations,
    prepared: &simseries::planning::prepare::Prepared,
    output: Output,
) -> Result<(), Failed> {
    match output {
        Output::Table => out(&plan_table(spec, locations, prepared)),
        Output::Json => {
            let document = PlanDocument::new(spec, locations, prepared);
            let json = serde_json::to_string_pretty(&document)?;
            out(&format!("{json}\n"));
        }
    }
    Ok(())
}

/// The series a command names: a local file (`-f`), or one in the cluster by name.
fn target_of(
    file: Option<PathBuf>,
    name: Option<String>,
    namespace: Option<String>,
    context: Option<String>,
) -> Result<Target, Failed> {
    match (file, name) {
        (Some(file), _) => Ok(Target::File(file)),
        (None, Some(name)) => Ok(Target::Cluster {
            name,
            namespace,
            context,
        }),
        (None, None) => Err("give a series name, or -f FILE for a local series".into()),
    }
}

/// Makes and writes a report; says where on stderr.
async fn write_report(
    target: &Target,
    s3: &S3Options,
    format: ReportOutput,
    out: Option<PathBuf>,
) -> Result<(), Failed> {
    let made = report::make(target, s3, format.into()).await?;
    let path = report::write(&made, out.as_deref())?;
    eprintln!(
        "simseries: report written to {} ({} bytes)",
        path.display(),
        made.bytes.len()
    );
    Ok(())
}

/// What a finished `simseries run` prints: the completeness table on stdout, the outcome on
/// stderr.
fn report_run(outcome: &RunOutcome) {
    if outcome.interrupted {
        if outcome.local {
            eprintln!(
                "simseries: interrupted; unfinished inputs were stopped and run again on the next `simseries run` (finished outputs are kept; the status file is up to date)"
            );
        } else {
            eprintln!(
                "simseries: interrupted; the submitted jobs go on running on AWS Batch, and the next `simseries run` goes on watching them (the status file is up to date)"
            );
        }
        return;
    }
    let Some(pass) = &outcome.status.pass else {
        return;
    };
    if !outcome.acted {
        eprintln!(
            "simseries: pass {} already ran this spec; nothing to do (edit the spec, or use --rerun to run what is still missing)",
            pass.number
        );
    }
    if !outcome.table.is_empty() {
        out(&format!("{}\n", outcome.table));
    }
    if outcome.acted && !outcome.log_folders.is_empty() {
        eprintln!(
            "simseries: logs saved under {}",
            outcome.log_folders.join(", ")
        );
    }
    match pass.phase {
        Phase::Failed => eprintln!(
            "error: pass {} could not start: {}",
            pass.number,
            pass.last_error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        ),
        Phase::Incomplete if pass.outputs_missing.is_some() => eprintln!(
            "simseries: pass {} Incomplete: {}",
            pass.number,
            simseries::pass::conditions::outputs_missing_message(
                pass.outputs_missing.as_ref().expect("checked above")
            )
        ),
        Phase::Complete if outcome.all_complete => {
            eprintln!(
                "simseries: pass {} complete: every run has its outputs",
                pass.number
            )
        }
        phase => eprintln!(
            "simseries: pass {} {phase:?}: some runs are missing outputs",
            pass.number
        ),
    }
    if pass.phase != Phase::Failed && !outcome.all_complete {
        eprintln!("simseries: `simseries run --rerun -f ...` runs them again");
    }
}

/// Writes the rendered inputs and `{name}/{date}/inits.json` under `dir`.
async fn write_plan_files(
    dir: &std::path::Path,
    inputs: Vec<simseries::planning::inputs::RenderedInput>,
    plan: &simseries::planning::plan::Plan,
) -> Result<(), Failed> {
    let store = LocalStorage::new(dir.to_path_buf());
    let mut objects: Vec<(String, Vec<u8>)> = inputs
        .into_iter()
        .map(|input| (input.key, input.text.into_bytes()))
        .collect();
    let copies: Vec<serde_json::Value> = plan
        .groups
        .iter()
        .flat_map(|g| &g.inits)
        .map(|c| serde_json::json!({"source": c.source, "target": c.target}))
        .collect();
    let list = serde_json::to_string_pretty(&copies)?;
    objects.push((
        format!("{}inits.json", plan.folder.root()),
        list.into_bytes(),
    ));
    store
        .write_all(objects, simseries::storage::DEFAULT_CONCURRENCY)
        .await?;
    Ok(())
}

/// Writes to stdout. A reader that went away (`simseries plan … | head`) ends the process
/// quietly with the status a shell gives a command stopped by SIGPIPE, 141, as other
/// command-line tools end; any other failure is an error.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}
