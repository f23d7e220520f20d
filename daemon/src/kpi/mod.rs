//! KPI arithmetic (kpis.md): the figures and rates shown for a run, a
//! delivery, or an aggregation period, computed from the store's
//! [`Counters`]. The API and the CLI both use [`Kpi`], so a rate means the
//! same thing everywhere.

use crate::store::Counters;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The deployment figures of a run (or a sum of runs), as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Kpi {
    /// Audience rows read at preparation.
    pub targeted: u64,
    /// Rows left out at preparation.
    pub excluded: u64,
    /// `targeted − excluded`: the messages to send.
    pub to_send: u64,
    /// `delivered + bounces_errors`.
    pub sent: u64,
    /// `to_send − sent − cancelled`: still to go.
    pub remaining: u64,
    /// Accepted by the channel and not reported bounced or failed since.
    pub delivered: u64,
    /// Recipients whose outcome is `bounced` or `failed`.
    pub bounces_errors: u64,
    /// Recipients not sent because the run was cancelled while sending.
    pub cancelled: u64,
    /// Unique recipients with an open or a click; `null` without tracking.
    pub opened: Option<u64>,
    /// Unique recipients with a click; `null` without tracking.
    pub clicked: Option<u64>,
    /// Unique recipients who unsubscribed through the run's link.
    pub unsubscribed: u64,
    /// `delivered / sent`; `null` when nothing was sent.
    pub delivered_rate: Option<f64>,
    /// `bounces_errors / sent`; `null` when nothing was sent.
    pub bounce_error_rate: Option<f64>,
    /// `opened / delivered`; `null` without tracking or deliveries.
    pub open_rate: Option<f64>,
    /// `clicked / delivered`; `null` without tracking or deliveries.
    pub click_rate: Option<f64>,
    /// `excluded` split by reason (`no_address`, `invalid_address`, ...).
    pub excluded_by_reason: BTreeMap<String, u64>,
}

impl Kpi {
    /// The figures of `counters`; open and click figures are `null` when
    /// the channel has no `tracking`.
    pub fn from_counters(counters: &Counters, tracking: bool) -> Kpi {
        let sent = counters.sent();
        let delivered = counters.delivered;
        let bounces_errors = counters.bounced + counters.failed;
        let tracked = |n: u64| tracking.then_some(n);
        Kpi {
            targeted: counters.targeted,
            excluded: counters.excluded(),
            to_send: counters.to_send(),
            sent,
            remaining: counters.remaining(),
            delivered,
            bounces_errors,
            cancelled: counters.cancelled,
            opened: tracked(counters.opened),
            clicked: tracked(counters.clicked),
            unsubscribed: counters.unsubscribed,
            delivered_rate: rate(delivered, sent),
            bounce_error_rate: rate(bounces_errors, sent),
            open_rate: if tracking {
                rate(counters.opened, delivered)
            } else {
                None
            },
            click_rate: if tracking {
                rate(counters.clicked, delivered)
            } else {
                None
            },
            excluded_by_reason: counters
                .excluded_by_reason
                .iter()
                .map(|(reason, n)| (reason.as_str().to_owned(), *n))
                .collect(),
        }
    }

    /// Progress of a sending run, from 0 to 1: `(sent + cancelled) / to_send`.
    pub fn progress(&self) -> f64 {
        if self.to_send == 0 {
            1.0
        } else {
            ((self.sent + self.cancelled) as f64 / self.to_send as f64).min(1.0)
        }
    }
}

/// Adds `more` into `total`, figure by figure (a delivery's or a period's sum).
pub fn add(total: &mut Counters, more: &Counters) {
    total.targeted += more.targeted;
    for (reason, n) in &more.excluded_by_reason {
        *total.excluded_by_reason.entry(*reason).or_default() += n;
    }
    total.delivered += more.delivered;
    total.bounced += more.bounced;
    total.failed += more.failed;
    total.cancelled += more.cancelled;
    total.opened += more.opened;
    total.clicked += more.clicked;
    total.unsubscribed += more.unsubscribed;
}

/// `numerator / denominator`, or `None` (JSON `null`, never NaN) when the
/// denominator is 0.
pub fn rate(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// A rate as the CLI prints it: `25.0 %`, or `-` when there is none.
pub fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.1} %", r * 100.0),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::ExclusionReason;

    fn counters() -> Counters {
        Counters {
            targeted: 10,
            excluded_by_reason: BTreeMap::from([
                (ExclusionReason::NoAddress, 1),
                (ExclusionReason::Denylisted, 1),
            ]),
            delivered: 3,
            bounced: 1,
            failed: 0,
            cancelled: 2,
            opened: 2,
            clicked: 1,
            unsubscribed: 1,
        }
    }

    #[test]
    fn figures_follow_the_definitions_of_kpis_md() {
        let kpi = Kpi::from_counters(&counters(), true);
        assert_eq!(kpi.excluded, 2);
        assert_eq!(kpi.to_send, 8);
        assert_eq!(kpi.sent, 4);
        assert_eq!(kpi.bounces_errors, 1);
        assert_eq!(kpi.remaining, 2);
        assert_eq!(kpi.delivered_rate, Some(0.75));
        assert_eq!(kpi.bounce_error_rate, Some(0.25));
        assert_eq!(kpi.opened, Some(2));
        assert_eq!(kpi.click_rate, Some(1.0 / 3.0));
        assert_eq!(kpi.excluded_by_reason["no_address"], 1);
        assert_eq!(kpi.progress(), 0.75);
    }

    #[test]
    fn rates_over_zero_are_null_not_nan() {
        let kpi = Kpi::from_counters(&Counters::default(), true);
        assert_eq!(kpi.delivered_rate, None);
        assert_eq!(kpi.open_rate, None);
        let json = serde_json::to_value(&kpi).unwrap();
        assert!(json["bounce_error_rate"].is_null());
    }

    #[test]
    fn channels_without_tracking_show_null_open_and_click_figures() {
        let kpi = Kpi::from_counters(&counters(), false);
        assert_eq!((kpi.opened, kpi.clicked), (None, None));
        assert_eq!((kpi.open_rate, kpi.click_rate), (None, None));
        assert_eq!(kpi.delivered_rate, Some(0.75));
    }

    #[test]
    fn sums_add_every_figure_and_reason() {
        let mut total = Counters::default();
        add(&mut total, &counters());
        add(&mut total, &counters());
        assert_eq!(total.targeted, 20);
        assert_eq!(total.excluded(), 4);
        assert_eq!(
            percent(Kpi::from_counters(&total, true).delivered_rate),
            "75.0 %"
        );
        assert_eq!(percent(None), "-");
    }
}
