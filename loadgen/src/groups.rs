//! Group fan-out: `--groups 20x50,1x500` puts the users into groups of those sizes (each
//! user in one group; the first member creates it, the others ask to join, the creator
//! approves), opens one socket per member and has each group's creator send to the group,
//! `--rate` messages per second over all groups (each group an equal share; 0: as fast as
//! acknowledged, `--window` in flight per sender). Every other member receives every
//! message. Reported: messages stored and deliveries per second, send-to-deliver latency of
//! each delivery and, per message, to the last member that got it (a message some member
//! never got within the grace period counts as incomplete, not in the percentiles; one
//! acknowledged and delivered to nobody is counted apart).
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    Args, CpuReading, Pacing, RECEIVE_GRACE, Socket, Stats, User, percentile, post, send_loop,
};

/// `20x50,1x500` → [50; 20] + [500].
pub fn parse_spec(spec: &str) -> Result<Vec<usize>, String> {
    let mut sizes = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (count, size) = part
            .split_once('x')
            .ok_or_else(|| format!("--groups: {part}: want COUNTxSIZE"))?;
        let count: usize = count
            .parse()
            .map_err(|e| format!("--groups: {part}: {e}"))?;
        let size: usize = size.parse().map_err(|e| format!("--groups: {part}: {e}"))?;
        if size < 2 {
            return Err(format!(
                "--groups: {part}: a group needs at least 2 members"
            ));
        }
        sizes.extend(std::iter::repeat_n(size, count));
    }
    if sizes.is_empty() {
        return Err("--groups names no group".into());
    }
    Ok(sizes)
}

/// One group: its id and its members, a run of consecutive users starting at `first`.
#[derive(Clone)]
pub struct Group {
    pub id: String,
    pub first: usize,
    pub size: usize,
}

pub fn save(path: &str, groups: &[Group]) -> Result<(), String> {
    let text: String = groups
        .iter()
        .map(|g| format!("{}\t{}\t{}\n", g.id, g.first, g.size))
        .collect();
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

pub fn load(path: &str, sizes: &[usize]) -> Option<Vec<Group>> {
    let text = std::fs::read_to_string(path).ok()?;
    let groups: Vec<Group> = text
        .lines()
        .map(|line| {
            let mut parts = line.split('\t');
            Some(Group {
                id: parts.next()?.to_owned(),
                first: parts.next()?.parse().ok()?,
                size: parts.next()?.parse().ok()?,
            })
        })
        .collect::<Option<_>>()?;
    let same = groups.len() == sizes.len() && groups.iter().zip(sizes).all(|(g, s)| g.size == *s);
    same.then_some(groups)
}

/// Creates the groups over `users` (consecutive runs of the given sizes) and fills them.
pub async fn setup(base: &str, users: &[User], sizes: &[usize]) -> Result<Vec<Group>, String> {
    eprintln!(
        "making {} groups ({} memberships)...",
        sizes.len(),
        sizes.iter().sum::<usize>()
    );
    let client = reqwest::Client::new();
    let mut groups = Vec::new();
    let mut first = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let owner = &users[first];
        let (created, _) = post(
            &client,
            &format!("{base}/api/v1/community/create"),
            Some(&owner.cookie),
            json!({"name": format!("load {i}"), "description": ""}),
        )
        .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| format!("community/create answered {created}"))?
            .to_owned();
        groups.push(Group { id, first, size });
        first += size;
    }
    // Every join request, then every approval, 64 at a time.
    let limit = Arc::new(Semaphore::new(64));
    for step in ["join", "approve"] {
        let mut tasks = Vec::new();
        for g in &groups {
            for member in &users[g.first + 1..g.first + g.size] {
                let (client, limit) = (client.clone(), limit.clone());
                let url = format!("{base}/api/v1/community/{step}");
                let (cookie, body) = if step == "join" {
                    (
                        member.cookie.clone(),
                        json!({"community_id": g.id, "memo": ""}),
                    )
                } else {
                    (
                        users[g.first].cookie.clone(),
                        json!({"community_id": g.id, "username": member.name}),
                    )
                };
                tasks.push(tokio::spawn(async move {
                    let _permit = limit.acquire().await.map_err(|e| e.to_string())?;
                    post(&client, &url, Some(&cookie), body).await.map(|_| ())
                }));
            }
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
    }
    Ok(groups)
}

/// What one member saw: (group, message number, send-to-deliver µs) for each delivery.
type Seen = Vec<(u32, u32, u32)>;

