//! The delivery queue: apalis jobs on Redis in production, an in-process channel in
//! embedded mode. A job carries the delivery id (and its integration's, when the pusher
//! knows it); the ledger row is the truth, so a duplicate job is harmless and a lost one
//! is found again from the ledger.

use crate::{engine::Engine, error::Error};
use apalis::prelude::*;
use apalis_core::backend::{
    BackendConfig, WireFormatBackend,
    ext::poll_strategy::{PollSnapshot, PollStrategy},
};
use apalis_redis::{Config as RedisQueueConfig, RedisStorage};
use futures::task::AtomicWaker;
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};
use tokio::{
    sync::{Semaphore, mpsc, watch},
    time::MissedTickBehavior,
};

/// The job: deliver this ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverLead {
    pub delivery_id: String,
    /// The row's integration: a worker that already runs its share of that
    /// integration's deliveries drops the job without touching the database, and one of
    /// those deliveries takes the row on when it settles. Jobs queued without it (before
    /// it existed) are claimed like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
}

impl DeliverLead {
    /// A job for a row of `integration_id` that is due when the job runs.
    pub fn due(delivery_id: impl Into<String>, integration_id: impl Into<String>) -> Self {
        DeliverLead {
            delivery_id: delivery_id.into(),
            integration_id: Some(integration_id.into()),
        }
    }
}

/// Where jobs are pushed.
#[derive(Clone)]
pub enum Queue {
    /// apalis jobs in Redis, and the connection and channel on which a push of fresh
    /// ones wakes the workers ([`wake_channel`]).
    Redis {
        storage: Box<RedisStorage<DeliverLead>>,
        conn: ConnectionManager,
        wake: String,
    },
    Local(mpsc::UnboundedSender<DeliverLead>),
}

/// The receiving end of an in-process queue, consumed by [`run_local`].
pub type LocalJobs = mpsc::UnboundedReceiver<DeliverLead>;

/// How often an idle Redis worker looks for new jobs. A push of fresh jobs wakes the
/// workers at once ([`wake_channel`]); the tick finds the rest (retries coming due, which
/// the queue schedules to the whole second, jobs of a dead worker, a wake-up lost while
/// the subscription reconnected), none of which a few tens of milliseconds delay. Each
/// tick runs a fetch script: every 5 ms, that kept an idle worker and Redis at 8 % of a
/// core, and cost each lead a fetch that found nothing.
const REDIS_POLL: Duration = Duration::from_millis(50);

/// Wakes an idle Redis worker every period to fetch. apalis's own interval strategy
/// (`poll_with_interval`, apalis-core 1.0) replaces a timer that fired with a new one it
/// does not poll, so a tick that lands while a fetch is finishing arms no wake-up: the
/// worker then slept until its next heartbeat, and every lead pushed meanwhile waited
/// up to two seconds. This one polls the next tick at once, so its wake-up is always set.
pub struct Tick {
    period: Duration,
    interval: Option<tokio::time::Interval>,
}

impl Tick {
    /// A tick every `period`, starting one period from the first poll.
    pub fn every(period: Duration) -> Self {
        Tick {
            period,
            interval: None,
        }
    }
}

impl Clone for Tick {
    fn clone(&self) -> Self {
        Tick::every(self.period)
    }
}

