//! Running a plugin's short calls on the CPU of their caller.
//!
//! A call is two hand-overs between threads: the caller wakes the
//! instance's thread, which wakes the caller when it is done. When the
//! two threads sit on different CPUs and the other CPU is idle, each
//! wake-up is an inter-processor interrupt and a halted CPU to restart;
//! on the virtual machine Herald was measured on (benches/README.md,
//! "Plugin host overhead") that costs 10 to 15 µs of CPU per wake-up,
//! more than a no-op plugin's whole batch of 50, and the batch and its
//! results cross between the CPUs' caches. On one CPU the hand-over is a
//! plain context switch. The scheduler does not know the two threads
//! take turns, so a worker whose calls are short is pinned to the CPU
//! its caller was on when it queued the call; one whose calls are long
//! (a plugin waiting on the network) floats free, where the scheduler
//! can spread its work, and so does a call abandoned past the timeout.

use std::time::Duration;

/// Calls shorter than this pin their worker to the caller's CPU for the
/// next call: a wake-up is worth avoiding next to a call this short.
pub(super) const SHORT: Duration = Duration::from_micros(500);

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::MaybeUninit;

    /// The CPU the calling thread runs on.
    pub(super) fn current_cpu() -> Option<usize> {
        // SAFETY: no arguments; returns -1 on failure.
        usize::try_from(unsafe { libc::sched_getcpu() }).ok()
    }

    /// The id of the calling thread.
    pub(super) fn thread_id() -> i32 {
        // SAFETY: no arguments, cannot fail.
        unsafe { libc::gettid() }
    }

    /// The CPUs the calling thread may run on.
    pub(super) fn free_mask() -> Option<libc::cpu_set_t> {
        let mut set = MaybeUninit::<libc::cpu_set_t>::zeroed();
        // SAFETY: `set` is a writable cpu_set_t of the size passed.
        let done =
            unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), set.as_mut_ptr()) };
        // SAFETY: zeroed is a valid cpu_set_t, and it was filled on success.
        (done == 0).then(|| unsafe { set.assume_init() })
    }

    /// Lets thread `tid` (0: the calling one) run where `mask` allows.
    pub(super) fn set(tid: i32, mask: &libc::cpu_set_t) -> bool {
        // SAFETY: `mask` is a valid cpu_set_t of the size passed.
        unsafe { libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), mask) == 0 }
    }

    /// A mask of the one CPU `cpu`.
    pub(super) fn only(cpu: usize) -> libc::cpu_set_t {
        // SAFETY: zeroed is a valid (empty) cpu_set_t.
        let mut set: libc::cpu_set_t = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: CPU_SET ignores a `cpu` beyond the set's size.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        set
    }
}

/// Where a worker thread runs: free, or pinned to one CPU.
pub(super) struct Pin {
    #[cfg(target_os = "linux")]
    free: Option<libc::cpu_set_t>,
    on: Option<usize>,
}

impl Pin {
    /// The calling (worker) thread, free as it starts.
    pub(super) fn new() -> Self {
        Pin {
            #[cfg(target_os = "linux")]
            free: imp::free_mask(),
            on: None,
        }
    }

    /// Pins the thread to `cpu`, or frees it with `None`; a system call
    /// only when that changes. A failure leaves the thread as it was.
    pub(super) fn to(&mut self, cpu: Option<usize>) {
        if cpu == self.on {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            let Some(free) = &self.free else { return };
            let changed = match cpu {
                Some(cpu) => imp::set(0, &imp::only(cpu)),
                None => imp::set(0, free),
            };
            if changed {
                self.on = cpu;
            }
        }
    }
}

/// The CPU the calling thread runs on, where the platform tells.
pub(super) fn current_cpu() -> Option<usize> {
    #[cfg(target_os = "linux")]
    return imp::current_cpu();
    #[cfg(not(target_os = "linux"))]
    None
}

/// The calling thread's id, for [`free_thread`] (0 where unsupported).
pub(super) fn thread_id() -> i32 {
    #[cfg(target_os = "linux")]
    return imp::thread_id();
    #[cfg(not(target_os = "linux"))]
    0
}

/// Frees thread `tid` (a worker whose call was abandoned) to run on any
/// CPU the calling thread may use: a plugin stuck in a loop must not
/// crowd the CPU of the caller that queued its call.
pub(super) fn free_thread(tid: i32) {
    #[cfg(target_os = "linux")]
    if tid > 0 {
        if let Some(mask) = imp::free_mask() {
            imp::set(tid, &mask);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = tid;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn same(a: Option<libc::cpu_set_t>, b: &libc::cpu_set_t) -> bool {
        // SAFETY: compares two valid sets.
        a.is_some_and(|a| unsafe { libc::CPU_EQUAL(&a, b) })
    }

    #[test]
    fn a_worker_is_pinned_then_freed() {
        let allowed = imp::free_mask().expect("the mask is readable");
        let cpu = current_cpu().expect("the CPU is known");
        let (pinned, pinned_mask, freed_mask) = std::thread::spawn(move || {
            let mut pin = Pin::new();
            pin.to(Some(cpu));
            let pinned = current_cpu();
            let pinned_mask = imp::free_mask();
            pin.to(None);
            (pinned, pinned_mask, imp::free_mask())
        })
        .join()
        .unwrap();
        assert_eq!(pinned, Some(cpu));
        assert!(same(pinned_mask, &imp::only(cpu)), "pinned to one CPU");
        assert!(same(freed_mask, &allowed), "freed to every CPU again");
    }

    #[test]
    fn an_abandoned_worker_is_freed_from_another_thread() {
        let allowed = imp::free_mask().expect("the mask is readable");
        let cpu = current_cpu().expect("the CPU is known");
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let mut pin = Pin::new();
            pin.to(Some(cpu));
            tid_tx.send(thread_id()).unwrap();
            go_rx.recv().unwrap();
            imp::free_mask()
        });
        free_thread(tid_rx.recv().unwrap());
        go_tx.send(()).unwrap();
        assert!(same(worker.join().unwrap(), &allowed));
    }
}