/// Runs the measured window over open sockets, one per user, in the order of registration.
pub async fn run(args: &Args, groups: &[Group], sockets: Vec<Socket>) {
    let stats = Arc::new(Stats::default());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let cpu_before = CpuReading::now(&args.cpu_pids);
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(args.seconds);
    let pacing = Pacing {
        epoch,
        deadline,
        interval: (args.rate > 0)
            .then(|| Duration::from_secs_f64(groups.len() as f64 / args.rate as f64)),
        window: args.window,
    };
    let mut sockets: Vec<Option<Socket>> = sockets.into_iter().map(Some).collect();
    let mut tasks = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for m in g.first..g.first + g.size {
            let Some(socket) = sockets.get_mut(m).and_then(Option::take) else {
                eprintln!("loadgen: no socket for user {m}");
                std::process::exit(1);
            };
            let stats = stats.clone();
            if m == g.first {
                // The text is "message number:send time"; the client id names the group.
                let (group, index) = (g.id.clone(), gi as u32);
                let frame = move |run: &str, n: u64, sent_us: u64| {
                    json!({
                        "type": "send",
                        "client_id": format!("{run}-g{index}-{n}"),
                        "to": {"group": group},
                        "content": {"kind": "text", "text": format!("{n}:{sent_us}")},
                    })
                };
                tasks.push(tokio::spawn(send_loop(
                    socket,
                    stats,
                    pacing,
                    g.id.clone(),
                    frame,
                )));
            } else {
                tasks.push(tokio::spawn(receive_loop(
                    socket,
                    stats,
                    seen.clone(),
                    epoch,
                    deadline,
                )));
            }
        }
    }
    let (cpu_after, elapsed) =
        crate::finish(tasks, &stats, "deliveries", &args.cpu_pids, pacing).await;
    let acked = stats.acked.load(Ordering::Relaxed);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(|e| e.into_inner()));

    // Per message: how many members got it and the latest delivery.
    let mut per_message: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
    let mut each: Vec<u32> = Vec::with_capacity(delivered as usize);
    for (group, n, us) in seen.into_iter().flatten() {
        each.push(us);
        let entry = per_message.entry((group, n)).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(us);
    }
    // Acknowledged, and delivered to no member at all (counted nowhere else).
    let undelivered = acked.saturating_sub(per_message.len() as u64);
    let mut last: Vec<u32> = Vec::with_capacity(per_message.len());
    let mut incomplete = 0;
    for ((group, _), (count, max)) in per_message {
        if groups
            .get(group as usize)
            .is_some_and(|g| count as usize + 1 == g.size)
        {
            last.push(max);
        } else {
            incomplete += 1;
        }
    }
    each.sort_unstable();
    last.sort_unstable();
    // "20×50 + 1×500"
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for g in groups {
        match runs.last_mut() {
            Some((count, size)) if *size == g.size => *count += 1,
            _ => runs.push((1, g.size)),
        }
    }
    let sizes: Vec<String> = runs.iter().map(|(c, s)| format!("{c}×{s}")).collect();
    println!(
        "groups {}  rate {}  over {elapsed:.1} s: stored {:.0} messages/s, \
         {:.0} deliveries/s, errors {}",
        sizes.join(" + "),
        if args.rate == 0 {
            "max".to_string()
        } else {
            format!("{} messages/s", args.rate)
        },
        acked as f64 / elapsed,
        delivered as f64 / elapsed,
        stats.errors.load(Ordering::Relaxed),
    );
    println!(
        "send-to-deliver, each delivery: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} deliveries)",
        percentile(&each, 0.50),
        percentile(&each, 0.99),
        percentile(&each, 1.0),
        each.len()
    );
    println!(
        "send to the last member: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} messages, \
         {incomplete} incomplete, {undelivered} acknowledged and delivered to nobody)",
        percentile(&last, 0.50),
        percentile(&last, 0.99),
        percentile(&last, 1.0),
        last.len()
    );
    cpu_after.report(&cpu_before, &args.cpu_pids, acked);
}

/// (group index, message number, send time) of a delivered message: the group index from
/// its client id ("…-g{group}-{n}", which every delivery carries), the rest from its text.
fn parse_delivery(text: &str) -> Option<(u32, u32, u64)> {
    if !text.contains("\"type\":\"message\"") {
        return None;
    }
    let client_id = text.split("\"client_id\":\"").nth(1)?.split('"').next()?;
    let group: u32 = client_id
        .rsplit_once("-g")?
        .1
        .split('-')
        .next()?
        .parse()
        .ok()?;
    let body = text.split("\"text\":\"").nth(1)?.split('"').next()?;
    let (n, sent) = body.split_once(':')?;
    Some((group, n.parse().ok()?, sent.parse().ok()?))
}

async fn receive_loop(
    socket: Socket,
    stats: Arc<Stats>,
    seen: Arc<Mutex<Vec<Seen>>>,
    epoch: Instant,
    deadline: Instant,
) {
    let (_write, read) = socket.split();
    let mut local: Seen = Vec::with_capacity(4096);
    let end = deadline + RECEIVE_GRACE;
    // One timer for the whole run (a timeout per frame costs a timer entry per delivery).
    let mut frames = std::pin::pin!(read.take_until(tokio::time::sleep_until(end.into())));
    while let Some(Ok(frame)) = frames.next().await {
        let Message::Text(text) = frame else { continue };
        let Some((group, n, sent)) = parse_delivery(&text) else {
            continue;
        };
        let now_us = epoch.elapsed().as_micros() as u64;
        local.push((group, n, now_us.saturating_sub(sent) as u32));
        stats.delivered.fetch_add(1, Ordering::Relaxed);
    }
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(local);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_lists_every_group() {
        assert_eq!(parse_spec("2x3, 1x5").unwrap(), vec![3, 3, 5]);
        assert!(parse_spec("1x1").is_err());
        assert!(parse_spec("").is_err());
        assert!(parse_spec("20").is_err());
    }

    #[test]
    fn a_delivery_names_its_group_message_and_time() {
        let frame = r#"{"type":"message","id":7,"client_id":"ab12-g3-41","from":"u","to":{"group":"g"},"content":{"kind":"text","text":"41:123456"},"created_at":1}"#;
        assert_eq!(parse_delivery(frame), Some((3, 41, 123456)));
        assert_eq!(
            parse_delivery(r#"{"type":"ack","client_id":"ab12-g3-41"}"#),
            None
        );
    }
}
