//! The load generator: JSON leads POSTed to an inbound URL, as fast as a fixed number of
//! connections allow or at a fixed rate, each timed from request to answer.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::{task::JoinSet, time::MissedTickBehavior};

/// How leads are sent.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `leads` leads over `concurrency` keep-alive connections, each posting the next
    /// lead as soon as the previous one is answered.
    Fastest { leads: u64, concurrency: usize },
    /// `per_s` leads a second for `seconds`; late ticks fire at once (burst), so the total
    /// is always `per_s × seconds` even when the generator falls behind.
    Rate { per_s: u64, seconds: u64 },
}

impl Pace {
    /// How many leads this pace sends.
    pub fn leads(self) -> u64 {
        match self {
            Pace::Fastest { leads, .. } => leads,
            Pace::Rate { per_s, seconds } => per_s * seconds,
        }
    }
}

/// One POST and its answer.
#[derive(Debug)]
pub struct Sent {
    pub at: Instant,
    /// Request sent → answer read.
    pub intake: Duration,
    /// The `lead_id` of a 202, or why the lead was not accepted.
    pub lead_id: Result<String, String>,
}

/// An HTTP client for the load: keep-alive connections, no proxy.
pub fn client(connections: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the load client")
}

/// How many times a lead answered 503 is sent again.
const UNAVAILABLE_RETRIES: usize = 5;

async fn post(http: &reqwest::Client, url: &str, tag: &str, i: u64) -> Sent {
    let lead = json!({
        "email": format!("lead{i}-{tag}@example.com"),
        "name": format!("Lead {i}"),
        "phone": format!("+55119{:08}", i % 100_000_000),
    });
    let at = Instant::now();
    // Like a lead source: a 503 (the database is restarting) is sent again after its
    // Retry-After, a few times.
    let mut answer = http.post(url).json(&lead).send().await;
    for _ in 0..UNAVAILABLE_RETRIES {
        let Ok(r) = &answer else { break };
        if r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        let wait = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        answer = http.post(url).json(&lead).send().await;
    }
    let lead_id = match answer {
        Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => match r.json::<Value>().await {
            Ok(answer) => answer["lead_id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("202 without lead_id: {answer}")),
            Err(e) => Err(format!("202 with an unreadable body: {e}")),
        },
        Ok(r) => {
            let status = r.status();
            Err(format!("{status}: {}", r.text().await.unwrap_or_default()))
        }
        Err(e) => Err(format!("request failed: {e}")),
    };
    Sent {
        at,
        intake: at.elapsed(),
        lead_id,
    }
}

/// Posts leads to `url` at `pace`; emails carry `tag` so runs never collide.
pub async fn run(
    http: &reqwest::Client,
    url: &str,
    tag: &str,
    pace: Pace,
    bar: &ProgressBar,
) -> Vec<Sent> {
    let mut tasks = JoinSet::new();
    let context = Arc::new((http.clone(), url.to_owned(), tag.to_owned(), bar.clone()));
    match pace {
        Pace::Fastest { leads, concurrency } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..concurrency {
                let (context, next) = (context.clone(), next.clone());
                tasks.spawn(async move {
                    let (http, url, tag, bar) = &*context;
                    let mut sent = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= leads {
                            return sent;
                        }
                        sent.push(post(http, url, tag, i).await);
                        bar.inc(1);
                    }
                });
            }
        }
        Pace::Rate { per_s, .. } => {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s as f64));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
            for i in 0..pace.leads() {
                ticker.tick().await;
                let context = context.clone();
                tasks.spawn(async move {
                    let (http, url, tag, bar) = &*context;
                    let sent = post(http, url, tag, i).await;
                    bar.inc(1);
                    vec![sent]
                });
            }
        }
    }
    let mut all = Vec::with_capacity(pace.leads() as usize);
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap_or_default());
    }
    bar.finish_and_clear();
    all
}
