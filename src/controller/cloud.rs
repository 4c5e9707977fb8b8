//! Where the controller's side effects go: storage and the executor of a series. Production
//! uses AWS (one configuration loaded at start, Batch clients per region); the controller's
//! tests put local folders and a scripted Batch behind the same trait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::controller::metrics::Metrics;
use crate::executor::batch::api::BatchApi;
use crate::executor::batch::aws::AwsBatchApi;
use crate::executor::batch::observe::Observed;
use crate::planning::prepare::{Locations, Stores};
use crate::storage::S3Options;

pub trait Cloud: Send + Sync {
    /// The storages of a series' (S3) locations.
    fn stores(&self, locations: &Locations) -> Stores;

    /// AWS Batch and CloudWatch Logs in `region` (the default region when `None`).
    fn batch(&self, region: Option<&str>) -> Arc<dyn BatchApi>;
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

    fn batch_client(&self, region: Option<&str>) -> Arc<dyn BatchApi> {
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

    fn batch(&self, region: Option<&str>) -> Arc<dyn BatchApi> {
        self.batch_client(region)
    }
}
