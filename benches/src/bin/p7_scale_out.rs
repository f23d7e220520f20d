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
    let (mut rates, mut sending_rates) = (Vec::new(), Vec::new());
    for instances in [1, 2] {
        let mut bed = Bed::new(Backend::Redis);
        bed.audience(n as usize);
        for _ in 0..instances {
            bed.start(plugin, sending);
        }
        let timing = bed.run_timed(n, || {});
        let rate = n as f64 / timing.total.as_secs_f64();
        let sending_rate = timing.sending_recipients as f64 / timing.sending.as_secs_f64();
        println!(
            "P7 {instances} instance(s): {n} recipients in {:.2} s = {rate:.0} recipients/s; sending phase {} in {:.2} s = {sending_rate:.0}/s",
            timing.total.as_secs_f64(),
            timing.sending_recipients,
            timing.sending.as_secs_f64()
        );
        rates.push(rate);
        sending_rates.push(sending_rate);
    }
    // Preparation (streaming the audience into chunks) is done once per
    // run by one instance, so the whole-run ratio is diluted by it; the
    // sending phase is what a second instance shares.
    println!(
        "P7: two instances = {:.2} × one for the whole run, {:.2} × for the sending phase (target ≥ 1.8)",
        rates[1] / rates[0],
        sending_rates[1] / sending_rates[0]
    );
}
