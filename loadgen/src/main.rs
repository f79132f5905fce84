//! `loadgen`: a load generator for the quick-chat relay.
//!
//! It registers `--clients` users (two per friendship), makes each pair friends, opens one
//! authenticated WebSocket per user and then has one user of every pair send to the other,
//! `--rate` messages per second in total (0: as fast as the server acknowledges, with a
//! window of messages in flight per connection) for `--seconds`. It reports messages stored
//! (acknowledged) and delivered per second, send-to-deliver latency (p50, p99, max) and,
//! given `--server-pid`, the server's memory per idle connection.
//!
//! Memory is read after each tenth of the sockets has opened. The least-squares slope of
//! the server's RSS over the last nine readings is what one more idle connection costs once
//! the first connections have warmed the caches; the whole growth divided by all
//! connections is printed beside it.
//! `--setup-only --users-file F` registers the users and saves their sessions to F; a later
//! run with `--users-file F` reuses them, so the server can be restarted in between and
//! measured without the memory registration (password hashing) left behind.
//!
//!
//! Several nodes of a cluster: `--url` takes a comma-separated list. Users register and
//! befriend on the first; then pair i's sender connects to node i mod n and its receiver to
//! the next node, so every message crosses from one node to another. `--cpu-pid` (repeated,
//! or a comma-separated list) names processes — nodes, Redis — whose CPU time over the
//! sending window is reported per message stored, beside the whole machine's.
//!
//! Groups: `--groups 20x50,1x500` measures fan-out instead of pairs (see `groups.rs`);
//! `--clients` is then the sum of the group sizes.
//!
//! The server must allow the rate: run it with e.g. `WS_SEND_RATE=100000
//! WS_SEND_BURST=100000`, and raise `ulimit -n` on both sides for many connections.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

mod groups;

struct Args {
    /// The first of `urls`: where users register.
    url: String,
    urls: Vec<String>,
    cpu_pids: Vec<u32>,
    clients: usize,
    rate: u64,
    seconds: u64,
    window: usize,
    server_pid: Option<u32>,
    prefix: String,
    users_file: Option<String>,
    setup_only: bool,
    /// Group sizes (`--groups`): fan-out mode.
    groups: Option<Vec<usize>>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        urls: vec!["http://127.0.0.1:3000".into()],
        cpu_pids: Vec::new(),
        clients: 1000,
        rate: 5000,
        seconds: 20,
        window: 16,
        server_pid: None,
        prefix: format!("lg{}", std::process::id()),
        users_file: None,
        setup_only: false,
        groups: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => {
                args.urls = value()?
                    .split(',')
                    .map(|u| u.trim().trim_end_matches('/').to_owned())
                    .filter(|u| !u.is_empty())
                    .collect()
            }
            "--cpu-pid" => {
                for pid in value()?.split(',') {
                    args.cpu_pids
                        .push(pid.trim().parse().map_err(|e| format!("--cpu-pid: {e}"))?);
                }
            }
            "--clients" => {
                args.clients = value()?.parse().map_err(|e| format!("--clients: {e}"))?
            }
            "--rate" => args.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--window" => args.window = value()?.parse().map_err(|e| format!("--window: {e}"))?,
            "--server-pid" => {
                args.server_pid = Some(value()?.parse().map_err(|e| format!("--server-pid: {e}"))?)
            }
            "--prefix" => args.prefix = value()?,
            "--users-file" => args.users_file = Some(value()?),
            "--setup-only" => args.setup_only = true,
            "--groups" => args.groups = Some(groups::parse_spec(&value()?)?),
            "--help" | "-h" => {
                println!(
                    "loadgen [--url http://127.0.0.1:3000[,http://node2,...]] [--cpu-pid PID[,PID]] [--clients 1000] [--rate 5000 (0 = max)] \
                     [--seconds 20] [--window 16] [--server-pid PID] [--prefix NAME] \
                     [--users-file PATH (reuse the users saved there, or save them)] [--setup-only] \
                     [--groups COUNTxSIZE[,COUNTxSIZE] (group fan-out; --clients is their sum)]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    args.url = args.urls.first().cloned().ok_or("--url names no server")?;
    if let Some(sizes) = &args.groups {
        args.clients = sizes.iter().sum();
    } else if args.clients < 2 || !args.clients.is_multiple_of(2) {
        return Err("--clients must be an even number of at least 2".into());
    }
    Ok(args)
}

/// One registered user.
struct User {
    name: String,
    id: String,
    cookie: String,
}

fn save_users(path: &str, users: &[User]) -> Result<(), String> {
    let text: String = users
        .iter()
        .map(|u| format!("{}\t{}\t{}\n", u.name, u.id, u.cookie))
        .collect();
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

fn load_users(path: &str) -> Option<Vec<User>> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(|line| {
            let mut parts = line.split('\t').map(str::to_owned);
            Some(User {
                name: parts.next()?,
                id: parts.next()?,
                cookie: parts.next()?,
            })
        })
        .collect()
}

fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    body: Value,
) -> Result<(Value, Option<String>), String> {
    // A server whose password-hashing queue is full answers 503 at once, having done
    // nothing: the request is simply made again after the wait it names.
    let mut tries = 0;
    let res = loop {
        let mut req = client.post(url).json(&body);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("qc_session={c}"));
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        tries += 1;
        if res.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || tries >= 100 {
            break res;
        }
        let wait = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    };
    let status = res.status();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("qc_session=")
                .map(|r| r.split(';').next().unwrap_or("").to_owned())
        });
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    Ok((body, cookie))
}

