//! Work prepared one job ahead (`loop.prefetch`): while the caller consumes job `k` (a training
//! step), a second thread makes job `k + 1`'s input (a batch: cache read, normalisation, text,
//! tokens), so the step does not wait for it.
//!
//! [`pipeline`] knows nothing of batches: it hands each job's `make` result to `consume`, in
//! job order, whichever thread made it. Where `make` depends on its job alone (the training
//! batch of step `s` is a function of `(records, seed, s)`), the results are the same, bit for
//! bit, with and without the second thread.

use std::sync::mpsc;
use std::time::Instant;

/// Runs `consume(job, make(job), asked)` for each of `jobs` in order and stops at the first
/// error `consume` returns. `asked` is when the caller started waiting for that job's input, so
/// a rate measured from it counts any wait for the input.
///
/// With `ahead`, `make` runs on a scoped second thread that hands each result over a rendezvous
/// channel: it makes job `k + 1` while `consume` handles job `k`, and at most one finished
/// result waits for the caller. When `consume` returns an error (an interrupt, a failed step)
/// the second thread finishes the job in hand, finds the channel closed and ends before this
/// returns. A panic in `make` is resumed on the calling thread. Without `ahead`, `make` runs
/// inline just before `consume`.
pub fn pipeline<J, T, E>(
    ahead: bool,
    jobs: &[J],
    make: impl Fn(&J) -> T + Sync,
    mut consume: impl FnMut(&J, T, Instant) -> Result<(), E>,
) -> Result<(), E>
where
    J: Sync,
    T: Send,
{
    if !ahead || jobs.len() < 2 {
        for job in jobs {
            let asked = Instant::now();
            consume(job, make(job), asked)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<T>(0);
        let make = &make;
        let loader = std::thread::Builder::new()
            .name("batch-prefetch".into())
            .spawn_scoped(scope, move || {
                for job in jobs {
                    if tx.send(make(job)).is_err() {
                        break; // the caller stopped
                    }
                }
            })
            .expect("starting the batch prefetch thread");
        for job in jobs {
            let asked = Instant::now();
            match rx.recv() {
                Ok(item) => consume(job, item, asked)?,
                // The loader sends one result per job unless `make` panicked.
                Err(mpsc::RecvError) => match loader.join() {
                    Err(panic) => std::panic::resume_unwind(panic),
                    Ok(()) => unreachable!("the prefetch thread ended before its last job"),
                },
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Every job's result, in order, with and without the second thread.
    #[test]
    fn each_job_is_consumed_in_order_with_its_own_result_either_way() {
        let jobs: Vec<u64> = (0..9).collect();
        for ahead in [false, true] {
            let mut seen = Vec::new();
            pipeline(
                ahead,
                &jobs,
                |&j| j * j + 1,
                |&j, v, _| {
                    seen.push((j, v));
                    Ok::<(), String>(())
                },
            )
            .unwrap();
            let want: Vec<(u64, u64)> = jobs.iter().map(|&j| (j, j * j + 1)).collect();
            assert_eq!(seen, want, "ahead = {ahead}");
        }
    }

    /// With `ahead`, job k + 1 is made on the other thread while job k is consumed (the
    /// consumer waits for it, so without the overlap this would time out), and the loader is
    /// never more than one job ahead.
    #[test]
    fn ahead_makes_the_next_job_while_the_current_one_is_consumed() {
        let jobs: Vec<usize> = (0..5).collect();
        let made = AtomicUsize::new(0);
        let made_on = Mutex::new(Vec::new());
        let mut lead = Vec::new();
        pipeline(
            true,
            &jobs,
            |&j| {
                made_on.lock().unwrap().push(std::thread::current().id());
                made.fetch_add(1, Ordering::SeqCst);
                j
            },
            |&j, _, _| {
                let next = (j + 2).min(jobs.len());
                let t0 = Instant::now();
                while made.load(Ordering::SeqCst) < next {
                    assert!(
                        t0.elapsed() < Duration::from_secs(20),
                        "job {} was not made while job {j} was consumed",
                        j + 1
                    );
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Time for a second job ahead, which the rendezvous channel must not allow.
                std::thread::sleep(Duration::from_millis(20));
                lead.push(made.load(Ordering::SeqCst) - (j + 1));
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        let me = std::thread::current().id();
        assert!(made_on.lock().unwrap().iter().all(|&t| t != me));
        assert_eq!(lead, vec![1, 1, 1, 1, 0]);
    }

    /// An error from `consume` stops the run at that job and is returned; the loader ends
    /// without making every job.
    #[test]
    fn an_error_in_consume_stops_the_loader_and_is_returned() {
        let jobs: Vec<usize> = (0..50).collect();
        let made = AtomicUsize::new(0);
        let mut consumed = Vec::new();
        let err = pipeline(
            true,
            &jobs,
            |&j| {
                made.fetch_add(1, Ordering::SeqCst);
                j
            },
            |&j, _, _| {
                consumed.push(j);
                if j == 3 {
                    Err(format!("stopped at {j}"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err, "stopped at 3");
        assert_eq!(consumed, vec![0, 1, 2, 3]);
        let made = made.load(Ordering::SeqCst);
        assert!(
            (4..=6).contains(&made),
            "{made} jobs made after a stop at job 3"
        );
    }

    /// A failed `make` (a `Result` as the item) reaches `consume` as that job's result, in its
    /// turn, and the caller decides what it means.
    #[test]
    fn a_failed_make_reaches_consume_as_that_jobs_result() {
        let jobs: Vec<usize> = (0..6).collect();
        for ahead in [false, true] {
            let mut ok = Vec::new();
            let err = pipeline(
                ahead,
                &jobs,
                |&j| {
                    if j == 2 {
                        Err(format!("job {j} failed"))
                    } else {
                        Ok(j)
                    }
                },
                |_, item, _| {
                    ok.push(item?);
                    Ok::<(), String>(())
                },
            )
            .unwrap_err();
            assert_eq!((err.as_str(), ok.as_slice()), ("job 2 failed", &[0, 1][..]));
        }
    }

    /// A panic while making a job is the caller's panic, with its message.
    #[test]
    fn a_panic_in_make_is_resumed_on_the_calling_thread() {
        let jobs: Vec<usize> = (0..4).collect();
        let caught = std::panic::catch_unwind(|| {
            pipeline(
                true,
                &jobs,
                |&j| {
                    assert!(j != 2, "no batch {j}");
                    j
                },
                |_, _, _| Ok::<(), ()>(()),
            )
        })
        .unwrap_err();
        let msg = caught.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("no batch 2"), "{msg:?}");
    }
}
