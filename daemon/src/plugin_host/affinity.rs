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
//! take turns, so a worker whose calls are short is pinned, by the caller
//! about to wake it, to the caller's CPU; one whose calls are long (a
//! plugin waiting on the network) floats free, where the scheduler can
//! spread its work, and so does a call abandoned past the timeout. (The
//! caller itself is not pinned: woken while its CPU is still busy with
//! the worker, it may move to the idle one, and the next call brings the
//! worker after it.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// Where a worker thread runs: free, or pinned to one CPU. Shared: the
/// caller that wakes the worker pins it, the worker frees itself.
pub(super) struct Pin {
    tid: i32,
    #[cfg(target_os = "linux")]
    free: Option<libc::cpu_set_t>,
    /// The CPU it is pinned to, or [`FREE`].
    on: AtomicUsize,
    /// Whether its last call was shorter than [`SHORT`].
    short: AtomicBool,
}

const FREE: usize = usize::MAX;

impl Pin {
    /// The calling (worker) thread, free as it starts.
    pub(super) fn current() -> Self {
        Pin {
            tid: thread_id(),
            #[cfg(target_os = "linux")]
            free: imp::free_mask(),
            on: AtomicUsize::new(FREE),
            short: AtomicBool::new(false),
        }
    }

    /// The thread's id, for [`free_thread`].
    pub(super) fn thread_id(&self) -> i32 {
        self.tid
    }

    /// Before a caller on `cpu` wakes the (parked) worker for its call:
    /// pins the worker there if its calls are short. Done by the caller
    /// so that the wake-up itself is local: pinned after waking, the
    /// worker would first be woken where it last ran, then move.
    pub(super) fn follow(&self, cpu: Option<usize>) {
        let Some(cpu) = cpu else { return };
        if !self.short.load(Ordering::Acquire) || self.on.load(Ordering::Acquire) == cpu {
            return;
        }
        #[cfg(target_os = "linux")]
        if self.free.is_some() && imp::set(self.tid, &imp::only(cpu)) {
            self.on.store(cpu, Ordering::Release);
        }
    }

    /// After a call that took `took`, on the worker: once its calls are
    /// long, the worker floats free again.
    pub(super) fn after_call(&self, took: Duration) {
        let short = took < SHORT;
        self.short.store(short, Ordering::Release);
        if short || self.on.load(Ordering::Acquire) == FREE {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(free) = &self.free {
            if imp::set(0, free) {
                self.on.store(FREE, Ordering::Release);
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

/// The calling thread's id (0 where unsupported).
fn thread_id() -> i32 {
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
    fn a_worker_with_short_calls_follows_its_caller_and_one_with_long_calls_floats() {
        let allowed = imp::free_mask().expect("the mask is readable");
        let cpu = current_cpu().expect("the CPU is known");
        let (pin_tx, pin_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Duration>();
        let (mask_tx, mask_rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let pin = std::sync::Arc::new(Pin::current());
            pin_tx.send(pin.clone()).unwrap();
            while let Ok(took) = go_rx.recv() {
                pin.after_call(took);
                mask_tx.send(imp::free_mask()).unwrap();
            }
        });
        let pin = pin_rx.recv().unwrap();
        // Before any call it is not known to be short: it stays free.
        pin.follow(Some(cpu));
        go_tx.send(Duration::from_micros(10)).unwrap();
        assert!(same(mask_rx.recv().unwrap(), &allowed), "free at first");
        pin.follow(Some(cpu));
        go_tx.send(Duration::from_micros(10)).unwrap();
        assert!(same(mask_rx.recv().unwrap(), &imp::only(cpu)), "pinned");
        go_tx.send(Duration::from_millis(5)).unwrap();
        assert!(
            same(mask_rx.recv().unwrap(), &allowed),
            "freed after a long call"
        );
        drop(go_tx);
        worker.join().unwrap();
    }

    #[test]
    fn an_abandoned_worker_is_freed_from_another_thread() {
        let allowed = imp::free_mask().expect("the mask is readable");
        let cpu = current_cpu().expect("the CPU is known");
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            assert!(imp::set(0, &imp::only(cpu)));
            tid_tx.send(thread_id()).unwrap();
            go_rx.recv().unwrap();
            imp::free_mask()
        });
        free_thread(tid_rx.recv().unwrap());
        go_tx.send(()).unwrap();
        assert!(same(worker.join().unwrap(), &allowed));
    }
}