async fn setup_users(args: &Args) -> Result<Vec<User>, String> {
    eprintln!("registering {} users...", args.clients);
    let client = reqwest::Client::new();
    let limit = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..args.clients {
        let (client, limit) = (client.clone(), limit.clone());
        let url = format!("{}/api/v1/user/register", args.url);
        let name = format!("{}_{i}", args.prefix);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
            let body = json!({"username": name, "nickname": name, "password": "load generator"});
            let (profile, cookie) = post(&client, &url, None, body).await?;
            Ok::<User, String>(User {
                id: profile["id"].as_str().unwrap_or_default().to_owned(),
                cookie: cookie.ok_or("no session cookie")?,
                name,
            })
        }));
    }
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.map_err(|e| e.to_string())??);
    }
    if args.groups.is_some() {
        return Ok(users);
    }
    // Pair 2i with 2i+1.
    let mut tasks = Vec::new();
    for pair in users.chunks(2) {
        let (client, limit) = (client.clone(), limit.clone());
        let base = args.url.clone();
        let (a_cookie, b_cookie) = (pair[0].cookie.clone(), pair[1].cookie.clone());
        let (a_name, b_name) = (pair[0].name.clone(), pair[1].name.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
            post(
                &client,
                &format!("{base}/api/v1/relation/request"),
                Some(&a_cookie),
                json!({"username": b_name, "memo": ""}),
            )
            .await?;
            post(
                &client,
                &format!("{base}/api/v1/relation/accept"),
                Some(&b_cookie),
                json!({"username": a_name}),
            )
            .await?;
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(users)
}

#[derive(Default)]
struct Stats {
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(ws_url: &str, cookie: &str) -> Result<Socket, String> {
    let mut request = ws_url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "cookie",
        format!("qc_session={cookie}")
            .parse()
            .map_err(|_| "bad cookie")?,
    );
    // tungstenite zero-fills `read_buffer_size` bytes before every read (128 KiB by
    // default): with one frame per read, as at moderate rates, that memset was a quarter of
    // the machine's CPU at 100,000 deliveries/s. 16 KiB still takes many frames per read.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .map_err(|e| e.to_string())?;
    // Wait for `ready`.
    while let Some(frame) = socket.next().await {
        if let Ok(Message::Text(text)) = frame
            && text.contains("\"type\":\"ready\"")
        {
            return Ok(socket);
        }
    }
    Err("closed before ready".into())
}

/// How long receivers keep listening after the last message was sent.
const RECEIVE_GRACE: Duration = Duration::from_secs(2);

/// Steps in which the sockets are opened for the memory figure.
const MEMORY_STEPS: usize = 10;

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

/// Opens one socket per (WebSocket address, session cookie), 256 at a time, in order.
async fn open_sockets(targets: &[(String, String)]) -> Result<Vec<Socket>, String> {
    let limit = Arc::new(Semaphore::new(256));
    let mut connecting = Vec::new();
    for (url, cookie) in targets {
        let (url, cookie, limit) = (url.clone(), cookie.clone(), limit.clone());
        connecting.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
            connect(&url, &cookie).await
        }));
    }
    let mut sockets = Vec::new();
    for c in connecting {
        sockets.push(c.await.map_err(|e| e.to_string())??);
    }
    Ok(sockets)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let saved = args.users_file.as_deref().and_then(load_users);
    let users = match saved {
        Some(users) if users.len() == args.clients => users,
        _ => match setup_users(&args).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("loadgen: setup failed: {e}");
                std::process::exit(1);
            }
        },
    };
    if let Some(path) = &args.users_file
        && let Err(e) = save_users(path, &users)
    {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    let groups = match &args.groups {
        None => None,
        Some(sizes) => {
            let path = args.users_file.as_ref().map(|f| format!("{f}.groups"));
            let made = match path.as_deref().and_then(|p| groups::load(p, sizes)) {
                Some(g) => Ok(g),
                None => groups::setup(&args.url, &users, sizes).await,
            };
            let saved = match (&made, &path) {
                (Ok(g), Some(p)) => groups::save(p, g),
                _ => Ok(()),
            };
            match made.and_then(|g| saved.map(|()| g)) {
                Ok(g) => Some(g),
                Err(e) => {
                    eprintln!("loadgen: group setup failed: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    eprintln!("users ready in {:.1} s", started.elapsed().as_secs_f64());
    if args.setup_only {
        return;
    }
    eprintln!("opening {} WebSockets...", users.len());
    let rss_before = args.server_pid.and_then(rss_kib);
    // The private part: RSS also counts every mapping of a shared file once per mapping
    // (SQLite maps the database once per pooled connection).
    let anon_before = args.server_pid.and_then(|p| status_kib(p, "RssAnon:"));
    // User 2p sends to user 2p+1: the sender on node p mod n, the receiver on the next one.
    let nodes = args.urls.len();
    let targets: Vec<(String, String)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let node = (i / 2 + i % 2) % nodes;
            let ws = format!("{}/ws", args.urls[node].replacen("http", "ws", 1));
            (ws, u.cookie.clone())
        })
        .collect();
    // Open the sockets in ten steps, reading the server's memory after each.
    let step = users.len().div_ceil(MEMORY_STEPS);
    let mut sockets = Vec::with_capacity(users.len());
    let mut samples: Vec<(f64, f64)> = Vec::new();
    // Time spent opening (each socket up to its `ready`), the pauses between steps left out.
    let mut opening = Duration::ZERO;
    for chunk in targets.chunks(step) {
        let began = Instant::now();
        match open_sockets(chunk).await {
            Ok(s) => sockets.extend(s),
            Err(e) => {
                eprintln!("loadgen: connect failed: {e}");
                std::process::exit(1);
            }
        }
        opening += began.elapsed();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if let Some(rss) = args.server_pid.and_then(rss_kib) {
            samples.push((sockets.len() as f64, rss as f64 * 1024.0));
        }
    }
    println!(
        "opened {} sockets, each up to its ready, in {:.2} s: {:.0} per second",
        sockets.len(),
        opening.as_secs_f64(),
        sockets.len() as f64 / opening.as_secs_f64().max(1e-9)
    );
    if let (Some(before), Some(&(_, idle))) = (rss_before, samples.last()) {
        let all = (idle - before as f64 * 1024.0) / sockets.len() as f64 / 1000.0;
        // The first step also warms the server's caches: the slope leaves it out.
        let slope = slope(samples.get(1..).unwrap_or_default()).unwrap_or(f64::NAN) / 1000.0;
        println!(
            "server RSS: {before} KiB before, {:.0} KiB with {} idle connections: \
             {slope:.1} KB per idle connection (slope over the last {} of {MEMORY_STEPS} steps), \
             {all:.1} KB (all growth / connections){}",
            idle / 1024.0,
            sockets.len(),
            samples.len().saturating_sub(1),
            match (
                anon_before,
                args.server_pid.and_then(|p| status_kib(p, "RssAnon:"))
            ) {
                (Some(a), Some(b)) => format!(
                    "; anonymous {a} -> {b} KiB, {:.1} KB (growth / connections)",
                    (b as f64 - a as f64) * 1.024 / sockets.len() as f64
                ),
                _ => String::new(),
            }
        );
    }

    if let Some(groups) = &groups {
        groups::run(&args, groups, sockets).await;
        return;
    }
    let stats = Arc::new(Stats::default());
    let cpu_before = CpuReading::now(&args.cpu_pids);
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(args.seconds);
    let pairs = users.len() / 2;
    // Per sender: the interval between its messages at the requested total rate.
    let interval = if args.rate == 0 {
        None
    } else {
        Some(Duration::from_secs_f64(pairs as f64 / args.rate as f64))
    };
    let pacing = Pacing {
        epoch,
        deadline,
        interval,
        window: args.window,
    };
    let mut sockets = sockets.into_iter();
    let mut tasks = Vec::new();
    for pair in users.chunks(2) {
        let (sender, receiver) = (
            sockets.next().expect("socket"),
            sockets.next().expect("socket"),
        );
        let to = pair[1].id.clone();
        let stats_r = stats.clone();
        // The text is the send time.
        let frame = move |run: &str, n: u64, sent_us: u64| {
            json!({
                "type": "send",
                "client_id": format!("{run}-{n}"),
                "to": {"user": to},
                "content": {"kind": "text", "text": sent_us.to_string()},
            })
        };
        tasks.push(tokio::spawn(send_loop(
            sender,
            stats.clone(),
            pacing,
            pair[1].id.clone(),
            frame,
        )));
        tasks.push(tokio::spawn(receive_loop(
            receiver, stats_r, epoch, deadline,
        )));
    }
    let (cpu_after, elapsed) = finish(tasks, &stats, "delivered", &args.cpu_pids, pacing).await;
    let acked = stats.acked.load(Ordering::Relaxed);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let mut lat =
        std::mem::take(&mut *stats.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    lat.sort_unstable();
    let pct = |p: f64| percentile(&lat, p);
    println!(
        "clients {}  rate {}  over {:.1} s: stored {:.0}/s, delivered {:.0}/s, errors {}",
        users.len(),
        if args.rate == 0 {
            "max".to_string()
        } else {
            args.rate.to_string()
        },
        elapsed,
        acked as f64 / elapsed,
        delivered as f64 / elapsed,
        stats.errors.load(Ordering::Relaxed)
    );
    println!(
        "send-to-deliver latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        lat.len()
    );
    cpu_after.report(&cpu_before, &args.cpu_pids, acked);
}

/// The `p` quantile (0–1) of sorted microseconds, in milliseconds; 0 when there are none.
fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    let i = ((sorted_us.len() as f64 * p) as usize).min(sorted_us.len().saturating_sub(1));
    sorted_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

/// CPU seconds used so far: by each of some processes, by this one, and by the machine.
struct CpuReading {
    pids: Vec<Option<f64>>,
    own: Option<f64>,
    /// Busy and total seconds of all cores.
    machine: Option<(f64, f64)>,
}

/// Clock ticks per second in `/proc`'s figures (USER_HZ: 100 on every Linux architecture
/// this runs on).
const TICKS: f64 = 100.0;

impl CpuReading {
    fn now(pids: &[u32]) -> CpuReading {
        CpuReading {
            pids: pids
                .iter()
                .map(|pid| process_cpu(&pid.to_string()))
                .collect(),
            own: process_cpu("self"),
            machine: machine_cpu(),
        }
    }

    /// A line per process: its CPU over the window and per message; then the machine's.
    fn report(&self, before: &CpuReading, pids: &[u32], messages: u64) {
        let per_msg = |s: f64| s * 1e6 / messages.max(1) as f64;
        for ((pid, after), before) in pids.iter().zip(&self.pids).zip(&before.pids) {
            if let (Some(a), Some(b)) = (after, before) {
                println!(
                    "cpu pid {pid}: {:.2} s, {:.0} µs/msg",
                    a - b,
                    per_msg(a - b)
                );
            }
        }
        if let (Some((busy_a, total_a)), Some((busy_b, total_b)), Some(own_a), Some(own_b)) =
            (self.machine, before.machine, self.own, before.own)
        {
            println!(
                "cpu machine: {:.2} of {:.2} core-seconds busy, {:.0} µs/msg, of which loadgen {:.2} s",
                busy_a - busy_b,
                total_a - total_b,
                per_msg(busy_a - busy_b),
                own_a - own_b
            );
        }
    }
}

/// utime + stime of a process (all its threads, living and gone), in seconds.
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS)
}

/// Busy and total seconds of all cores, from `/proc/stat`.
fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = cpu.iter().take(8).sum();
    // idle and iowait
    let idle = cpu.get(3)? + cpu.get(4)?;
    Some(((total - idle) / TICKS, total / TICKS))
}

/// Waits for the run's tasks, printing the deliveries of each second meanwhile; answers the
/// CPU reading at the end and how long the sending lasted (s).
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: &Arc<Stats>,
    label: &'static str,
    cpu_pids: &[u32],
    pacing: Pacing,
) -> (CpuReading, f64) {
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let d = stats.delivered.load(Ordering::Relaxed);
                eprintln!("  {} {label}/s", d - last);
                last = d;
            }
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    progress.abort();
    let elapsed = Instant::now().min(pacing.deadline) - pacing.epoch;
    (CpuReading::now(cpu_pids), elapsed.as_secs_f64())
}

