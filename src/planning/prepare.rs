//! Preparing a pass: read the template and what is complete, plan, render and check inputs.
//! Everything here reads; nothing is written.

use std::path::Path;
use std::sync::Arc;

use crate::model::layout::{self, Date, DatedFolder};
use crate::model::location::Location;
use crate::model::spec::{ManifestSource, SimulationSeriesSpec};
use crate::model::validate::{SpecError, SpecErrors, ValidSeries, validate};
use crate::planning::inputs::{RenderError, RenderedInput, render_inputs};
use crate::planning::listing;
use crate::planning::manifest::{Completeness, ManifestError};
use crate::planning::plan::{Plan, plan};
use crate::planning::template::{Template, TemplateError};
use crate::storage::{self, S3Options, Storage, StorageError};

/// Why a pass cannot be prepared. Each names the field or file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    #[error(
        "cannot read the template: {0}; check spec.context.templateLocation and spec.series.templateKey"
    )]
    TemplateMissing(StorageError),
    #[error(
        "cannot read the manifest: {0}; check spec.context.manifestLocation and spec.series.manifestKey, or set spec.series.manifestSource: listing to plan from the outputs in the working location"
    )]
    ManifestMissing(StorageError),
    #[error("cannot list the working location: {0}; check spec.context.workingLocation")]
    Listing(StorageError),
    #[error("the working location cannot be used: {0}; check spec.context.workingLocation")]
    Working(StorageError),
    #[error("{0}; fix the manifest (or refresh it with the summarize step)")]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Render(#[from] RenderError),
    #[error("cannot check the init files: {0}")]
    Inits(StorageError),
}

/// The locations of a spec, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    pub working: Location,
    pub manifest: Location,
    pub template: Location,
}

impl Locations {
    /// Resolves the locations of `spec`; relative folders against `base` (a spec file's folder).
    pub fn resolve(spec: &SimulationSeriesSpec, base: Option<&Path>) -> Result<Self, SpecErrors> {
        let context = &spec.context;
        let mut errors = Vec::new();
        let mut parse = |field: &str, value: &str| match Location::parse(value, base) {
            Ok(location) => Some(location),
            Err(e) => {
                errors.push(SpecError {
                    field: format!("spec.context.{field}"),
                    message: format!("{e}"),
                });
                None
            }
        };
        let working = parse("workingLocation", &context.working_location);
        let manifest = parse("manifestLocation", &context.manifest_location);
        let template = parse("templateLocation", &context.template_location);
        match (working, manifest, template) {
            (Some(working), Some(manifest), Some(template)) => Ok(Locations {
                working,
                manifest,
                template,
            }),
            _ => Err(SpecErrors::from(errors)),
        }
    }
}

/// The storages of the three locations (one S3 client serves all S3 locations).
#[derive(Debug, Clone)]
pub struct Stores {
    pub working: Arc<dyn Storage>,
    pub manifest: Arc<dyn Storage>,
    pub template: Arc<dyn Storage>,
}

impl Stores {
    /// The stores of a series, with the spec's region for S3 where the environment names none.
    pub async fn open_for(
        spec: &SimulationSeriesSpec,
        locations: &Locations,
        options: &S3Options,
    ) -> Stores {
        let options = S3Options {
            fallback_region: spec.context.region.clone(),
            ..options.clone()
        };
        Self::open(locations, &options).await
    }

    pub async fn open(locations: &Locations, options: &S3Options) -> Stores {
        let client = if [&locations.working, &locations.manifest, &locations.template]
            .iter()
            .any(|l| l.is_s3())
        {
            Some(options.client().await)
        } else {
            None
        };
        Self::with_client(locations, client)
    }

    /// The storages of `locations`, S3 ones on `client` (required when any location is S3).
    pub fn with_client(locations: &Locations, client: Option<aws_sdk_s3::Client>) -> Stores {
        let open = |location: &Location| -> Arc<dyn Storage> {
            match (location, &client) {
                (Location::S3 { .. }, Some(client)) => Arc::new(storage::S3Storage::with_client(
                    location.clone(),
                    client.clone(),
                )),
                (Location::Local(root), _) => Arc::new(storage::LocalStorage::new(root.clone())),
                (Location::S3 { .. }, None) => panic!("an S3 location needs an S3 client"),
            }
        };
        Stores {
            working: open(&locations.working),
            manifest: open(&locations.manifest),
            template: open(&locations.template),
        }
    }
}

/// A prepared pass: the plan, its rendered inputs, and what planning read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    pub inputs: Vec<RenderedInput>,
    /// Init sources (keys in the working location) that do not exist.
    pub missing_init_sources: Vec<String>,
    pub manifest_rows: Option<u64>,
    pub listed_objects: Option<u64>,
}

