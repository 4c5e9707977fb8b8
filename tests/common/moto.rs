//! A real moto server for the tests: the one `scripts/test.sh` started (SIMSERIES_MOTO_URL), or
//! one started here from `moto_server` on the PATH. A watchdog shell stops it when the test
//! process ends, however it ends.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Moto {
    pub endpoint: String,
    watchdog: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.watchdog {
            // SIGTERM lets the watchdog's trap stop moto; SIGKILL would orphan it.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// The moto server shared by a test binary.
pub fn shared() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| match std::env::var("SIMSERIES_MOTO_URL") {
        Ok(url) if !url.is_empty() => Moto {
            endpoint: url.trim_end_matches('/').to_string(),
            watchdog: None,
        },
        _ => start(&[]),
    })
}

/// Starts a moto server of this test's own (e.g. with other environment variables).
pub fn start(env: &[(&str, &str)]) -> Moto {
    let binary = std::env::var("SIMSERIES_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!(
        "{binary} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         trap 'kill $m 2>/dev/null; rm -f \"$MOTO_RECORDER_FILEPATH\"; exit 0' EXIT TERM INT; \
         while kill -0 $PPID 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done"
    );
    let mut command = Command::new("sh");
    command.arg("-c").arg(&script).stdin(Stdio::null());
    // Recorded requests (least-privilege check) go to a file of this server's own.
    command.env(
        "MOTO_RECORDER_FILEPATH",
        std::env::temp_dir().join(format!("simseries-moto-recording-{port}")),
    );
    for (key, value) in env {
        command.env(key, value);
    }
    let mut watchdog = command.spawn().expect("sh starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(_)) = watchdog.try_wait() {
            panic!(
                "moto_server did not start. Run the tests with scripts/test.sh, or install moto \
                 (pip install 'moto[server]') so that `{binary}` is on the PATH"
            );
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        watchdog: Some(watchdog),
    }
}

impl Moto {
    /// This server as reached through `endpoint` (a proxy in front of it); dropping the view
    /// leaves the server running.
    pub fn through(&self, endpoint: String) -> Moto {
        Moto {
            endpoint,
            watchdog: None,
        }
    }

    /// Environment for a child process (the simseries binary) to talk to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("SIMSERIES_S3_PATH_STYLE", "true".into()),
        ]
    }

    /// An S3 client for this server, configured without touching the process environment.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a bucket with a name unique to this test run.
    pub async fn bucket(&self, name: &str) -> String {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bucket = format!("{name}-{}-{n}", std::process::id());
        self.s3()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        bucket
    }
}

impl Moto {
    /// A JSON object of `bucket`, or `None` when it is absent or not JSON.
    pub async fn json(&self, bucket: &str, key: &str) -> Option<serde_json::Value> {
        let object = self
            .s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let body = object.body.collect().await.ok()?.into_bytes();
        serde_json::from_slice(&body).ok()
    }

    /// AWS configuration for this server, without touching the process environment.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests"),
            ))
            .build()
    }

    pub fn batch(&self) -> aws_sdk_batch::Client {
        aws_sdk_batch::Client::new(&self.sdk_config())
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.sdk_config())
    }

    /// Writes `lines` into the CloudWatch stream of job `id` (an array child `parent:index`),
    /// as a model would log them: moto names the streams but runs no container to write them.
    pub async fn log_job(&self, id: &str, lines: &[String]) {
        let logs = self.logs();
        // AWS Batch creates the group on first use; it may exist already.
        let _ = logs
            .create_log_group()
            .log_group_name("/aws/batch/job")
            .send()
            .await;
        let described = self.batch().describe_jobs().jobs(id).send().await.unwrap();
        let stream = described.jobs()[0]
            .container()
            .and_then(|c| c.log_stream_name())
            .expect("moto names a stream")
            .to_string();
        let _ = logs
            .create_log_stream()
            .log_group_name("/aws/batch/job")
            .log_stream_name(&stream)
            .send()
            .await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut put = logs
            .put_log_events()
            .log_group_name("/aws/batch/job")
            .log_stream_name(&stream);
        for (i, line) in lines.iter().enumerate() {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now + i as i64)
                    .message(line)
                    .build()
                    .unwrap(),
            );
        }
        put.send().await.unwrap();
    }

    /// A bucket and a Batch queue (no Docker), made by the AWS example's setup script.
    pub fn setup_batch(&self, bucket: &str, queue: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/aws/setup-moto.py");
        let output = Command::new(python())
            .arg(script)
            .args([
                "--endpoint",
                &self.endpoint,
                "--region",
                "us-east-1",
                "--bucket",
                bucket,
                "--queue",
                queue,
            ])
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "setup-moto.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The Python that has boto3: the one beside moto_server, else python3 on the PATH.
pub fn python() -> String {
    if let Ok(server) = std::env::var("SIMSERIES_MOTO_SERVER") {
        let candidate = std::path::Path::new(&server).with_file_name("python3");
        if candidate.is_file() {
            return candidate.display().to_string();
        }
    }
    "python3".into()
}

impl Moto {
    /// Calls moto's own API (`/moto-api/...`) and returns the response body.
    pub fn moto_api(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        // HTTP/1.0: the body ends with the connection, never chunked.
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((_, body)) => body.to_string(),
            None => String::new(),
        }
    }

    /// Forgets recorded requests and records from now on.
    pub fn start_recording(&self) {
        self.moto_api("POST", "/moto-api/recorder/reset-recording");
        self.moto_api("POST", "/moto-api/recorder/start-recording");
    }

    /// The requests recorded since `start_recording`, one JSON object each.
    pub fn recording(&self) -> Vec<serde_json::Value> {
        self.moto_api("GET", "/moto-api/recorder/download-recording")
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}