impl PollStrategy for Tick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let period = self.period;
        let interval = self.interval.get_or_insert_with(|| {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        let mut ticked = false;
        // Until a tick is pending: that poll registers this context's waker for it.
        while interval.poll_tick(cx).is_ready() {
            ticked = true;
        }
        if ticked {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}
/// The Redis backend, fetching only when jobs may be waiting: when the tick fires, when
/// a push of fresh jobs nudged it, when the backend's own waker fires (a fetch answered,
/// or the worker ran out of tasks), or right after a job came out (its batch may hold
/// more). apalis polls its backend whenever anything in the worker wakes (every database
/// answer of every running delivery), and each poll of an idle backend runs a fetch
/// script: at 200 leads/s that was about 1,200 fetches a second, six per lead, in Redis
/// and in this process.
pub struct Gated<B> {
    backend: B,
    tick: Tick,
    nudge: Nudge,
    /// Set when the waker the backend was last polled with fires.
    woken: Arc<AtomicBool>,
    /// The last poll gave a job.
    flowing: bool,
}

impl<B> Gated<B> {
    /// `backend`, fetching on `tick`, on `nudge` and when it asks to.
    pub fn new(backend: B, tick: Tick, nudge: Nudge) -> Self {
        Gated {
            backend,
            tick,
            nudge,
            woken: Arc::new(AtomicBool::new(false)),
            flowing: false,
        }
    }
}

/// Wake-ups for a [`Gated`] backend from pushes of fresh jobs: without them a fresh job
/// waited for the next tick (then every 5 ms, 2.5 ms on average) in every lead's
/// end-to-end time.
#[derive(Clone, Default)]
pub struct Nudge(Arc<Nudged>);

#[derive(Default)]
struct Nudged {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Nudge {
    /// Jobs were pushed: the worker's next poll fetches.
    pub fn signal(&self) {
        self.0.set.store(true, Ordering::SeqCst);
        self.0.waker.wake();
    }

    /// Whether a signal came since the last look; `cx` is woken by the next one.
    fn take(&self, cx: &Context<'_>) -> bool {
        self.0.waker.register(cx.waker());
        self.0.set.swap(false, Ordering::SeqCst)
    }
}

/// The channel on which a push of fresh jobs under `prefix` wakes the workers. Workers
/// subscribe to it as a pattern: a prefix with glob characters would also match other
/// installations' channels, which only wakes a worker more often.
fn wake_channel(prefix: &str) -> String {
    format!("{prefix}:deliveries:wake")
}

/// The worker's waker, handed to the backend: notes that the backend asked to be polled.
struct Flag {
    woken: Arc<AtomicBool>,
    worker: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.worker.wake_by_ref();
    }
}

impl<B: Backend> Backend for Gated<B> {
    type Task = B::Task;
    type Error = B::Error;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.backend.poll_ready(cx, worker)
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        let ticked = self
            .tick
            .poll_drive(cx, &PollSnapshot::default())
            .is_ready();
        let nudged = self.nudge.take(cx);
        let woken = self.woken.swap(false, Ordering::SeqCst);
        if !(ticked || nudged || woken || self.flowing) {
            return Poll::Pending;
        }
        let flag = Waker::from(Arc::new(Flag {
            woken: self.woken.clone(),
            worker: cx.waker().clone(),
        }));
        let polled = self
            .backend
            .poll_next(&mut Context::from_waker(&flag), worker);
        self.flowing = matches!(polled, Poll::Ready(Some(Ok(_))));
        polled
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.backend.poll_close(cx, worker)
    }
}

apalis_core::delegate_codec!(Gated<B>, backend);
apalis_core::delegate_config!(Gated<B>, backend);

/// How often a Redis worker moves due jobs from apalis's schedule to its active list.
const PROMOTE_EVERY: Duration = Duration::from_millis(100);
/// Jobs moved per promotion script call.
const PROMOTE_CHUNK: usize = 1000;

/// Moves up to ARGV[1] jobs due by ARGV[2] from the schedule (KEYS[1]) to the active list
/// (KEYS[2]) and wakes the workers (KEYS[3]), as apalis's own fetch does, but in bounded
/// chunks: apalis-redis 1.0 schedules every job (even one pushed for now) and its fetch
/// moves *all* due jobs with one `unpack`, which Lua refuses beyond about 8,000 values; a
/// burst that outran the workers' fetches then broke every fetch after it for good.
const PROMOTE_SCRIPT: &str = r#"
local ids = redis.call("zrangebyscore", KEYS[1], 0, ARGV[2], "LIMIT", 0, ARGV[1])
if #ids > 0 then
    redis.call("rpush", KEYS[2], unpack(ids))
    redis.call("zrem", KEYS[1], unpack(ids))
    redis.call("del", KEYS[3])
    redis.call("lpush", KEYS[3], 1)
end
return #ids
"#;

/// Deletes up to ARGV[1] finished jobs: their ids leave the done set (KEYS[1]), their data
/// the data hash (KEYS[2]), their metadata and result the keys under KEYS[3]. apalis's own
/// vacuum reads every job of the queue in one script (HGETALL, then a lookup per job),
/// which held Redis for 10–70 ms each sweep at 500 leads/s, and never trims the done set,
/// which grew by one id per job for good.
const VACUUM_SCRIPT: &str = r#"
local ids = redis.call("spop", KEYS[1], ARGV[1])
for _, id in ipairs(ids) do
    redis.call("hdel", KEYS[2], id)
    redis.call("hdel", KEYS[3] .. ":result", id)
    redis.call("del", KEYS[3] .. ":" .. id)
end
return #ids
"#;
/// Finished jobs removed per vacuum script call. Redis serves no one else while a script
/// runs: 500 a call held it 10–15 ms (its slow log) several times each sweep at 500
/// leads/s, in the tail of every lead that needed Redis meanwhile; 50 take about 1 ms.
const VACUUM_CHUNK: usize = 50;

/// Promotes every due scheduled job of the queue under `prefix`, a chunk at a time;
/// returns how many it moved.
pub async fn promote_due(conn: &mut ConnectionManager, prefix: &str) -> Result<usize, Error> {
    let config = redis_config(prefix, 1);
    let keys = [
        config.scheduled_jobs_set(),
        config.active_jobs_list(),
        config.signal_list(),
    ];
    in_chunks(conn, PROMOTE_SCRIPT, &keys, PROMOTE_CHUNK).await
}

/// Runs `script` on `keys` with ARGV[1] = `chunk` (the most one call handles) and
/// ARGV[2] = now in seconds, until a call handles fewer; returns how many in all.
async fn in_chunks(
    conn: &mut ConnectionManager,
    script: &str,
    keys: &[String],
    chunk: usize,
) -> Result<usize, Error> {
    let script = redis::Script::new(script);
    let mut handled = 0;
    loop {
        let mut call = script.prepare_invoke();
        for key in keys {
            call.key(key);
        }
        let n: usize = call
            .arg(chunk)
            .arg(chrono::Utc::now().timestamp())
            .invoke_async(conn)
            .await?;
        handled += n;
        if n < chunk {
            return Ok(handled);
        }
    }
}

/// How long one push may wait for Redis. Every job's row is already in the ledger, so
/// when Redis is down the caller (intake above all) goes on and the sweeper sends the row
/// later; unbounded, a push sat out the connection's reconnect back-off (about 9 s).
const PUSH_TIMEOUT: Duration = Duration::from_secs(1);

async fn bounded<E: std::fmt::Display>(
    push: impl Future<Output = Result<(), E>>,
) -> Result<(), Error> {
    match tokio::time::timeout(PUSH_TIMEOUT, push).await {
        Ok(pushed) => pushed.map_err(|e| Error::Queue(e.to_string())),
        Err(_) => Err(Error::Queue(format!(
            "Redis did not take the job within {PUSH_TIMEOUT:?}"
        ))),
    }
}

fn redis_config(prefix: &str, concurrency: u16) -> RedisQueueConfig {
    RedisQueueConfig::default()
        .queue(format!("{prefix}:deliveries"))
        .batch_size(usize::from(concurrency).max(1))
        .heartbeat_interval(Duration::from_secs(2))
        .missed_heartbeats(3)
        // Each finished job is acknowledged: its id leaves the worker's in-flight set
        // and enters the done set, where [`Queue::vacuum`] finds it. Without that, every
        // job's data and metadata stayed in Redis for good, and a replacement worker
        // re-enqueued all the jobs a killed one had ever run.
        .persist_results(true)
        .emit_events(false)
}

impl Queue {
    /// A queue of apalis jobs in Redis under `{prefix}:deliveries`.
    pub fn redis(conn: ConnectionManager, prefix: &str, concurrency: u16) -> Self {
        Queue::Redis {
            storage: Box::new(
                RedisStorage::new(conn.clone()).with_config(redis_config(prefix, concurrency)),
            ),
            conn,
            wake: wake_channel(prefix),
        }
    }

    /// An in-process queue and its receiver.
    pub fn local() -> (Self, LocalJobs) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Queue::Local(tx), rx)
    }

    /// Pushes one job that runs after `delay` (retries, and deliveries waiting for a
    /// free slot). An in-process delayed job dies with the process; the sweeper finds its
    /// row again in the ledger.
    pub async fn push_after(&self, job: DeliverLead, delay: Duration) -> Result<(), Error> {
        match self {
            Queue::Local(tx) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(job);
                });
                Ok(())
            }
            Queue::Redis { storage, .. } => {
                let task = TaskBuilder::new(job).run_after(delay).build();
                bounded((**storage).clone().push_task(task)).await
            }
        }
    }

    /// Removes finished jobs from Redis (apalis keeps their id, data and metadata
    /// otherwise), a chunk per script call; returns how many it removed.
    pub async fn vacuum(&self) -> Result<usize, Error> {
        let Queue::Redis { storage, .. } = self else {
            return Ok(0);
        };
        let mut storage = (**storage).clone();
        let config = storage.get_config();
        let keys = [
            config.done_jobs_set(),
            config.job_data_hash(),
            config.job_meta_hash(),
        ];
        in_chunks(storage.get_connection(), VACUUM_SCRIPT, &keys, VACUUM_CHUNK).await
    }

    /// Pushes each job to run now.
    pub async fn push(&self, jobs: impl IntoIterator<Item = DeliverLead>) -> Result<(), Error> {
        match self {
            Queue::Local(tx) => {
                for job in jobs {
                    tx.send(job)
                        .map_err(|_| Error::Queue("the in-process worker has stopped".into()))?;
                }
            }
            Queue::Redis {
                storage,
                conn,
                wake,
            } => {
                // Concurrent pushes share the multiplexed connection, which pipelines them:
                // a lead with ten integrations costs one round trip to Redis, not ten.
                let pushes = jobs.into_iter().map(|job| {
                    let mut storage = (**storage).clone();
                    async move { bounded(storage.push(job)).await }
                });
                futures::future::try_join_all(pushes).await?;
                // After the pushes, so a woken worker finds the jobs. Only a hint: without
                // it the workers' tick finds them.
                let mut conn = conn.clone();
                if let Err(e) = bounded(conn.publish::<_, _, ()>(wake, "")).await {
                    tracing::debug!(error = %e, "waking the workers");
                }
            }
        }
        Ok(())
    }
}

