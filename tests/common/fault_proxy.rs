//! A fault-injecting HTTP proxy in front of moto: the AWS SDK talks to it as to AWS, and the
//! test decides, per service, how many of the next requests get a fault instead of moto's
//! answer: a throttling or 5xx error in the service's own wire format, a connection reset, or
//! no answer at all (a stall the SDK's attempt timeout ends).
//!
//! Each request is one connection both ways (`Connection: close`), so every request meets the
//! schedule, whatever connection pooling the SDK does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which AWS service a request is for (they share moto's one endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    S3,
    Batch,
    Logs,
}

/// What a faulted request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 TooManyRequestsException (Batch), ThrottlingException (Logs), 503 SlowDown (S3).
    Throttle,
    /// 500 InternalFailure / InternalError.
    ServerError,
    /// The connection is reset after the request is read.
    Reset,
    /// The request is read and never answered.
    Stall,
}

#[derive(Default)]
struct Schedule {
    /// Faults still to inject per service.
    pending: HashMap<Service, (Fault, u32)>,
    /// Faults injected so far.
    injected: u32,
    /// Requests seen per service.
    seen: HashMap<Service, u32>,
}

pub struct FaultProxy {
    pub endpoint: String,
    schedule: Arc<Mutex<Schedule>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let schedule = Arc::new(Mutex::new(Schedule::default()));
        let shared = schedule.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let schedule = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, &schedule).await;
                });
            }
        });
        FaultProxy { endpoint, schedule }
    }

    /// The next `count` requests to `service` get `fault`.
    pub fn inject(&self, service: Service, fault: Fault, count: u32) {
        self.schedule
            .lock()
            .unwrap()
            .pending
            .insert(service, (fault, count));
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u32 {
        self.schedule.lock().unwrap().injected
    }

    /// Faults of `service` still to inject.
    pub fn pending(&self, service: Service) -> u32 {
        self.schedule
            .lock()
            .unwrap()
            .pending
            .get(&service)
            .map_or(0, |(_, n)| *n)
    }

    /// Requests seen for `service`.
    pub fn seen(&self, service: Service) -> u32 {
        *self
            .schedule
            .lock()
            .unwrap()
            .seen
            .get(&service)
            .unwrap_or(&0)
    }
}

struct Request {
    head: String,
    body: Vec<u8>,
}

async fn serve(
    mut client: TcpStream,
    upstream: &str,
    schedule: &Mutex<Schedule>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let service = service_of(&request.head);
    let fault = {
        let mut schedule = schedule.lock().unwrap();
        *schedule.seen.entry(service).or_insert(0) += 1;
        let fault = match schedule.pending.get_mut(&service) {
            Some((fault, n)) if *n > 0 => {
                *n -= 1;
                Some(*fault)
            }
            _ => None,
        };
        if fault.is_some() {
            schedule.injected += 1;
        }
        fault
    };
    match fault {
        None => {
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(request.head.as_bytes()).await?;
            server.write_all(&request.body).await?;
            let mut response = Vec::new();
            server.read_to_end(&mut response).await?;
            client.write_all(&close_after(response)).await?;
        }
        Some(Fault::Reset) => {
            client.set_zero_linger()?;
            drop(client);
        }
        Some(Fault::Stall) => {
            // Hold the connection without answering until the client gives up.
            let mut sink = [0u8; 1024];
            while client.read(&mut sink).await? > 0 {}
        }
        Some(fault) => client.write_all(&error_response(service, fault)).await?,
    }
    Ok(())
}

/// Reads one request (head and body, by Content-Length or chunked), rewritten to close the
/// upstream connection after the response.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut body = buffer[head_end..].to_vec();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < length {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        while find(&body, b"0\r\n\r\n").is_none() {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines.retain(|line| {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        name != "connection" && name != "expect"
    });
    let head = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
    Ok(Some(Request { head, body }))
}

/// The upstream response, told to the client as the last on its connection.
fn close_after(response: Vec<u8>) -> Vec<u8> {
    let Some(head_end) = find(&response, b"\r\n\r\n") else {
        return response;
    };
    let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut out = format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes();
    out.extend_from_slice(&response[head_end + 4..]);
    out
}

fn service_of(head: &str) -> Service {
    let lower = head.to_ascii_lowercase();
    if lower.contains("x-amz-target: logs_") {
        Service::Logs
    } else if lower
        .split_whitespace()
        .nth(1)
        .is_some_and(|path| path.starts_with("/v1/"))
    {
        Service::Batch
    } else {
        Service::S3
    }
}

fn error_response(service: Service, fault: Fault) -> Vec<u8> {
    let (status, content_type, headers, body) = match (service, fault) {
        (Service::S3, Fault::Throttle) => (
            "503 Slow Down",
            "application/xml",
            String::new(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_string(),
        ),
        (Service::S3, _) => (
            "500 Internal Server Error",
            "application/xml",
            String::new(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".to_string(),
        ),
        (Service::Batch, Fault::Throttle) => (
            "429 Too Many Requests",
            "application/json",
            "x-amzn-ErrorType: TooManyRequestsException\r\n".to_string(),
            "{\"__type\":\"TooManyRequestsException\",\"message\":\"Too Many Requests\"}".to_string(),
        ),
        (Service::Logs, Fault::Throttle) => (
            "400 Bad Request",
            "application/x-amz-json-1.1",
            String::new(),
            "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}".to_string(),
        ),
        (_, _) => (
            "500 Internal Server Error",
            "application/json",
            "x-amzn-ErrorType: ServerException\r\n".to_string(),
            "{\"__type\":\"ServerException\",\"message\":\"internal failure\"}".to_string(),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
