//! Starts Debian's `clickhouse-server` as `nobody` on free loopback ports in temp dirs:
//! N servers as the N shards of one cluster (`gs`), no ZooKeeper.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::helpers::{client, free_port};

pub const CLUSTER: &str = "gs";

pub struct ChServer {
    pub http: u16,
    dir: PathBuf,
    runuser: Option<Child>,
}

pub struct ChCluster {
    pub servers: Vec<ChServer>,
    _temp: tempfile::TempDir,
}

/// Panics with what to install when the server is missing (CI installs it, see `.ci/run`).
fn require_server() {
    let found = Command::new("sh")
        .args(["-c", "command -v clickhouse-server && command -v runuser"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the ClickHouse engine tests need Debian's clickhouse-server and runuser: \
         apt-get install clickhouse-server clickhouse-client (as .ci/run does)"
    );
}

fn config(dir: &Path, http: u16, tcp: u16, inter: u16, shards: &[u16], index: usize) -> String {
    let d = dir.display();
    let replicas: String = shards
        .iter()
        .map(|p| {
            format!("<shard><replica><host>127.0.0.1</host><port>{p}</port></replica></shard>")
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <remote_servers><{CLUSTER}>{replicas}</{CLUSTER}></remote_servers>
  <macros><shard>{index}</shard><replica>r{index}</replica></macros>
</yandex>
"#
    )
}

const USERS: &str = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_threads>2</max_threads><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;

impl ChCluster {
    /// `n` servers, each one shard of cluster `gs`, ready to answer.
    /// Starts `n` servers. Ports are picked free and released before the servers bind
    /// them, so a parallel test can take one in between: then it starts again on new ports.
    pub fn start(n: usize) -> ChCluster {
        require_server();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match ChCluster::try_start(n) {
                Ok(c) => return c,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("clickhouse-server did not start; its error log:\n{log}"),
            }
        }
    }

    fn try_start(n: usize) -> Result<ChCluster, String> {
        let temp = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let tcp: Vec<u16> = ports.iter().map(|p| p.1).collect();
        let mut servers = Vec::new();
        for (i, (http, tcp_port, inter)) in ports.iter().enumerate() {
            let dir = temp.path().join(format!("ch{i}"));
            for sub in ["data", "tmp", "user_files", "log", "format_schemas"] {
                std::fs::create_dir_all(dir.join(sub)).unwrap();
            }
            std::fs::write(
                dir.join("config.xml"),
                config(&dir, *http, *tcp_port, *inter, &tcp, i + 1),
            )
            .unwrap();
            std::fs::write(dir.join("users.xml"), USERS).unwrap();
            servers.push(ChServer {
                http: *http,
                dir,
                runuser: None,
            });
        }
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(temp.path())
            .status()
            .unwrap();
        assert!(status.success(), "chown of the ClickHouse temp dir failed");
        let mut cluster = ChCluster {
            servers,
            _temp: temp,
        };
        for i in 0..n {
            cluster.launch(i);
        }
        for i in 0..n {
            cluster.wait_until_up(i)?;
        }
        Ok(cluster)
    }

    fn launch(&mut self, i: usize) {
        let s = &mut self.servers[i];
        let child = Command::new("runuser")
            .args(["-u", "nobody", "--", "clickhouse-server"])
            .arg(format!(
                "--config-file={}",
                s.dir.join("config.xml").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn runuser clickhouse-server");
        s.runuser = Some(child);
    }

    fn wait_up(&self, i: usize) {
        if let Err(log) = self.wait_until_up(i) {
            panic!("clickhouse-server {i} did not answer within 60 s; its error log:\n{log}");
        }
    }

    /// Waits for server `i` to answer; its error log when it does not within 60 s or
    /// cannot bind its ports.
    fn wait_until_up(&self, i: usize) -> Result<(), String> {
        let start = Instant::now();
        let log = || {
            std::fs::read_to_string(self.servers[i].dir.join("log/server.err.log"))
                .unwrap_or_default()
        };
        while start.elapsed() < Duration::from_secs(60) {
            if self.query(i, "SELECT 1").is_ok_and(|s| s.trim() == "1") {
                return Ok(());
            }
            let log = log();
            if log.contains("Address already in use") {
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(log())
    }

    /// Server `i`'s `<path>` (its data, metadata and shadow folders).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.servers[i].dir.join("data")
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.servers[i].http)
    }

    /// Runs `sql` on server `i`; the body, or the error text.
    pub fn query(&self, i: usize, sql: &str) -> Result<String, String> {
        let r = client()
            .post(self.url(i))
            .body(sql.to_string())
            .send()
            .map_err(|e| e.to_string())?;
        let text = r.text().unwrap_or_default();
        if r.status().is_success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// A number from server `i`.
    pub fn count(&self, i: usize, sql: &str) -> u64 {
        let out = self.query(i, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: {out:?}"))
    }

    /// The clickhouse-server process: runuser's child (18.16 ignores --pid-file).
    fn server_pid(&self, i: usize) -> Option<i32> {
        let parent = self.servers[i].runuser.as_ref()?.id();
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
    }

    /// Stops server `i` (SIGKILL) and waits until its port is closed.
    pub fn stop(&mut self, i: usize) {
        self.kill(i);
        let start = Instant::now();
        while self.query(i, "SELECT 1").is_ok() && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to server `i` and its runuser parent (18.16 ignores `--pid-file`).
    fn kill(&mut self, i: usize) {
        if let Some(pid) = self.server_pid(i) {
            // SAFETY: a plain signal to a process id; a stale id only fails.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if let Some(mut c) = self.servers[i].runuser.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `i` again on its data and waits for it.
    pub fn restart(&mut self, i: usize) {
        self.launch(i);
        self.wait_up(i);
    }
}

impl Drop for ChCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
