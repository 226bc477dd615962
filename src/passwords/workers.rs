//! The hashing threads. argon2id runs on threads of its own, a fixed number
//! of them, which take jobs from one queue: a thread that finishes a hash
//! starts the next queued one at once, with no hand-off through the async
//! runtime in between.
//!
//! On Linux the threads run at a lower scheduling priority
//! (`argon2.thread_nice`, 19 by default): when a login flood keeps every
//! core busy hashing, the async workers and the database still get a core
//! as soon as a request needs one, so token refreshes, JWKS fetches and
//! introspection keep their latency. With nothing else to do, the hashing
//! threads still get the whole machine. (On two cores, during a login
//! flood, the JWKS p99 fell from 3-5 ms to about 1 ms and logins went from
//! 0.82 to 0.93 of the argon2id ceiling: docs/BENCHMARKS.md.)

use std::panic::AssertUnwindSafe;

use crossbeam_channel::{Sender, TrySendError};

use super::PasswordError;

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct Workers {
    /// The queue: bounded, so that beyond its capacity a new job is refused
    /// at once; every thread takes from it directly (a multi-consumer
    /// channel, no lock around the receiver).
    jobs: Sender<Job>,
}

impl Workers {
    /// Starts `threads` hashing threads, `nice` steps below the process's own
    /// priority (at most 19); they stop when `Workers` is dropped.
    pub fn start(threads: usize, nice: i32, max_waiting: usize) -> Result<Workers, PasswordError> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(max_waiting.max(1));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("sigil-argon2-{n}"))
                .spawn(move || {
                    if !lower_priority(nice) && n == 0 {
                        tracing::warn!(
                            thread_nice = nice,
                            "could not lower the priority of the password-hashing threads \
                             (setpriority refused); they run at normal priority"
                        );
                    }
                    // Ends when `Workers` (the one sender) is dropped.
                    for job in queue.iter() {
                        // A panicking job drops its reply, which its caller
                        // sees as a failure; this thread goes on.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| PasswordError::Hash(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Workers { jobs })
    }

    /// Jobs queued and not yet started.
    pub fn waiting(&self) -> usize {
        self.jobs.len()
    }

    /// Runs `job` on a hashing thread and waits for its result. A job whose
    /// caller has gone away (the request was cancelled) is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued: Job = Box::new(move || {
            if !reply.is_closed() {
                let _ = reply.send(job());
            }
        });
        match self.jobs.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(PasswordError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(PasswordError::Closed),
        }
        answer
            .await
            .map_err(|_| PasswordError::Hash("the hashing job failed".into()))
    }
}

/// Lowers the calling thread's priority by `by` nice steps (at most to 19);
/// false if the system refused.
#[cfg(target_os = "linux")]
fn lower_priority(by: i32) -> bool {
    if by == 0 {
        return true;
    }
    // SAFETY: getpriority and setpriority take plain integers and touch no
    // memory of ours. On Linux the nice value is per thread, and `who = 0`
    // with PRIO_PROCESS names the calling thread only (which inherited the
    // process's value). getpriority cannot fail for the calling thread.
    // Failure of setpriority (a seccomp filter, say) leaves the thread at
    // the process's priority, which still works.
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, current.saturating_add(by).min(19)) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_by: i32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_a_full_queue_refuses_at_once() {
        let workers = Workers::start(1, 0, 1).unwrap();
        assert_eq!(workers.run(|| 6 * 7).await.unwrap(), 42);

        // Hold the one thread (and know it is held)...
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = workers.run(move || {
            let _ = started_tx.send(());
            held.recv().ok()
        });
        tokio::pin!(blocker);
        assert!(futures::poll!(&mut blocker).is_pending());
        started
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the blocking job starts");
        // ...then one job may wait, and the next is refused at once.
        let queued = workers.run(|| ());
        tokio::pin!(queued);
        assert!(futures::poll!(&mut queued).is_pending());
        assert!(matches!(workers.run(|| ()).await, Err(PasswordError::Busy)));
        release.send(()).unwrap();
        blocker.await.unwrap();
        queued.await.unwrap();
        assert_eq!(workers.waiting(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_thread_goes_on() {
        let workers = Workers::start(1, 0, 4).unwrap();
        let failed = workers.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(PasswordError::Hash(_))));
        assert_eq!(workers.run(|| 1).await.unwrap(), 1);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_below_normal_priority() {
        // 19 steps down from any process priority is the lowest, 19.
        let workers = Workers::start(1, 19, 4).unwrap();
        // The nice value as the thread itself reads it.
        let nice = workers
            .run(|| {
                // SAFETY: as in `lower_priority`; errno is not consulted
                // because a nice of -1 cannot be this thread's.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
            })
            .await
            .unwrap();
        assert_eq!(nice, 19);
    }
}
