//! Reads single samples out of the Prometheus text exposition format.

/// The value of the sample whose name and labels are exactly `series`
/// (`sandgate_expiry_timers`, or `sandgate_sandboxes{state="Running"}`).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::sample;

    const TEXT: &str = "# HELP sandgate_expiry_timers Armed\n# TYPE sandgate_expiry_timers gauge\n\
        sandgate_expiry_timers 42\nsandgate_expiry_timers_total 7\n\
        sandgate_sandboxes{state=\"Running\"} 3\nsandgate_sandboxes{state=\"Paused\"} 0\n";

    #[test]
    fn finds_plain_and_labelled_samples() {
        assert_eq!(sample(TEXT, "sandgate_expiry_timers"), Some(42.0));
        assert_eq!(
            sample(TEXT, "sandgate_sandboxes{state=\"Running\"}"),
            Some(3.0)
        );
        assert_eq!(sample(TEXT, "sandgate_missing"), None);
    }
}
