//! The logs of a job's children from CloudWatch Logs: the streams of every attempt of every
//! child (read from the children's descriptions), their events matching the log filter (at
//! most 100 streams per FilterLogEvents), and one file per child in a spool, its attempts
//! separated. Pages are written to the spool as they arrive: nothing holds a whole log.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use super::api::{BatchApi, JobDetail, LogEvent, MAX_LOG_STREAMS};
use crate::executor::spool::{Spool, io_failure};
use crate::model::outcome::Failure;

/// The log group AWS Batch writes job output to.
pub const LOG_GROUP: &str = "/aws/batch/job";

/// Writes the log of each child of a job, by index, into a file of `spool`, from the
/// children's descriptions (an empty log for a child AWS did not describe); returns the files.
pub async fn write_child_logs(
    api: &dyn BatchApi,
    children: &[Option<JobDetail>],
    pattern: &str,
    spool: &Spool,
) -> Result<Vec<PathBuf>, Failure> {
    let mut streams: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (index, detail) in children.iter().enumerate() {
        if let Some(detail) = detail {
            add_streams(&mut streams, index as u32, detail);
        }
    }
    let all: Vec<String> = streams.values().flatten().cloned().collect();
    let mut spooled: HashMap<String, StreamFile> = HashMap::new();
    for chunk in all.chunks(MAX_LOG_STREAMS) {
        let mut token = None;
        loop {
            let page = api
                .filter_log_events(LOG_GROUP, chunk, pattern, token)
                .await
                .map_err(super::failure)?;
            for event in page.events {
                let file = match spooled.get_mut(&event.stream) {
                    Some(file) => file,
                    None => {
                        let file = StreamFile::create(spool.file())?;
                        spooled.entry(event.stream.clone()).or_insert(file)
                    }
                };
                file.push(&event)?;
            }
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        for stream in chunk {
            if let Some(file) = spooled.get_mut(stream) {
                file.close()?;
            }
        }
    }
    (0..children.len() as u32)
        .map(|index| {
            let path = spool.file();
            let child_streams = streams.get(&index).map_or(&[][..], Vec::as_slice);
            write_child(&path, child_streams, &mut spooled)?;
            Ok(path)
        })
        .collect()
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

/// The events of one stream as they arrived: records of timestamp, length and message.
struct StreamFile {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    last: i64,
    /// Whether the events arrived in time order (they do from CloudWatch); if not, the stream
    /// is sorted when the child's log is written, in memory.
    in_order: bool,
}

impl StreamFile {
    fn create(path: PathBuf) -> Result<StreamFile, Failure> {
        let file = File::create(&path).map_err(|e| io_failure(&path, e))?;
        Ok(StreamFile {
            writer: Some(BufWriter::new(file)),
            path,
            last: i64::MIN,
            in_order: true,
        })
    }

    fn push(&mut self, event: &LogEvent) -> Result<(), Failure> {
        self.in_order &= event.timestamp >= self.last;
        self.last = event.timestamp;
        let message = event.message.trim_end_matches('\n').as_bytes();
        let writer = self
            .writer
            .as_mut()
            .expect("a stream is written until closed");
        writer
            .write_all(&event.timestamp.to_le_bytes())
            .and_then(|()| writer.write_all(&(message.len() as u64).to_le_bytes()))
            .and_then(|()| writer.write_all(message))
            .map_err(|e| io_failure(&self.path, e))
    }

    fn close(&mut self) -> Result<(), Failure> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(|e| io_failure(&self.path, e))?;
        }
        Ok(())
    }

    /// Writes each message as a line, in time order (the arrival order for events of one
    /// time): copied through when the events came in order, else read and sorted first.
    fn copy_lines(&self, out: &mut impl Write) -> Result<(), Failure> {
        let failed = |e| io_failure(&self.path, e);
        let mut reader = BufReader::new(File::open(&self.path).map_err(failed)?);
        if self.in_order {
            while let Some((_, length)) = next_record(&mut reader).map_err(failed)? {
                let copied = std::io::copy(&mut (&mut reader).take(length), out).map_err(failed)?;
                if copied != length {
                    return Err(failed(std::io::ErrorKind::UnexpectedEof.into()));
                }
                out.write_all(b"\n").map_err(failed)?;
            }
            return Ok(());
        }
        let mut messages = Vec::new();
        while let Some((timestamp, length)) = next_record(&mut reader).map_err(failed)? {
            let mut message = vec![0u8; length as usize];
            reader.read_exact(&mut message).map_err(failed)?;
            messages.push((timestamp, message));
        }
        messages.sort_by_key(|(timestamp, _)| *timestamp);
        for (_, message) in messages {
            out.write_all(&message).map_err(failed)?;
            out.write_all(b"\n").map_err(failed)?;
        }
        Ok(())
    }
}

/// The timestamp and message length of the next record of a stream file; `None` at its end.
fn next_record(reader: &mut impl Read) -> std::io::Result<Option<(i64, u64)>> {
    let mut number = [0u8; 8];
    match reader.read_exact(&mut number) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let timestamp = i64::from_le_bytes(number);
    reader.read_exact(&mut number)?;
    Ok(Some((timestamp, u64::from_le_bytes(number))))
}

/// A child's log: its events in time order, with a separator per attempt when there were
/// several.
fn write_child(
    path: &PathBuf,
    streams: &[String],
    spooled: &mut HashMap<String, StreamFile>,
) -> Result<(), Failure> {
    let failed = |e| io_failure(path, e);
    let mut out = BufWriter::new(File::create(path).map_err(failed)?);
    for (attempt, stream) in streams.iter().enumerate() {
        if streams.len() > 1 {
            writeln!(out, "--- attempt {} ({stream}) ---", attempt + 1).map_err(failed)?;
        }
        // A stream is one child's; its spool file is not needed after.
        if let Some(file) = spooled.remove(stream) {
            file.copy_lines(&mut out)?;
            let _ = std::fs::remove_file(&file.path);
        }
    }
    out.flush().map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(timestamp: i64, message: &str) -> LogEvent {
        LogEvent {
            stream: "s".into(),
            timestamp,
            message: message.into(),
        }
    }

    #[test]
    fn a_stream_is_written_in_time_order_whatever_the_order_events_came_in() {
        let spool = Spool::new().unwrap();
        for (events, expected) in [
            (
                vec![event(1, "a\n"), event(2, ""), event(2, "b")],
                "a\n\nb\n",
            ),
            (
                vec![event(3, "c"), event(1, "a"), event(2, "b"), event(1, "a2")],
                "a\na2\nb\nc\n",
            ),
        ] {
            let mut file = StreamFile::create(spool.file()).unwrap();
            for e in &events {
                file.push(e).unwrap();
            }
            file.close().unwrap();
            let mut out = Vec::new();
            file.copy_lines(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }
}
