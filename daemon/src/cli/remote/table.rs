//! Plain-text tables for the remote commands: KPIs with rates as
//! percentages (`25.0 %`), runs one per line.

use crate::http::views::RunView;
use crate::kpi::{Kpi, percent};

/// The KPI rows of a table: name, then one value per column.
pub fn kpi_table(columns: &[(&str, &Kpi)]) -> String {
    type Row = (&'static str, fn(&Kpi) -> String);
    let rows: Vec<Row> = vec![
        ("targeted", |k| k.targeted.to_string()),
        ("excluded", |k| k.excluded.to_string()),
        ("to send", |k| k.to_send.to_string()),
        ("sent", |k| k.sent.to_string()),
        ("remaining", |k| k.remaining.to_string()),
        ("delivered", |k| k.delivered.to_string()),
        ("bounces and errors", |k| k.bounces_errors.to_string()),
        ("cancelled", |k| k.cancelled.to_string()),
        ("opened", |k| {
            k.opened.map_or_else(|| "-".to_owned(), |n| n.to_string())
        }),
        ("clicked", |k| {
            k.clicked.map_or_else(|| "-".to_owned(), |n| n.to_string())
        }),
        ("unsubscribed", |k| k.unsubscribed.to_string()),
        ("delivered rate", |k| percent(k.delivered_rate)),
        ("bounce/error rate", |k| percent(k.bounce_error_rate)),
        ("open rate", |k| percent(k.open_rate)),
        ("click rate", |k| percent(k.click_rate)),
    ];
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["KPI".to_owned()];
    header.extend(columns.iter().map(|(name, _)| name.to_string()));
    lines.push(header);
    for (name, value) in rows {
        let mut line = vec![name.to_owned()];
        line.extend(columns.iter().map(|(_, kpi)| value(kpi)));
        lines.push(line);
    }
    let reasons: std::collections::BTreeSet<&String> = columns
        .iter()
        .flat_map(|(_, k)| k.excluded_by_reason.keys())
        .collect();
    for reason in reasons {
        let mut line = vec![format!("  excluded: {reason}")];
        line.extend(columns.iter().map(|(_, k)| {
            k.excluded_by_reason
                .get(reason)
                .copied()
                .unwrap_or(0)
                .to_string()
        }));
        lines.push(line);
    }
    align(&lines)
}

/// One line per run.
pub fn runs_table(runs: &[RunView]) -> String {
    let mut lines = vec![
        [
            "RUN",
            "STATE",
            "SCHEDULED FOR",
            "TO SEND",
            "SENT",
            "REMAINING",
            "CONFIRMED BY",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for run in runs {
        lines.push(vec![
            run.id.clone(),
            run.state.clone(),
            run.scheduled_for.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            run.kpi.to_send.to_string(),
            run.kpi.sent.to_string(),
            run.kpi.remaining.to_string(),
            run.confirmed_by.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    align(&lines)
}

/// Left-aligns the first column and right-aligns the others.
fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<width$}", width = widths[c])
                } else {
                    format!("{cell:>width$}", width = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Counters;

    #[test]
    fn kpi_tables_show_rates_as_percentages_and_missing_figures_as_dashes() {
        let counters = Counters {
            targeted: 4,
            delivered: 3,
            bounced: 1,
            ..Counters::default()
        };
        let kpi = Kpi::from_counters(&counters, false);
        let table = kpi_table(&[("total", &kpi)]);
        assert!(table.contains("delivered rate"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("delivered rate") && l.ends_with("75.0 %")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("bounce/error rate") && l.ends_with("25.0 %")),
            "{table}"
        );
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("opened") && l.ends_with('-')),
            "{table}"
        );
    }
}
