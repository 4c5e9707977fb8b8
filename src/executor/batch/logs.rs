//! The logs of a job's children from CloudWatch Logs: the streams of every attempt of every
//! child (read from the children's descriptions), their events matching the log filter (at
//! most 100 streams per FilterLogEvents), and one text per child, its attempts separated.

use std::collections::BTreeMap;

use super::api::{ApiResult, BatchApi, JobDetail, MAX_LOG_STREAMS};

/// The log group AWS Batch writes job output to.
pub const LOG_GROUP: &str = "/aws/batch/job";

/// The log text of each child of a job, by index, from the children's descriptions (`None`
/// for a child AWS did not describe).
pub async fn child_logs(
    api: &dyn BatchApi,
    children: &[Option<JobDetail>],
    pattern: &str,
) -> ApiResult<Vec<String>> {
    let mut streams: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (index, detail) in children.iter().enumerate() {
        if let Some(detail) = detail {
            add_streams(&mut streams, index as u32, detail);
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
    Ok((0..children.len() as u32)
        .map(|index| {
            text(
                streams.get(&index).map_or(&[][..], Vec::as_slice),
                &mut events,
            )
        })
        .collect())
}

/// The streams of a child's attempts, oldest first, each once.
fn add_streams(streams: &mut BTreeMap<u32, Vec<String>>, index: u32, detail: &JobDetail) {
    let entry = streams.entry(index).or_default();
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
