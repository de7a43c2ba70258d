//! Metric handles the layers register on first use (feature `metrics`).
//!
//! A layer is usually built before a recorder is installed, or with none at all; registering
//! on its first request picks up the recorder installed by then, and every request after adds
//! to a counter it already holds (no lookup, no allocation). Not part of the public API: the
//! layers' metrics are documented by each layer.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Label};

/// One counter per outcome of a metric with fixed labels besides `outcome`.
#[derive(Debug)]
pub struct Outcomes<const N: usize> {
    name: &'static str,
    labels: Vec<Label>,
    labelled: [&'static str; N],
    handles: OnceLock<[Counter; N]>,
}

impl<const N: usize> Outcomes<N> {
    /// The counters `name{labels..., outcome}` for each of `outcomes`.
    pub fn new(
        name: &'static str,
        labels: impl IntoIterator<Item = (&'static str, String)>,
        outcomes: [&'static str; N],
    ) -> Self {
        Self {
            name,
            labels: to_labels(labels),
            labelled: outcomes,
            handles: OnceLock::new(),
        }
    }

    /// Adds one to the counter of `outcomes[outcome]` (an index past the end counts nothing).
    #[inline]
    pub fn increment(&self, outcome: usize) {
        let handles = self.handles.get_or_init(|| {
            self.labelled.map(|outcome| {
                let mut labels = self.labels.clone();
                labels.push(Label::new("outcome", outcome));
                metrics::counter!(self.name, labels)
            })
        });
        if let Some(counter) = handles.get(outcome) {
            counter.increment(1);
        }
    }
}

/// A gauge with fixed labels.
#[derive(Debug)]
pub struct LazyGauge {
    name: &'static str,
    labels: Vec<Label>,
    handle: OnceLock<Gauge>,
}

impl LazyGauge {
    /// The gauge `name{labels...}`.
    pub fn new(
        name: &'static str,
        labels: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Self {
        Self {
            name,
            labels: to_labels(labels),
            handle: OnceLock::new(),
        }
    }

    /// Sets the gauge.
    #[inline]
    pub fn set(&self, value: f64) {
        self.handle
            .get_or_init(|| metrics::gauge!(self.name, self.labels.clone()))
            .set(value);
    }
}

fn to_labels(labels: impl IntoIterator<Item = (&'static str, String)>) -> Vec<Label> {
    labels
        .into_iter()
        .map(|(key, value)| Label::new(key, value))
        .collect()
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    #[test]
    fn handles_are_registered_with_the_recorder_of_the_first_use() {
        // Built before any recorder: nothing is registered yet.
        let outcomes = Outcomes::new(
            "t_requests_total",
            [("tier", "ip".to_owned())],
            ["ok", "no"],
        );
        let keys = LazyGauge::new("t_keys", []);
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            outcomes.increment(0);
            outcomes.increment(1);
            outcomes.increment(1);
            outcomes.increment(7);
            keys.set(0.25);
        });
        let mut seen: Vec<(String, Vec<String>, String)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (name, labels) = key.key().clone().into_parts();
                let labels = labels
                    .iter()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                let value = match value {
                    DebugValue::Counter(n) => n.to_string(),
                    DebugValue::Histogram(values) => format!("{values:?}"),
                    DebugValue::Gauge(g) => g.to_string(),
                };
                (name.as_str().to_owned(), labels, value)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("t_keys".to_owned(), vec![], "0.25".to_owned()),
                (
                    "t_requests_total".to_owned(),
                    vec!["tier=ip".to_owned(), "outcome=no".to_owned()],
                    "2".to_owned()
                ),
                (
                    "t_requests_total".to_owned(),
                    vec!["tier=ip".to_owned(), "outcome=ok".to_owned()],
                    "1".to_owned()
                ),
            ]
        );
    }
}