/// Validates `spec`, reads its template and completeness, plans and renders.
pub async fn prepare(
    spec: &SimulationSeriesSpec,
    stores: &Stores,
    date: Date,
) -> Result<Prepared, PrepareError> {
    let series = validate(spec)?;
    stores
        .working
        .probe()
        .await
        .map_err(PrepareError::Working)?;

    let template_key = &spec.series.template_key;
    let source = stores
        .template
        .read(template_key)
        .await
        .map_err(PrepareError::TemplateMissing)?;
    let source = String::from_utf8(source).map_err(|_| TemplateError {
        template: template_key.clone(),
        too_expensive: false,
        line: None,
        message: "the template is not UTF-8 text".into(),
        excerpt: None,
    })?;
    let template = Template::parse(template_key, &source)?;

    let loaded = read_completeness(&series, stores, spec.series.manifest_source, None).await?;
    let plan = plan(&series, &loaded.table, date);
    let inputs = render_inputs(&series, &plan, &template)?;
    let missing_init_sources = missing_init_sources(stores.working.as_ref(), &plan).await?;
    Ok(Prepared {
        plan,
        inputs,
        missing_init_sources,
        manifest_rows: loaded.manifest_rows,
        listed_objects: loaded.listed_objects,
    })
}

/// What is complete, read from the manifest and/or the listing of the working location.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub table: Completeness,
    pub manifest_rows: Option<u64>,
    pub listed_objects: Option<u64>,
}

/// Reads the completeness table of `series` from the sources `source` names: the listing
/// covers the outputs of every dated folder, or of `dated` alone when it is given.
pub async fn read_completeness(
    series: &ValidSeries<'_>,
    stores: &Stores,
    source: ManifestSource,
    dated: Option<&DatedFolder>,
) -> Result<Loaded, PrepareError> {
    let spec = series.spec;
    let mut table = Completeness::new(series);
    let mut manifest_rows = None;
    if source.uses_file() {
        let key = &spec.series.manifest_key;
        let bytes = stores
            .manifest
            .read(key)
            .await
            .map_err(PrepareError::ManifestMissing)?;
        let location = stores.manifest.location().url_of(key);
        manifest_rows = Some(table.load_csv(&bytes, &location)?);
    }
    let mut listed_objects = None;
    if source.uses_listing() {
        let working = stores.working.as_ref();
        let folders = match dated {
            Some(folder) => vec![folder.root()],
            None => listing::dated_folders(working, &spec.series.name)
                .await
                .map_err(PrepareError::Listing)?,
        };
        let count = listing::record_outputs(working, series, &folders, &mut table)
            .await
            .map_err(PrepareError::Listing)?;
        listed_objects = Some(count);
    }
    Ok(Loaded {
        table,
        manifest_rows,
        listed_objects,
    })
}

/// A digest of what planning reads besides the spec: the template, the manifest (when the
/// series uses one) and the init files present. A pass that failed to start because of one of
/// them starts again once this changes. Read failures are part of the digest, so a fixed
/// permission or a created bucket counts as a change too.
pub async fn inputs_digest(spec: &SimulationSeriesSpec, stores: &Stores) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut add = |label: &str, result: Result<Vec<u8>, StorageError>| {
        hasher.update(label.as_bytes());
        match result {
            Ok(bytes) => {
                hasher.update((bytes.len() as u64).to_be_bytes());
                hasher.update(&bytes);
            }
            Err(e) => hasher.update(format!("error {:?}", e.kind).as_bytes()),
        }
    };
    add(
        "template",
        stores.template.read(&spec.series.template_key).await,
    );
    if spec.series.manifest_source.uses_file() {
        add(
            "manifest",
            stores.manifest.read(&spec.series.manifest_key).await,
        );
    }
    let mut names: Vec<&str> = spec.series.inits.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let keys = storage::list_all(stores.working.as_ref(), &layout::init_prefix(name)).await;
        add("inits", keys.map(|keys| keys.join("\n").into_bytes()));
    }
    let digest = hasher.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

async fn missing_init_sources(
    working: &dyn Storage,
    plan: &Plan,
) -> Result<Vec<String>, PrepareError> {
    let mut sources: Vec<&str> = plan
        .groups
        .iter()
        .flat_map(|g| g.inits.iter().map(|c| c.source.as_str()))
        .collect();
    sources.sort_unstable();
    sources.dedup();
    let mut missing = Vec::new();
    for source in sources {
        if !working.exists(source).await.map_err(PrepareError::Inits)? {
            missing.push(source.to_string());
        }
    }
    Ok(missing)
}
