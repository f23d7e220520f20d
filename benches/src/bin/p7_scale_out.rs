//! P7: two instances on one Redis, each with plugin concurrency 1 and a
//! channel that takes 5 ms per batch, against one instance: target ≥ 1.8×.
//!
//! `p7_scale_out [RECIPIENTS]` (default 40000), batch_size 50.

#[path = "sending_bed/mod.rs"]
mod bed;

use bed::{Backend, Bed};

fn main() {
    bed::init();
    let n = bed::arg(1, 40_000);
    let sending = "  batch_size: 50\n  chunk_size: 1000\n  lease: 30s";
    let plugin = r#""concurrency": 1, "batch_delay_ms": 5"#;
    println!("P7 on {}: {n} recipients", bed::machine());
    let mut rates = Vec::new();
    for instances in [1, 2] {
        let mut bed = Bed::new(Backend::Redis);
        bed.audience(n as usize);
        for _ in 0..instances {
            bed.start(plugin, sending);
        }
        let elapsed = bed.run(n, || {});
        let rate = n as f64 / elapsed.as_secs_f64();
        println!(
            "P7 {instances} instance(s): {n} recipients in {:.2} s = {rate:.0} recipients/s",
            elapsed.as_secs_f64()
        );
        rates.push(rate);
    }
    println!(
        "P7: two instances = {:.2} × one (target ≥ 1.8)",
        rates[1] / rates[0]
    );
}
