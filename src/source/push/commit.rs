//! The group committer: many concurrent uploads, few store transactions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::COMMIT_DELAY_ENV;
use crate::source::{PunchSink, Received, SinkError};

/// Most uploads one store transaction takes.
const GROUP_MAX: usize = 256;
/// Most payload bytes one store transaction takes.
const GROUP_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A resume marker to save once an upload is committed: (device, table,
/// stamp).
pub type Stamp = (String, String, String);

struct Job {
    messages: Vec<Received>,
    stamp: Option<Stamp>,
    done: oneshot::Sender<Result<(), SinkError>>,
}

/// Commits uploads of many concurrent requests together: one task takes
/// whatever uploads are waiting (up to 256, 16 MiB) and commits them in one
/// [`PunchSink::commit`], then saves their stamps in one transaction, then
/// answers each request. With SQLite's single writer and a synced commit,
/// that is what makes hundreds of terminals catching up at once fast.
#[derive(Clone, Debug)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} message(s))", self.messages.len())
    }
}

impl Committer {
    /// The committer and the task that runs it. The task ends when every
    /// clone of the committer is gone (the listeners stopped) and the
    /// queue is empty.
    pub fn new<S: PunchSink>(
        sink: Arc<S>,
        store: Option<crate::store::Store>,
    ) -> (Committer, impl Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel::<Job>(1024);
        let delay = std::env::var(COMMIT_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        (Committer { tx }, run_committer(sink, store, rx, delay))
    }

    /// Commits `messages`, then saves `stamp`; `Ok` once the messages are
    /// safe in the store (a stamp that could not be saved is logged: it
    /// only means re-sent, deduplicated records later).
    pub async fn commit(
        &self,
        messages: Vec<Received>,
        stamp: Option<Stamp>,
    ) -> Result<(), SinkError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                messages,
                stamp,
                done,
            })
            .await
            .map_err(|_| SinkError("shutting down".into()))?;
        wait.await
            .map_err(|_| SinkError("commit abandoned (shutting down)".into()))?
    }
}

async fn run_committer<S: PunchSink>(
    sink: Arc<S>,
    store: Option<crate::store::Store>,
    mut rx: mpsc::Receiver<Job>,
    delay: Option<Duration>,
) {
    while let Some(first) = rx.recv().await {
        let mut bytes: usize = first.messages.iter().map(|m| m.payload.len()).sum();
        let mut jobs = vec![first];
        while jobs.len() < GROUP_MAX && bytes < GROUP_MAX_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.messages.iter().map(|m| m.payload.len()).sum::<usize>();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        if let Some(d) = delay {
            warn!(
                "fault injection ({COMMIT_DELAY_ENV}): {} upload(s) received, commit delayed by {d:?}",
                jobs.len()
            );
            tokio::time::sleep(d).await;
        }
        let batch: Vec<Received> = jobs
            .iter_mut()
            .flat_map(|j| std::mem::take(&mut j.messages))
            .collect();
        let result = if batch.is_empty() {
            Ok(())
        } else {
            sink.commit(&batch).await
        };
        match &result {
            Err(e) => warn!(
                "cannot commit {} push upload(s): {e}; the terminals will re-send",
                jobs.len()
            ),
            Ok(()) => {
                let stamps: Vec<Stamp> = jobs.iter_mut().filter_map(|j| j.stamp.take()).collect();
                if let Some(store) = &store
                    && let Err(e) = store.save_push_stamps(&stamps, crate::clock::now()).await
                {
                    warn!(
                        "cannot save {} push stamp(s): {e}; those terminals may re-send records (stored once)",
                        stamps.len()
                    );
                }
            }
        }
        for j in jobs {
            let _ = j.done.send(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| SinkError(e.0.clone())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records batch sizes; fails while `fail` is set.
    #[derive(Default)]
    struct FakeSink {
        batches: Mutex<Vec<usize>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl PunchSink for FakeSink {
        async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(SinkError("disk full".into()));
            }
            self.batches.lock().unwrap().push(batch.len());
            Ok(())
        }
    }

    fn msg(i: usize) -> Received {
        Received {
            source: Arc::from("zk_push[0]:A"),
            topic: None,
            payload: format!("{i}").into_bytes(),
            received_at: crate::clock::now(),
        }
    }

    #[tokio::test]
    async fn committer_groups_uploads_and_reports_failures_to_every_waiter() {
        let sink = Arc::new(FakeSink::default());
        let (c, task) = Committer::new(sink.clone(), None);
        let task = tokio::spawn(task);
        let uploads: Vec<_> = (0..10)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.commit(vec![msg(i), msg(i + 100)], None).await })
            })
            .collect();
        for u in uploads {
            u.await.unwrap().unwrap();
        }
        assert_eq!(sink.batches.lock().unwrap().iter().sum::<usize>(), 20);
        sink.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = c.commit(vec![msg(1)], None).await.unwrap_err();
        assert_eq!(e.0, "disk full");
        // Stamps alone (OPERLOG uploads) need no sink commit.
        c.commit(Vec::new(), Some(("A".into(), "OPERLOG".into(), "5".into())))
            .await
            .unwrap();
        drop(c);
        task.await.unwrap();
    }
}
