//! How long this disk takes to make a small write durable: what every commit of the relay's
//! writer waits for at least once (SQLite in WAL mode syncs the log at each checkpoint and,
//! with `synchronous=FULL`, at each commit; PostgreSQL syncs its WAL at each commit).
//!
//!   fsync_probe [DIR] [COUNT]     # default: target, 500 writes
//!
//! Appends 4 KiB to a file in DIR and waits for `fdatasync` COUNT times, then rewrites the
//! first 4 KiB and waits again COUNT times (a log that wraps), and prints the latencies.
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target".to_owned()));
    let count = match args.next().map(|n| n.parse::<usize>()) {
        None => 500,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: fsync_probe [DIR] [COUNT > 0]");
            std::process::exit(2);
        }
    };
    if let Err(err) = run(&dir, count) {
        eprintln!("fsync_probe: {}: {err}", dir.display());
        std::process::exit(1);
    }
}

fn run(dir: &std::path::Path, count: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("fsync_probe.{}", std::process::id()));
    let result = probe(&path, count);
    let _ = std::fs::remove_file(&path);
    let (append, overwrite) = result?;
    println!(
        "fsync probe in {} ({count} writes of 4 KiB each way)",
        dir.display()
    );
    report("append + fdatasync", append);
    report("overwrite + fdatasync", overwrite);
    Ok(())
}

fn probe(path: &std::path::Path, count: usize) -> std::io::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(path)?;
    let block = [0x5au8; 4096];
    let mut append = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        append.push(start.elapsed());
    }
    let mut overwrite = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&block)?;
        file.sync_data()?;
        overwrite.push(start.elapsed());
    }
    Ok((append, overwrite))
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1000.0
    };
    let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64 * 1000.0;
    println!(
        "{what}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms, mean {mean:.3} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
