//! A counting layer around any `BatchApi` (moto's or the fake): it records calls per
//! operation and checks AWS's per-call limits on every call.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;
use simseries::executor::batch::api::{BatchApi, MAX_DESCRIBE_IDS, MAX_LOG_STREAMS, SubmitRequest};
use simseries::executor::batch::observe::{Call, Observed};

pub struct Counting {
    /// The observed API, to give to the executor.
    pub api: Arc<dyn BatchApi>,
    pub calls: Mutex<BTreeMap<&'static str, usize>>,
    pub submitted: Mutex<Vec<SubmitRequest>>,
    /// Largest DescribeJobs request seen.
    pub largest_describe: Mutex<usize>,
    pub terminated: Mutex<Vec<String>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn BatchApi>) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Counting>| {
            let me = me.clone();
            Counting {
                api: Arc::new(Observed::new(inner, move |call| {
                    if let Some(me) = me.upgrade() {
                        me.record(call);
                    }
                })),
                calls: Mutex::new(BTreeMap::new()),
                submitted: Mutex::new(Vec::new()),
                largest_describe: Mutex::new(0),
                terminated: Mutex::new(Vec::new()),
            }
        })
    }

    fn record(&self, call: &Call<'_>) {
        *self.calls.lock().unwrap().entry(call.api()).or_default() += 1;
        match call {
            Call::SubmitJob(request) => self.submitted.lock().unwrap().push((*request).clone()),
            Call::DescribeJobs(ids) => {
                assert!(
                    !ids.is_empty(),
                    "DescribeJobs with no IDs (moto would describe every job)"
                );
                assert!(
                    ids.len() <= MAX_DESCRIBE_IDS,
                    "DescribeJobs with {} IDs",
                    ids.len()
                );
                let mut largest = self.largest_describe.lock().unwrap();
                *largest = (*largest).max(ids.len());
            }
            Call::TerminateJob(id) => self.terminated.lock().unwrap().push(id.to_string()),
            Call::FilterLogEvents(streams) => {
                assert!(
                    !streams.is_empty() && streams.len() <= MAX_LOG_STREAMS,
                    "{} streams",
                    streams.len()
                );
            }
            _ => {}
        }
    }

    pub fn calls(&self, op: &str) -> usize {
        self.calls.lock().unwrap().get(op).copied().unwrap_or(0)
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
        *self.largest_describe.lock().unwrap() = 0;
    }
}

/// Resolves at once (for fakes).
pub fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    async move { value }.boxed()
}
