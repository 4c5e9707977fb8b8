//! Where the controller's side effects go: storage and the executor of a series. Production
//! uses AWS (one configuration loaded at start, Batch clients per region); the controller's
//! tests put local folders and a scripted Batch behind the same trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::controller::metrics::Metrics;
use crate::executor::Executor;
use crate::executor::batch::api::BatchApi;
use crate::executor::batch::aws::AwsBatchApi;
use crate::executor::batch::observe::Observed;
use crate::executor::batch::{BatchExecutor, BatchSettings};
use crate::prepare::{Locations, Stores};
use crate::spec::SimulationSeriesSpec;
use crate::storage::S3Options;

pub trait Cloud: Send + Sync {
    /// The storages of a series' (S3) locations.
    fn stores(&self, locations: &Locations) -> Stores;

    /// The executor of a series. Settings missing from the spec are reported before this is
    /// asked; cleanup asks anyway (terminating and deregistering need no settings).
    fn executor(&self, spec: &SimulationSeriesSpec) -> Arc<dyn Executor>;
}

/// AWS: S3, and Batch and CloudWatch Logs in each series' region.
pub struct AwsCloud {
    shared: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    batch: Mutex<HashMap<String, Arc<dyn BatchApi>>>,
    metrics: Arc<Metrics>,
}

impl AwsCloud {
    pub async fn load(s3: &S3Options, metrics: Arc<Metrics>) -> Self {
        let shared = crate::aws::load_config().await;
        AwsCloud {
            s3: s3.client_from(&shared),
            shared,
            batch: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn batch_api(&self, region: Option<&str>) -> Arc<dyn BatchApi> {
        let key = region.unwrap_or_default().to_string();
        let mut clients = self.batch.lock().expect("batch clients lock");
        clients
            .entry(key)
            .or_insert_with(|| {
                let api = AwsBatchApi::from_config(&self.shared, region);
                let metrics = self.metrics.clone();
                Arc::new(Observed::new(Arc::new(api), move |call| {
                    metrics.aws_call(call.api())
                }))
            })
            .clone()
    }
}

impl Cloud for AwsCloud {
    fn stores(&self, locations: &Locations) -> Stores {
        Stores::with_client(locations, Some(self.s3.clone()))
    }

    fn executor(&self, spec: &SimulationSeriesSpec) -> Arc<dyn Executor> {
        let settings = BatchSettings::from_spec(spec).unwrap_or_else(|_| BatchSettings {
            account: spec.context.account.clone().unwrap_or_default(),
            region: spec.context.region.clone().unwrap_or_default(),
            user: spec.context.user.clone().unwrap_or_default(),
            queue: spec.context.queue.clone().unwrap_or_default(),
            image: spec.parameters.image.clone().unwrap_or_default(),
        });
        Arc::new(BatchExecutor::new(
            self.batch_api(spec.context.region.as_deref()),
            settings,
        ))
    }
}