/// When and how fast a sender sends.
#[derive(Clone, Copy)]
struct Pacing {
    epoch: Instant,
    deadline: Instant,
    /// Between two messages of one sender; none: as fast as acknowledged.
    interval: Option<Duration>,
    /// Messages unacknowledged at most, without an interval.
    window: usize,
}

/// Sends the frames `frame(run, n, sent_us)` makes (run: this run's id, n: 1, 2, …,
/// sent_us: µs since the epoch), paced by the interval (the first one at a point of it
/// that `seed` picks) or, without one, keeping the window unacknowledged.
async fn send_loop(
    socket: Socket,
    stats: Arc<Stats>,
    pacing: Pacing,
    seed: String,
    frame: impl Fn(&str, u64, u64) -> Value,
) {
    let Pacing {
        epoch,
        deadline,
        interval,
        window,
    } = pacing;
    let (mut write, mut read) = socket.split();
    let in_flight = Arc::new(Semaphore::new(window.max(1)));
    let acks = {
        let (stats, in_flight) = (stats.clone(), in_flight.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = read.next().await {
                if let Message::Text(text) = frame {
                    if text.contains("\"type\":\"ack\"") {
                        stats.acked.fetch_add(1, Ordering::Relaxed);
                        in_flight.add_permits(1);
                    } else if text.contains("\"type\":\"error\"") {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        in_flight.add_permits(1);
                    }
                }
            }
        })
    };
    // Spread the senders over the first interval so they do not all fire at once.
    if let Some(interval) = interval {
        let offset = interval.mul_f64(fastrand_fraction(&seed));
        tokio::time::sleep(offset).await;
    }
    // Client ids are unique to this run: the server answers a repeated (sender, client id)
    // with the stored message's ack and delivers nothing, so a second run with the same
    // users would measure nothing.
    let run = run_id();
    let mut next = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        match interval {
            // Due at the offset, then every interval, none at or past the deadline: each
            // sender sends exactly `seconds / interval` messages.
            Some(interval) => {
                if next >= deadline {
                    break;
                }
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
                next += interval;
            }
            None => {
                let Ok(permit) = in_flight.acquire().await else {
                    break;
                };
                permit.forget();
            }
        }
        n += 1;
        let sent_us = epoch.elapsed().as_micros() as u64;
        if write
            .send(Message::Text(frame(&run, n, sent_us).to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    // Every socket stays open until the receivers stop listening: closing thousands of
    // connections makes the server record each user's last-seen time, work the last
    // messages of the run would otherwise wait behind.
    tokio::time::sleep_until((deadline + RECEIVE_GRACE).into()).await;
    acks.abort();
}

/// This process's id and start time: different for every run.
fn run_id() -> String {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{:x}{:x}", std::process::id(), since_epoch.as_millis())
    })
    .clone()
}

/// A stable fraction in [0, 1) from a string (spreads senders without a RNG crate).
fn fastrand_fraction(seed: &str) -> f64 {
    let h = seed.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    });
    (h % 10_000) as f64 / 10_000.0
}

async fn receive_loop(socket: Socket, stats: Arc<Stats>, epoch: Instant, deadline: Instant) {
    let (_write, read) = socket.split();
    let mut local = Vec::with_capacity(1024);
    let end = deadline + RECEIVE_GRACE;
    // One timer for the whole run (a timeout per frame costs a timer entry per delivery).
    let mut frames = std::pin::pin!(read.take_until(tokio::time::sleep_until(end.into())));
    while let Some(Ok(frame)) = frames.next().await {
        let Message::Text(text) = frame else { continue };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if value["type"] != "message" {
            continue;
        }
        let now_us = epoch.elapsed().as_micros() as u64;
        if let Some(sent) = value["content"]["text"]
            .as_str()
            .and_then(|t| t.parse::<u64>().ok())
        {
            local.push(now_us.saturating_sub(sent) as u32);
            stats.delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    stats
        .latencies_us
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(local);
}
