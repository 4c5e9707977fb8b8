//! Series fixtures as typed edits of the base series ([`super::SERIES`]): a test says what it
//! changes (`on_aws`, `polls`, `listing`) on the parsed resource, instead of replacing
//! fragments of YAML text that break when the text is reformatted.

use simseries::model::spec::{ManifestSource, SimulationSeries, SimulationSeriesSpec};

/// The base series, edited step by step.
#[derive(Debug, Clone)]
pub struct Fixture {
    resource: SimulationSeries,
}

/// The values [`Fixture::batch_options`] sets.
pub struct BatchOptions {
    pub spot_retries: u32,
    pub timeout_seconds: u64,
    pub scheduling_priority: u32,
    pub vcpu_hour_price: f64,
    pub share_identifier: &'static str,
}

pub const BATCH_OPTIONS: BatchOptions = BatchOptions {
    spot_retries: 2,
    timeout_seconds: 3600,
    scheduling_priority: 10,
    vcpu_hour_price: 0.05,
    share_identifier: "lab_a",
};

impl Fixture {
    /// The base series: local locations, groups G and H, four seeds, one init.
    pub fn base() -> Self {
        Fixture {
            resource: super::series(super::SERIES),
        }
    }

    /// The AWS example users start from (examples/aws/series.yaml), as it is.
    pub fn aws_example() -> Self {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/aws/series.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        Fixture {
            resource: super::series(&text),
        }
    }

    /// The settings AWS Batch needs: account `123456789012`, region `us-east-1`, `user` (the
    /// prefix of job and definition names) and `queue`.
    pub fn on_aws(mut self, user: &str, queue: &str) -> Self {
        let context = &mut self.resource.spec.context;
        context.account = Some("123456789012".into());
        context.region = Some("us-east-1".into());
        context.user = Some(user.into());
        context.queue = Some(queue.into());
        self
    }

    /// Every AWS Batch option beyond the original's: Spot retries, an attempt timeout, a share
    /// identifier and priority, tags propagated to ECS, a vCPU-hour price (see
    /// [`BATCH_OPTIONS`] and `aws_run::check_batch_options`).
    pub fn batch_options(mut self) -> Self {
        let spec = &mut self.resource.spec;
        spec.parameters.spot_retries = BATCH_OPTIONS.spot_retries;
        spec.parameters.timeout_seconds = Some(BATCH_OPTIONS.timeout_seconds);
        spec.parameters.scheduling_priority = Some(BATCH_OPTIONS.scheduling_priority);
        spec.parameters.vcpu_hour_price = Some(BATCH_OPTIONS.vcpu_hour_price);
        spec.context.share_identifier = Some(BATCH_OPTIONS.share_identifier.into());
        spec.context.propagate_tags = true;
        self
    }

    /// The model and its container image.
    pub fn image(mut self, model: &str, image: &str) -> Self {
        let parameters = &mut self.resource.spec.parameters;
        parameters.model = model.into();
        parameters.image = Some(image.into());
        self
    }

    /// S3 locations, as the controller needs: `s3://{bucket}/work` for the working location,
    /// `s3://{bucket}/config` for the manifest and the template.
    pub fn on_s3(mut self, bucket: &str) -> Self {
        let context = &mut self.resource.spec.context;
        context.working_location = format!("s3://{bucket}/work");
        context.manifest_location = format!("s3://{bucket}/config");
        context.template_location = format!("s3://{bucket}/config");
        self
    }

    /// `retries` polls, `delay` seconds apart.
    pub fn polls(mut self, retries: u32, delay: u64) -> Self {
        let parameters = &mut self.resource.spec.parameters;
        parameters.retries = retries;
        parameters.retry_delay = delay;
        self
    }

    /// Completeness from a listing of the outputs only (no manifest file).
    pub fn listing(mut self) -> Self {
        self.resource.spec.series.manifest_source = ManifestSource::Listing;
        self
    }

    /// No init files.
    pub fn without_inits(mut self) -> Self {
        self.resource.spec.series.inits.clear();
        self
    }

    /// The object's name (and namespace), and the series' name (its folder and job names).
    pub fn named(mut self, object: &str, namespace: Option<&str>, series: &str) -> Self {
        self.resource.metadata.name = Some(object.into());
        self.resource.metadata.namespace = namespace.map(str::to_string);
        self.resource.spec.series.name = series.into();
        self
    }

    /// Any other edit.
    pub fn edit(mut self, edit: impl FnOnce(&mut SimulationSeries)) -> Self {
        edit(&mut self.resource);
        self
    }

    pub fn resource(self) -> SimulationSeries {
        self.resource
    }

    pub fn spec(self) -> SimulationSeriesSpec {
        self.resource.spec
    }

    /// The series as a YAML file (for `kubectl apply` and `simseries run`).
    pub fn yaml(self) -> String {
        serde_yaml_ng::to_string(&self.resource).unwrap()
    }
}
