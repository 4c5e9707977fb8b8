//! The logs of a job's children from CloudWatch Logs: the streams of every attempt of every
//! child (read from the jobs, at most 100 per DescribeJobs), their events matching the log
//! filter (at most 100 streams per FilterLogEvents), and one text per child, its attempts
//! separated.

use std::collections::BTreeMap;

use super::api::{ApiResult, BatchApi, JobDetail, JobSummary, MAX_DESCRIBE_IDS, MAX_LOG_STREAMS};

/// The log group AWS Batch writes job output to.
pub const LOG_GROUP: &str = "/aws/batch/job";

/// The log text of each child of a job, by index (`0..array_size`).
pub async fn child_logs(
    api: &dyn BatchApi,
    children: &[JobSummary],
    array_size: u32,
    pattern: &str,
) -> ApiResult<Vec<String>> {
    let ids: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
    let mut streams: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(MAX_DESCRIBE_IDS) {
        for detail in api.describe_jobs(chunk).await? {
            add_streams(&mut streams, &detail);
        }
    }
    let all: Vec<String> = streams.values().flatten().cloned().collect();
    let mut events: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for chunk in all.chunks(MAX_LOG_STREAMS) {
        for event in api.filter_log_events(LOG_GROUP, chunk, pattern).await? {
            events
                .entry(event.stream)
                .or_default()
                .push((event.timestamp, event.message));
        }
    }
    Ok((0..array_size)
        .map(|index| {
            text(
                streams.get(&index).map_or(&[][..], Vec::as_slice),
                &mut events,
            )
        })
        .collect())
}

/// The streams of a child's attempts, oldest first, each once.
fn add_streams(streams: &mut BTreeMap<u32, Vec<String>>, detail: &JobDetail) {
    let entry = streams.entry(detail.array_index.unwrap_or(0)).or_default();
    let attempts = detail.attempts.iter().filter_map(|a| a.log_stream.as_ref());
    for stream in attempts.chain(detail.log_stream.as_ref()) {
        if !entry.contains(stream) {
            entry.push(stream.clone());
        }
    }
}

/// A child's log: its events in time order, with a separator per attempt when there were
/// several.
fn text(streams: &[String], events: &mut BTreeMap<String, Vec<(i64, String)>>) -> String {
    let mut text = String::new();
    for (attempt, stream) in streams.iter().enumerate() {
        if streams.len() > 1 {
            text.push_str(&format!("--- attempt {} ({stream}) ---\n", attempt + 1));
        }
        let mut lines = events.remove(stream).unwrap_or_default();
        lines.sort_by_key(|(t, _)| *t);
        for (_, message) in lines {
            text.push_str(message.trim_end_matches('\n'));
            text.push('\n');
        }
    }
    text
}