/// Runs the in-process worker: at most `concurrency` deliveries at a time, until the
/// queue's senders are gone.
pub async fn run_local(engine: Arc<Engine>, mut jobs: LocalJobs, concurrency: u16) {
    let permits = Arc::new(Semaphore::new(usize::from(concurrency)));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            engine.deliver(&job).await;
            drop(permit);
        });
    }
}

/// Runs the job's delivery on a task of its own. When Redis fails (restarted, flushed),
/// apalis tears the worker down and drops the futures of the jobs it is running: a
/// delivery dropped between its POST and its record was sent again when its lease ended.
/// On its own task it finishes and records its attempt; only the job's acknowledgement is
/// lost, and its row is settled by then.
async fn handle(job: DeliverLead, engine: Data<Arc<Engine>>) -> Result<(), BoxDynError> {
    let engine = Arc::clone(&engine);
    tokio::spawn(async move { engine.deliver(&job).await }).await?;
    Ok(())
}

/// Runs an apalis worker on the Redis queue until `stop` turns true (or its sender is
/// dropped). When the backend
/// fails (Redis restarted or flushed), the worker is rebuilt after a second: the ledger
/// and the sweeper keep every delivery meanwhile.
pub async fn run_redis(
    engine: Arc<Engine>,
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    concurrency: u16,
    name: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let promoter = tokio::spawn({
        let (mut conn, prefix) = (conn.clone(), prefix.clone());
        async move {
            loop {
                if let Err(e) = promote_due(&mut conn, &prefix).await {
                    tracing::warn!(error = %e, "promoting due jobs failed");
                }
                tokio::time::sleep(PROMOTE_EVERY).await;
            }
        }
    });
    let nudge = Nudge::default();
    let listener = tokio::spawn({
        let nudge = nudge.clone();
        crate::events::subscribe_forever(client, wake_channel(&prefix), "job wake-ups", move |_| {
            crate::metrics::queue_wakeup();
            nudge.signal();
        })
    });
    for run in 0u64.. {
        let storage = Gated::new(
            RedisStorage::<DeliverLead>::new(conn.clone())
                .with_config(redis_config(&prefix, concurrency)),
            Tick::every(REDIS_POLL),
            nudge.clone(),
        );
        let worker = WorkerBuilder::new(format!("{name}-{run}"))
            .backend(storage)
            .data(engine.clone())
            .concurrency(usize::from(concurrency))
            .build(handle);
        let mut signal = stop.clone();
        let result = worker
            .run_until(async move {
                let _ = signal.wait_for(|stopped| *stopped).await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        // Stopped, or whoever could stop us is gone.
        if *stop.borrow() || stop.has_changed().is_err() {
            break;
        }
        tracing::warn!(error = ?result.err(), "queue worker stopped; restarting in 1 s");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    promoter.abort();
    listener.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wakes {
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }

        /// Waits (deadline 2 s) until the waker has been woken `n` times in all.
        async fn reach(&self, n: usize) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while self.count() < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no wake-up {n} within 2 s (woken {})",
                    self.count()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A 5 ms tick driven as apalis's worker drives it, with a waker that counts.
    struct Driven {
        wakes: Arc<Wakes>,
        waker: Waker,
        tick: Tick,
    }

    impl Driven {
        fn new() -> Self {
            let wakes = Arc::new(Wakes::default());
            Driven {
                waker: Waker::from(wakes.clone()),
                wakes,
                tick: Tick::every(Duration::from_millis(5)),
            }
        }

        /// One poll of the strategy, as the worker makes when it looks for jobs.
        fn poll(&mut self) -> Poll<Option<()>> {
            let mut cx = Context::from_waker(&self.waker);
            self.tick.poll_drive(&mut cx, &PollSnapshot::default())
        }

        fn woken(&self) -> usize {
            self.wakes.count()
        }

        /// Waits (deadline 2 s) until the tick has woken the worker `n` times in all.
        async fn woken_by(&self, n: usize) {
            self.wakes.reach(n).await;
        }
    }

    #[tokio::test]
    async fn a_tick_that_fired_arms_the_next_wake_up() {
        let mut driven = Driven::new();
        assert!(driven.poll().is_pending());
        // The worker polls once after each wake-up, and sees the tick; nothing polls it
        // again until the next wake-up, which must come by itself.
        for n in 1..=4 {
            driven.woken_by(n).await;
            assert!(
                driven.poll().is_ready(),
                "tick {n} is ready after its wake-up"
            );
        }
    }

    #[tokio::test]
    async fn ticks_missed_while_busy_wake_once_then_keep_the_period() {
        let mut driven = Driven::new();
        assert!(driven.poll().is_pending());
        // Busy with a fetch for ten periods: nothing polls the tick meanwhile.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(driven.poll().is_ready(), "the missed ticks count once");
        assert!(
            driven.poll().is_pending(),
            "no burst of catch-up ticks: the next one is a period away"
        );
        let woken = driven.woken();
        driven.woken_by(woken + 1).await;
        assert!(driven.poll().is_ready());
    }

    #[test]
    fn a_job_names_its_integration_and_one_queued_without_it_still_reads() {
        let job = DeliverLead::due("dlv_1", "int_1");
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "delivery_id": "dlv_1", "integration_id": "int_1" })
        );
        // A job queued before jobs named their integration.
        let old: DeliverLead = serde_json::from_str(r#"{"delivery_id":"dlv_2"}"#).unwrap();
        assert_eq!(
            old,
            DeliverLead {
                delivery_id: "dlv_2".to_owned(),
                integration_id: None
            }
        );
        assert_eq!(
            serde_json::to_string(&old).unwrap(),
            r#"{"delivery_id":"dlv_2"}"#
        );
    }

    /// A backend whose polls are counted: each gives the next of `answers` (a job, or
    /// Pending while it keeps the waker, as a fetch in flight does).
    struct Counted {
        polls: usize,
        answers: Vec<bool>,
        waker: Option<Waker>,
    }

    impl Backend for Counted {
        type Task = ();
        type Error = std::io::Error;

        fn poll_ready(
            &mut self,
            _: &mut Context<'_>,
            _: &WorkerContext,
        ) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll_next(
            &mut self,
            cx: &mut Context<'_>,
            _: &WorkerContext,
        ) -> Poll<Option<Result<(), Self::Error>>> {
            self.polls += 1;
            self.waker = Some(cx.waker().clone());
            if self.answers.remove(0) {
                Poll::Ready(Some(Ok(())))
            } else {
                Poll::Pending
            }
        }

        fn poll_close(
            &mut self,
            _: &mut Context<'_>,
            _: &WorkerContext,
        ) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_idle_backend_is_polled_on_its_tick_and_its_own_wake_ups_only() {
        let worker = WorkerContext::new("gated");
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut gated = Gated::new(
            Counted {
                polls: 0,
                answers: vec![false, true, true, false],
                waker: None,
            },
            Tick::every(Duration::from_millis(50)),
            Nudge::default(),
        );
        let poll = |gated: &mut Gated<Counted>| {
            gated
                .poll_next(&mut Context::from_waker(&waker), &worker)
                .is_ready()
        };
        // Woken by anything else in the worker: the idle backend is not asked.
        for _ in 0..10 {
            assert!(!poll(&mut gated));
        }
        assert_eq!(gated.backend.polls, 0);
        // The tick wakes the worker: one fetch, in flight.
        wakes.reach(1).await;
        assert!(!poll(&mut gated));
        assert_eq!(gated.backend.polls, 1);
        assert!(
            !poll(&mut gated),
            "no second fetch while the first is in flight"
        );
        assert_eq!(gated.backend.polls, 1);
        // The fetch answers: it wakes the worker through the backend's waker.
        let woken = wakes.count();
        gated.backend.waker.take().unwrap().wake();
        assert_eq!(wakes.count(), woken + 1);
        assert!(poll(&mut gated), "the fetched job");
        assert!(poll(&mut gated), "the batch's next job, at once");
        assert!(!poll(&mut gated), "the batch is done");
        assert!(!poll(&mut gated), "idle again");
        assert_eq!(gated.backend.polls, 4);
    }

    #[tokio::test]
    async fn a_push_of_fresh_jobs_wakes_the_worker_and_fetches_before_the_tick() {
        let worker = WorkerContext::new("nudged");
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let nudge = Nudge::default();
        let mut gated = Gated::new(
            Counted {
                polls: 0,
                answers: vec![false, true, false],
                waker: None,
            },
            Tick::every(Duration::from_secs(3600)),
            nudge.clone(),
        );
        let poll = |gated: &mut Gated<Counted>| {
            gated
                .poll_next(&mut Context::from_waker(&waker), &worker)
                .is_ready()
        };
        assert!(!poll(&mut gated), "idle: nothing to fetch");
        assert_eq!(wakes.count(), 0);
        // A push signals (from the wake channel's listener): the worker is woken, and its
        // next poll fetches, an hour before the tick.
        nudge.signal();
        assert_eq!(wakes.count(), 1, "the push woke the worker");
        assert!(!poll(&mut gated), "the fetch is in flight");
        gated.backend.waker.take().unwrap().wake();
        assert!(poll(&mut gated), "the pushed job");
        assert!(!poll(&mut gated), "the batch is done");
        assert!(!poll(&mut gated), "idle again: one signal, one fetch");
        assert_eq!(gated.backend.polls, 3);
    }
}
