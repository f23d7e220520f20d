//! P6: the daemon's RSS during a 1,000,000-recipient run stays within
//! 64 MB of its idle RSS (the audience is streamed, never held whole).
//!
//! `p6_memory [RECIPIENTS]` (default 1000000), Redis backend.

#[path = "sending_bed/mod.rs"]
mod bed;

use bed::{Backend, Bed};
use std::time::Duration;

fn main() {
    bed::init();
    let n = bed::arg(1, 1_000_000);
    println!("P6 on {}: {n} recipients", bed::machine());
    let mut bed = Bed::new(Backend::Redis);
    bed.audience(n as usize);
    bed.start(
        r#""concurrency": 4"#,
        "  batch_size: 50\n  chunk_size: 1000\n  lease: 30s",
    );
    let pid = bed.daemons[0].pid().expect("the daemon runs");
    std::thread::sleep(Duration::from_secs(2));
    let idle = bed::rss_kib(pid);
    let mut peak = idle;
    let elapsed = bed.run(n, || peak = peak.max(bed::rss_kib(pid)));
    let growth = peak.saturating_sub(idle);
    println!(
        "P6: idle RSS {} MiB, peak {} MiB during the run, growth {} MiB (target ≤ 64 MB); run took {:.1} s",
        idle / 1024,
        peak / 1024,
        growth / 1024,
        elapsed.as_secs_f64()
    );
    if growth > 64 * 1000 {
        println!("P6: target missed");
        std::process::exit(1);
    }
}
